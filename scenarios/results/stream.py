"""Appending record batches to one Parquet file (the streamed results tables).

Every stream writes zstd pages; its id columns dictionary-encoded; its float columns
``BYTE_STREAM_SPLIT`` (each byte of the values in a stream of its own, so that the
exponent bytes, alike from value to value, and the zero low bytes of a value written in
steps, :data:`scenarios.results.schema.QUANTUM`, compress to almost nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
"""zstd's level: 1 writes a table of 36 float columns within 3 % of level 9's size
(bench/bench_output.py), at a fraction of the time."""


class TableStream:
    """Append record batches of one schema to a Parquet file, created on the first write:
    a stream never written (the feeder tables of a live market) leaves no file, unless it
    is ``always`` written (a run without a trade still has its ``trades.parquet``)."""

    def __init__(
        self, path: Path, schema: pa.Schema, dictionary_columns: list[str], always: bool = False
    ) -> None:
        self.path = path
        self.schema = schema
        self._dictionary_columns = dictionary_columns
        self._always = always
        self._writer: pq.ParquetWriter | None = None

    def write(self, columns: Mapping[str, pa.Array | np.ndarray]) -> None:
        self._open()
        assert self._writer is not None
        self._writer.write_table(pa.table(dict(columns), schema=self.schema))
        # what the write freed goes back to the system, not kept by Arrow's allocator for
        # the next (scenarios/results/blocks.py says why; 1 us when there is nothing)
        pa.default_memory_pool().release_unused()

    def _open(self) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            floats = [f.name for f in self.schema if pa.types.is_floating(f.type)]
            self._writer = pq.ParquetWriter(
                self.path,
                self.schema,
                compression=COMPRESSION,
                compression_level=COMPRESSION_LEVEL,
                use_dictionary=self._dictionary_columns,
                use_byte_stream_split=floats or False,
            )

    def close(self) -> None:
        if self._always:
            self._open()
        if self._writer is not None:
            self._writer.close()
