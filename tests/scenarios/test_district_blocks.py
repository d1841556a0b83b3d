"""A district run synchronised per block of intervals (issue 18): the same files whatever
the block, only O(block) held, the streamed files' layout, the block readers by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scenarios import load_scenario
from scenarios.engine.district import run_district
from scenarios.engine.district_blocks import (
    AppendWriter,
    BlockReader,
    block_range,
    n_blocks,
    row_blocks,
)
from scenarios.engine.district_feeder import ORDERS_FILE, feeder_dir
from scenarios.errors import ScenarioError

BASE = {
    "simulation": {"start": "2026-06-19", "days": 2, "seed": 3},
    "community": {"households": 6, "profiles": "synthetic", "pv_share": 0.5,
                  "battery_share": 0.3, "ev_share": 0.3},
    "grid": {"feeder": "district:2x3", "check": "pyomo"},
    "market": {"levels": ["feeder", "district"], "district_grid_fee_per_kwh": 0.02},
}  # fmt: skip
N_T = 2 * 96


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same two-day district with the whole run as one block, a day (the default),
    and 7 intervals (blocks that do not divide a day; the last one 3 intervals)."""
    out = tmp_path_factory.mktemp("blocks")
    scenario = load_scenario(BASE)
    return {
        block: run_district(scenario, out / str(block), block_intervals=block).out_dir
        for block in (N_T, None, 7)
    }


def _tables(out):
    return sorted(p.relative_to(out) for p in out.rglob("*.parquet"))


@pytest.mark.parametrize("block", [None, 7])
def test_any_block_gives_the_files_of_one_block(runs, block):
    whole, got = runs[N_T], runs[block]
    files = _tables(whole)
    # per feeder the 6 tables of a run, the district's orders and fills; the district's 3;
    # the files the levels exchange in between (`_*.parquet`) are gone
    assert len(files) == 2 * 8 + 3 and _tables(got) == files
    assert not [f for f in files if f.name.startswith("_")]
    assert (pd.read_parquet(whole / "district" / "intervals.parquet").district_kwh > 0).any()
    for rel in files:
        want, have = pd.read_parquet(whole / rel), pd.read_parquet(got / rel)
        if rel.parts[0] == "district" and rel.name == "intervals.parquet":
            # the MV model's matrix products over a block of another height round in the
            # last bit (1e-18 of a loading); everything else is bit for bit
            pd.testing.assert_frame_equal(have, want, check_exact=False, rtol=1e-12, atol=0)
        else:
            pd.testing.assert_frame_equal(have, want, check_exact=True)


