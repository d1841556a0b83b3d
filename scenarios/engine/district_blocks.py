"""Blocks of intervals of a district run (issue 18): the files the levels exchange are
written and read one block of intervals at a time, so that what a process holds does not
grow with the run's length.

A *block* is ``block`` consecutive intervals (block ``i``: ``[i·block, (i+1)·block)``, the
last one shorter). The files a feeder task streams for the district
(:mod:`scenarios.engine.district_feeder`) hold one Parquet row group per block that has
rows, sorted by interval ``t``; :class:`BlockReader` hands them back block by block.
:func:`row_blocks` cuts a results file written interval-major (``agents.parquet``: one
row per household and interval; ``intervals.parquet``: one row per interval) into tables
of whole blocks, and :class:`BlockWriter` writes a results file again block by block, with
the options of the run's writers (:class:`scenarios.results.stream.TableStream`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scenarios.results.blocks import read_blocks
from scenarios.results.stream import COMPRESSION, TableStream


def n_blocks(n_t: int, block: int) -> int:
    """How many blocks of ``block`` intervals cover ``n_t`` intervals."""
    return -(-n_t // block)


def block_range(i: int, n_t: int, block: int) -> tuple[int, int]:
    """The intervals ``[a, b)`` of block ``i``."""
    return i * block, min((i + 1) * block, n_t)


class BlockReader:
    """The rows of one block at a time from a file of row groups sorted by ``t`` (asked
    for in increasing block order; a block without rows gives an empty table)."""

    def __init__(self, path: Path, block: int, columns: list[str] | None = None) -> None:
        self._file = pq.ParquetFile(path, pre_buffer=False)
        self._block = block
        self._columns = columns
        self._next = 0
        self._pending: pa.Table | None = None

    def read(self, i: int) -> pa.Table:
        """The rows of block ``i``."""
        parts: list[pa.Table] = []
        while self._pending is not None or self._next < self._file.num_row_groups:
            if self._pending is None:
                # one small row group: threads and pre-buffering cost more than they save
                self._pending = self._file.read_row_group(
                    self._next, self._columns, use_threads=False
                )
                self._next += 1
            t = self._pending.column("t")
            if len(t) and int(t[0].as_py()) // self._block > i:
                break
            if len(t) and int(t[len(t) - 1].as_py()) // self._block != i:
                raise ValueError(f"{self._file.metadata}: a row group spans blocks")
            parts.append(self._pending)
            self._pending = None
        if not parts:
            schema = self._file.schema_arrow
            if self._columns is not None:
                schema = pa.schema([schema.field(c) for c in self._columns])
            return schema.empty_table()
        return pa.concat_tables(parts)


def row_blocks(path: Path, rows: int) -> Iterator[pa.Table]:
    """``path``'s rows in tables of ``rows`` rows (the last one shorter), streamed
    (:func:`~scenarios.results.blocks.read_blocks`)."""
    buffer: list[pa.RecordBatch] = []
    held = 0
    for batch in read_blocks(path, rows=max(rows, 1)):
        buffer.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(buffer)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            buffer, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(buffer)


ROW_GROUP_BYTES = 1 << 22
"""What a writer that gathers blocks holds before it writes a row group [B]. A Parquet
footer holds every row group's column metadata until the file is closed, and a reader
decodes it all when it opens the file: a year of 96-interval blocks as row groups cost
about 30 MB to rewrite ``intervals.parquet`` and ``agents.parquet``, and 10 MB to open
the district's ``intervals.parquet`` (0.5 MB of footer). So files read whole, not block
by block, are written a few MB at a time."""


class _Gathered:
    """Blocks held until they reach :data:`ROW_GROUP_BYTES` together."""

    def __init__(self) -> None:
        self._held: list[pa.Table] = []
        self._bytes = 0

    def add(self, table: pa.Table) -> pa.Table | None:
        """Hold ``table``; the blocks held as one table once they are enough."""
        self._held.append(table)
        self._bytes += table.nbytes
        return self.take() if self._bytes >= ROW_GROUP_BYTES else None

    def take(self) -> pa.Table | None:
        """The blocks held as one table (None if there are none), holding none after."""
        if not self._held:
            return None
        table = pa.concat_tables(self._held).combine_chunks()
        self._held, self._bytes = [], 0
        return table


class BlockWriter:
    """Write a results file again, block by block, into a new file that replaces the old
    one on :meth:`close` (the run's writers' options: zstd, dictionary-encoded ids); the
    blocks are gathered into row groups of about :data:`ROW_GROUP_BYTES`."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.new")
        self._schema = schema
        ids = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        self._stream = TableStream(self._tmp, schema, ids, always=True)
        self._gathered = _Gathered()

    def write(self, columns: Mapping[str, pa.Array | pa.ChunkedArray | np.ndarray]) -> None:
        self._write(self._gathered.add(pa.table(dict(columns), schema=self._schema)))

    def _write(self, table: pa.Table | None) -> None:
        if table is not None:
            self._stream.write({name: table.column(name) for name in table.column_names})

    def close(self) -> None:
        self._write(self._gathered.take())
        self._stream.close()
        os.replace(self._tmp, self.path)


class AppendWriter:
    """A Parquet file written one block (``pa.Table``) at a time; created on the first
    block with rows, or empty with the first block's schema on :meth:`close`. Each block
    with rows is a row group (what :class:`BlockReader` reads), or with ``gather`` the
    blocks are gathered into row groups of about :data:`ROW_GROUP_BYTES` (a file read
    whole)."""

    def __init__(self, path: Path, gather: bool = False) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._gathered = _Gathered() if gather else None

    def write(self, table: pa.Table) -> None:
        if self._schema is None:
            self._schema = table.schema
        if table.num_rows == 0:
            return
        table = table.cast(self._schema)
        self._write(table if self._gathered is None else self._gathered.add(table))

    def _write(self, table: pa.Table | None) -> None:
        if table is None:
            return
        if self._writer is None:
            assert self._schema is not None
            self._writer = pq.ParquetWriter(self.path, self._schema, compression=COMPRESSION)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._gathered is not None:
            self._write(self._gathered.take())
        if self._writer is None and self._schema is not None:
            pq.write_table(self._schema.empty_table(), self.path, compression=COMPRESSION)
        if self._writer is not None:
            self._writer.close()


def is_buy(side: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Which rows of an orders table's ``side`` column are bids (no Python strings)."""
    return pc.equal(side, "buy").to_numpy(zero_copy_only=False)
