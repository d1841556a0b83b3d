"""The streamed reader of the results tables (:mod:`scenarios.results.blocks`) holds one
block, not the file: member totals over a trades.parquet of 3 row groups of 1,000,000
trades peak at 9 MB of the Arrow pool (under the 14 MB bound; read by ``iter_batches``
with its pre-buffering, as before: 26 MB), and equal the pandas sums over the table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scenarios.results.agents_writer import AGENT_VALUE_COLUMNS, SUMMED_COLUMNS, AgentTotals
from scenarios.results.member_totals import member_totals

N_MEMBERS, GROUPS, GROUP_ROWS = 50, 3, 1_000_000  # 3 M trades: 114 MB of decoded columns
BOUND_MB = 14.0


def _results_dir(out: Path) -> pd.DataFrame:
    ids = [f"h{i:02d}" for i in range(N_MEMBERS)]
    pd.DataFrame({"agent_id": ids, "bus": [None] * N_MEMBERS}).to_parquet(
        out / "households.parquet"
    )
    pd.DataFrame({"t": np.arange(10)}).to_parquet(out / "intervals.parquet")
    rng = np.random.default_rng(7)
    dictionary = pa.array(ids)
    writer = None
    frames = []
    for _ in range(GROUPS):
        buyer, seller = rng.integers(0, N_MEMBERS, (2, GROUP_ROWS)).astype(np.int32)
        cols = {c: rng.integers(0, 1000, GROUP_ROWS) / 1000 for c in (
            "energy_kwh", "price_per_kwh", "seller_price_per_kwh", "grid_fee")}  # fmt: skip
        table = pa.table(
            {
                "buyer_id": pa.DictionaryArray.from_arrays(buyer, dictionary),
                "seller_id": pa.DictionaryArray.from_arrays(seller, dictionary),
                **cols,
            }
        )
        writer = writer or pq.ParquetWriter(out / "trades.parquet", table.schema)
        writer.write_table(table)
        frames.append(pd.DataFrame({"buyer": buyer, "seller": seller, **cols}))
    assert writer is not None
    writer.close()
    assert pq.ParquetFile(out / "trades.parquet").num_row_groups == GROUPS
    return pd.concat(frames, ignore_index=True)


_CHILD = """
import sys
import numpy as np
import pyarrow as pa
from scenarios.results.agents_writer import AGENT_VALUE_COLUMNS, SUMMED_COLUMNS, AgentTotals
from scenarios.results.member_totals import member_totals
zeros = {c: np.zeros(int(sys.argv[2])) for c in (*SUMMED_COLUMNS, *AGENT_VALUE_COLUMNS)}
member_totals(sys.argv[1], AgentTotals(sums=dict(zeros), last=dict(zeros)))
print(pa.default_memory_pool().max_memory() / 2**20)
"""


def _peak_pool_mb(out: Path) -> float:
    """The Arrow pool's peak of member totals over ``out`` in a fresh process (the
    reader's buffers come from the process's default pool, whose peak cannot be reset)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-c", _CHILD, str(out), str(N_MEMBERS)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return float(done.stdout.split()[-1])


def test_member_totals_hold_one_block_not_the_file(tmp_path: Path) -> None:
    trades = _results_dir(tmp_path)
    zeros = {c: np.zeros(N_MEMBERS) for c in (*SUMMED_COLUMNS, *AGENT_VALUE_COLUMNS)}
    members = member_totals(tmp_path, AgentTotals(sums=dict(zeros), last=dict(zeros)))
    peak_mb = _peak_pool_mb(tmp_path)
    assert peak_mb < BOUND_MB, f"member totals peaked at {peak_mb:.1f} MB of the Arrow pool"
    expect = {
        "sales_revenue": (trades.energy_kwh * trades.seller_price_per_kwh).groupby(trades.seller),
        "purchase_cost": (trades.energy_kwh * trades.price_per_kwh).groupby(trades.buyer),
        "fees_paid": trades.grid_fee.groupby(trades.buyer),
    }
    for column, groups in expect.items():
        want = groups.sum().reindex(range(N_MEMBERS), fill_value=0.0).to_numpy()
        np.testing.assert_allclose(members[column].to_numpy(), want, rtol=1e-12)
    assert members["agent_id"].tolist() == [f"h{i:02d}" for i in range(N_MEMBERS)]
    assert pytest.approx(members["fees_paid"].sum(), rel=1e-12) == trades.grid_fee.sum()
