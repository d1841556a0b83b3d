"""The district's booking reads and writes a feeder's results files a block at a time
(:mod:`scenarios.engine.district_blocks`), holding neither the file nor its footer:

- :func:`row_blocks` over a file of 8 row groups of 200,000 rows (a 66 MiB file of random
  doubles, which do not compress) peaks at 10.6 MiB of the Arrow pool, under the 20 MiB
  bound; read through ``iter_batches`` with its default pre-buffering, as before, it held
  the whole file: 76.6 MiB.
- a table the run writes whole (``intervals.parquet``) is written in row groups of
  ``ROW_GROUP_ROWS``: streaming a year of 45 columns a day at a time peaks at 4.7 MiB of
  the pool, under the 10 MiB bound (in one row group, as before: 27.5 MiB).
- :class:`BlockWriter` gathers blocks into row groups of about ``ROW_GROUP_BYTES``: a
  year of 96-interval blocks was 365 row groups per file, whose column metadata the
  writer holds until it closes (about 30 MB for intervals.parquet and agents.parquet).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.engine.district_blocks import ROW_GROUP_BYTES, BlockWriter
from scenarios.results.files import ROW_GROUP_ROWS, write_table

GROUPS, GROUP_ROWS, COLUMNS = 8, 200_000, 4
BOUND_MB = 20.0

_CHILD = """
import sys
import pyarrow as pa
from scenarios.engine.district_blocks import row_blocks
rows = sum(t.num_rows for t in row_blocks(sys.argv[1], int(sys.argv[2])))
print(rows, pa.default_memory_pool().max_memory() / 2**20)
"""


def _streamed(path: Path, rows: int) -> tuple[int, float]:
    """The rows :func:`row_blocks` gives of ``path`` in tables of ``rows`` and the Arrow
    pool's peak [MiB], in a fresh process (a pool's peak cannot be reset)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-c", _CHILD, str(path), str(rows)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    n, peak = done.stdout.split()
    return int(n), float(peak)


def _random_file(path: Path) -> None:
    rng = np.random.default_rng(5)
    schema = pa.schema([("t", pa.int32()), *((f"v{i}", pa.float64()) for i in range(COLUMNS))])
    with pq.ParquetWriter(path, schema) as writer:
        for g in range(GROUPS):
            t = np.arange(g * GROUP_ROWS, (g + 1) * GROUP_ROWS, dtype=np.int32)
            cols = {f"v{i}": rng.random(GROUP_ROWS) for i in range(COLUMNS)}
            writer.write_table(pa.table({"t": t, **cols}, schema=schema))


def test_row_blocks_hold_one_block_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agents.parquet"
    _random_file(path)
    assert pq.ParquetFile(path).num_row_groups == GROUPS
    assert path.stat().st_size > 60 * 2**20  # the doubles do not compress
    rows, peak_mb = _streamed(path, 4800)
    assert rows == GROUPS * GROUP_ROWS
    assert peak_mb < BOUND_MB, f"row_blocks peaked at {peak_mb:.1f} MiB of the Arrow pool"


def test_a_table_written_whole_streams_a_row_group_at_a_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    year = 365 * 96
    frame = pd.DataFrame({f"c{i}": rng.random(year) for i in range(45)})
    frame.insert(0, "t", np.arange(year, dtype=np.int32))
    path = tmp_path / "intervals.parquet"
    write_table(frame, path)
    assert pq.ParquetFile(path).num_row_groups == -(-year // ROW_GROUP_ROWS) == 9
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    rows, peak_mb = _streamed(path, 96)
    assert rows == year
    assert peak_mb < 10.0, f"a year's intervals peaked at {peak_mb:.1f} MiB of the Arrow pool"


def test_block_writer_gathers_blocks_into_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "intervals.parquet"
    schema = pa.schema([("t", pa.int32()), *((f"v{i}", pa.float64()) for i in range(45))])
    pq.write_table(schema.empty_table(), path)  # the file the writer replaces
    rng = np.random.default_rng(9)
    blocks = []
    writer = BlockWriter(path, schema)
    for i in range(365):
        t = np.arange(96 * i, 96 * (i + 1), dtype=np.int32)
        block = pa.table({"t": t, **{f"v{k}": rng.random(96) for k in range(45)}}, schema=schema)
        blocks.append(block)
        writer.write({name: block.column(name) for name in block.column_names})
        assert pq.read_table(path).num_rows == 0  # replaced only on close
    writer.close()
    file = pq.ParquetFile(path)
    # 96 rows x 46 columns = 34 KB a block: 121 blocks to a row group of 4 MiB
    per_group = -(-ROW_GROUP_BYTES // blocks[0].nbytes)
    assert per_group == 121
    assert file.num_row_groups == -(-365 // per_group) == 4
    assert file.read().equals(pa.concat_tables(blocks))
    assert not path.with_name(f".{path.name}.new").exists()
