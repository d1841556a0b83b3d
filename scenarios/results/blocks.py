"""The one streamed reader of the results tables that grow with a run (trades, buses,
lines, agents): a file's columns in blocks of at most :data:`BATCH_ROWS` rows, so that
reading a year costs the memory of reading a week.

``pq.ParquetFile.iter_batches`` with its defaults pre-buffers whole column chunks, and
``read_row_group`` decodes a whole row group (a run writes one per window, up to
1,048,576 rows): either way the peak grows with the row groups, so with the run until
they are full (4 row groups of 1,000,000 trades: the Arrow pool's peak 55.5 MB by
``iter_batches``, 64.5 MB by ``read_row_group``, against 10.4 MB for one of 200,000).
Read without pre-buffering, through a buffer of :data:`READ_BUFFER` bytes per column,
only the block being decoded is held: 8.6 MB and 8.4 MB.

The pool's peak is not the process's: Arrow's default allocator (mimalloc) keeps what a
block freed for the next, and over a file of many row groups that grew the resident
memory far beyond the pool's peak (a year's ``trades.parquet`` of 52 row groups read as
here: +41 MB anonymous memory for a pool peak of 10 MB; ``lines.parquet`` +64 MB for 8 MB).
So after each block the pool gives back what it no longer uses
(``MemoryPool.release_unused``): +25 and +23 MB at the peak, at no measurable cost in
time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 1 << 16
"""Rows per block handed on by :func:`read_blocks` unless its caller asks for others."""
READ_BUFFER = 1 << 16
"""Bytes read from the file at a time per column [B]."""


def read_blocks(
    path: Path, columns: Iterable[str] | None = None, rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """The ``columns`` (those of them the file has, in the file's order; take them by
    name; all of them by default) of a results table at ``path``, in blocks of at most
    ``rows`` rows, in the order written."""
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER)
    names = parquet.schema_arrow.names
    wanted = set(names if columns is None else columns)
    cols = [c for c in names if c in wanted]
    pool = pa.default_memory_pool()
    for batch in parquet.iter_batches(rows, columns=cols, use_threads=False):
        yield batch
        del batch
        pool.release_unused()