def test_orders_are_stored_one_row_group_per_block(runs):
    out = runs[7]
    for fid in ("lv1", "lv2"):
        meta = pq.ParquetFile(feeder_dir(out, fid) / ORDERS_FILE).metadata
        t = meta.schema.to_arrow_schema().get_field_index("t")
        seen = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(t).statistics
            assert stats.min // 7 == stats.max // 7  # within one block of 7 intervals
            seen.append(stats.min // 7)
        assert seen == sorted(set(seen)) and meta.num_rows > 0


def test_files_read_whole_are_gathered_into_row_groups(runs):
    """28 blocks of 7 intervals: the district's files and the fills (read whole) are one
    row group each, not one per block (their footers cost memory to write and to open)."""
    out = runs[7]
    whole = [out / "district" / n for n in ("intervals.parquet", "trades.parquet")]
    whole += [feeder_dir(out, fid) / "district_fills.parquet" for fid in ("lv1", "lv2")]
    for path in whole:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows > 0 and meta.num_row_groups == 1, path
    assert pq.ParquetFile(out / "district" / "intervals.parquet").metadata.num_rows == N_T


def test_append_writer_gathers_blocks_or_keeps_one_row_group_each(tmp_path):
    blocks = [pa.table({"t": np.full(96, i, np.int32), "v": np.arange(96.0)}) for i in range(365)]
    for gather, groups in ((False, 365), (True, 1)):
        path = tmp_path / f"{gather}.parquet"
        w = AppendWriter(path, gather=gather)
        for b in blocks:
            w.write(b)
        w.close()
        file = pq.ParquetFile(path)
        assert file.num_row_groups == groups
        assert file.read().equals(pa.concat_tables(blocks))


def test_block_intervals_must_be_positive(tmp_path):
    with pytest.raises(ScenarioError, match="block_intervals: 0"):
        run_district(load_scenario(BASE), tmp_path, block_intervals=0)


def test_the_scenario_key_sets_the_block(runs, tmp_path):
    """``[market] district_block_intervals = 7``: the orders are stored in blocks of 7
    intervals (28 row groups for two days per feeder with residuals in every block, at
    most 28), and every file is bit for bit the argument's ``block_intervals=7`` (whose
    files the test above compares with the default's, a day)."""
    scenario = load_scenario({**BASE, "market": {**BASE["market"], "district_block_intervals": 7}})
    got = run_district(scenario, tmp_path).out_dir
    for fid in ("lv1", "lv2"):
        meta = pq.ParquetFile(feeder_dir(got, fid) / ORDERS_FILE).metadata
        t = meta.schema.to_arrow_schema().get_field_index("t")
        blocks = [(meta.row_group(g).column(t).statistics.min // 7,
                   meta.row_group(g).column(t).statistics.max // 7)
                  for g in range(meta.num_row_groups)]  # fmt: skip
        # a day's block would be 2 row groups; blocks of 7 give more, none across a block
        assert 2 < len(blocks) <= n_blocks(N_T, 7) and all(a == b for a, b in blocks)
    files = _tables(runs[None])
    assert _tables(got) == files
    for rel in files:
        want = pd.read_parquet(runs[7] / rel)
        pd.testing.assert_frame_equal(pd.read_parquet(got / rel), want, check_exact=True)


@pytest.mark.parametrize("bad", [0, -3, 7.5, "day"])
def test_a_bad_block_key_is_refused_with_its_name(bad):
    with pytest.raises(ScenarioError, match=r"market\.district_block_intervals"):
        load_scenario({**BASE, "market": {**BASE["market"], "district_block_intervals": bad}})


# --------------------------------------------------------------------- the readers by hand
def test_blocks_cover_the_run():
    assert n_blocks(192, 96) == 2 and n_blocks(192, 7) == 28 and n_blocks(5, 96) == 1
    assert block_range(27, 192, 7) == (189, 192)
    assert block_range(0, 5, 96) == (0, 5)


def test_block_reader_by_hand(tmp_path):
    path = tmp_path / "x.parquet"
    w = AppendWriter(path)
    w.write(pa.table({"t": np.array([0, 1, 2], np.int32), "v": [1.0, 2.0, 3.0]}))
    w.write(pa.table({"t": np.zeros(0, np.int32), "v": np.zeros(0)}))  # block 1: no rows
    w.write(pa.table({"t": np.array([6, 8], np.int32), "v": [4.0, 5.0]}))
    w.close()
    assert pq.ParquetFile(path).num_row_groups == 2
    r = BlockReader(path, 3)
    assert r.read(0).column("v").to_pylist() == [1.0, 2.0, 3.0]
    empty = r.read(1)
    assert empty.num_rows == 0 and empty.column_names == ["t", "v"]
    assert r.read(2).column("t").to_pylist() == [6, 8]
    assert r.read(3).num_rows == 0
    # a row group across two blocks is refused
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"t": np.array([2, 3], np.int32)}), bad)
    with pytest.raises(ValueError, match="spans blocks"):
        BlockReader(bad, 3).read(0)


def test_row_blocks_by_hand(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"t": np.arange(10)}), path, row_group_size=4)
    sizes = [b.num_rows for b in row_blocks(path, 3)]
    assert sizes == [3, 3, 3, 1]
    assert pa.concat_tables(row_blocks(path, 3)).column("t").to_pylist() == list(range(10))


def test_empty_append_writer_keeps_the_schema(tmp_path):
    path = tmp_path / "e.parquet"
    w = AppendWriter(path)
    w.write(pa.table({"t": np.zeros(0, np.int32), "v": np.zeros(0)}))
    w.close()
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.column_names == ["t", "v"]


def test_the_caller_raises_its_open_files_limit():
    import resource

    from scenarios.engine.district import _open_files

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 300:
        pytest.skip(f"hard limit of open files {hard}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, hard))
        _open_files(3 * 80 + 64)  # 80 feeders: 304 files
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 304
        _open_files(50)  # never lowered
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 304
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
