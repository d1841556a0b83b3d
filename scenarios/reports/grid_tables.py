"""What the report draws of buses.parquet and lines.parquet, read a block of rows at a time
(only the columns it needs), so the report step's memory does not grow with the run:

- per element and **time bucket** (at most :data:`MAX_HEATMAP_COLUMNS` buckets of
  consecutive intervals): the lowest and the highest voltage, the highest loading, the
  mean nodal price where one was set (the heatmaps of :func:`scenarios.reports.run.grid_figures`);
- every drawn column at a few **picked intervals** (the feeder maps' worst interval and
  each day's worst, :mod:`scenarios.reports.feeder_report`);
- the largest absolute injection of any bus in any interval (the maps' size scale).

A table is one pass, a block of rows at a time
(:func:`scenarios.results.blocks.read_blocks`); a DataFrame (a test's,
a small run's) is summarised as one batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from scenarios.results.blocks import read_blocks

MAX_HEATMAP_COLUMNS = 700
#: buses.parquet: bucketed {key: (column, how)}, picked columns
BUS_SPEC = (
    {"v_pu": ("v_pu", "min"), "v_pu_max": ("v_pu", "max"),
     "nodal_price_per_kwh": ("nodal_price_per_kwh", "mean")},
    ("v_pu", "p_kw", "nodal_price_per_kwh"),
)  # fmt: skip
LINE_SPEC = ({"loading_frac": ("loading_frac", "max")}, ("loading_frac", "p_kw"))
Spec = tuple[dict[str, tuple[str, str]], tuple[str, ...]]


def time_buckets(timestamps: pd.Series) -> tuple[np.ndarray, int]:
    """Group intervals into at most MAX_HEATMAP_COLUMNS consecutive buckets: each
    interval's bucket, and the bucket size."""
    n = len(timestamps)
    size = max(1, -(-n // MAX_HEATMAP_COLUMNS))
    return np.arange(n) // size, size


@dataclass
class ElementTable:
    """One table summarised: ``order`` the elements as first written; ``bucketed[col]``
    (element, bucket), NaN where no value; ``picked[col]`` (picked interval, element);
    ``abs_max[col]`` the largest absolute value of the table."""

    order: list[str] = field(default_factory=list)
    bucketed: dict[str, np.ndarray] = field(default_factory=dict)
    picked: dict[str, np.ndarray] = field(default_factory=dict)
    abs_max: dict[str, float] = field(default_factory=dict)


class _Summary:
    def __init__(
        self, key: str, spec: Spec, bucket: np.ndarray,
        picks: np.ndarray,
    ) -> None:  # fmt: skip
        self.key, (self.how, self.picked_cols) = key, spec
        self.bucket, self.n_buckets = bucket, int(bucket.max()) + 1 if len(bucket) else 0
        self.picks = picks
        self.where: dict[str, int] = {}
        self.out = ElementTable()
        self._acc: dict[str, list[np.ndarray]] = {}

    def _elements(self, keys: pa.Array) -> np.ndarray:
        """Each row's element index, new elements numbered in order of appearance."""
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if not isinstance(keys, pa.DictionaryArray):
            keys = keys.cast(pa.string()).dictionary_encode()
        codes = keys.indices.to_numpy(zero_copy_only=False)
        labels = keys.dictionary.to_pylist()
        used, first = np.unique(codes, return_index=True)
        for code in used[np.argsort(first)]:
            self.where.setdefault(str(labels[code]), len(self.where))
        lookup = np.full(len(labels), -1, dtype=np.int64)
        lookup[used] = [self.where[str(labels[c])] for c in used]
        return lookup[codes]

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        names = batch.schema.names
        t = batch.column(names.index("t")).to_numpy(zero_copy_only=False).astype(np.int64)
        elem = self._elements(batch.column(names.index(self.key)))
        flat = elem * self.n_buckets + self.bucket[t]
        size = len(self.where) * self.n_buckets
        for out_key, (col, how) in self.how.items():
            if col not in names:
                continue
            v = batch.column(names.index(col)).to_numpy(zero_copy_only=False).astype(np.float64)
            ok = ~np.isnan(v)
            acc = self._acc.setdefault(out_key, [np.zeros(0), np.zeros(0)])
            if len(acc[0]) < size:  # value (min, max or sum) and count, grown to the elements
                empty = 0.0 if how == "mean" else np.nan
                acc[0] = np.r_[acc[0], np.full(size - len(acc[0]), empty)]
                acc[1] = np.r_[acc[1], np.zeros(size - len(acc[1]))]
            if how == "mean":
                acc[0] += np.bincount(flat[ok], v[ok], size)
            else:
                agg = pd.Series(v[ok]).groupby(flat[ok]).agg(how)
                fold = np.fmin if how == "min" else np.fmax
                idx = agg.index.to_numpy()
                acc[0][idx] = fold(acc[0][idx], agg.to_numpy())
            acc[1] += np.bincount(flat[ok], minlength=size)
        at = np.searchsorted(self.picks, t)
        hit = np.isin(t, self.picks)
        for col in self.picked_cols:
            if col not in names:
                continue
            v = batch.column(names.index(col)).to_numpy(zero_copy_only=False).astype(np.float64)
            kept = self.out.picked.get(col, np.zeros((len(self.picks), 0)))
            if kept.shape[1] < len(self.where):
                grown = np.full((len(self.picks), len(self.where)), np.nan)
                grown[:, : kept.shape[1]] = kept
                kept = self.out.picked[col] = grown
            kept[at[hit], elem[hit]] = v[hit]
            peak = float(np.nanmax(np.abs(v), initial=0.0))
            self.out.abs_max[col] = max(self.out.abs_max.get(col, 0.0), peak)

    def result(self) -> ElementTable:
        self.out.order = list(self.where)
        shape = (len(self.where), self.n_buckets)
        for col, (value, count) in self._acc.items():
            value = value.reshape(shape)
            if self.how[col][1] == "mean":
                value = np.divide(value, count.reshape(shape), out=np.full(shape, np.nan),
                                  where=count.reshape(shape) > 0)  # fmt: skip
            self.out.bucketed[col] = value
        return self.out


def summarise(
    source: Path | pd.DataFrame,
    key: str,
    spec: Spec,
    bucket: np.ndarray,
    picks: Sequence[int] = (),
) -> ElementTable:
    """Summarise a buses or lines table (module docstring): ``bucket`` is each
    interval's time bucket, ``picks`` the intervals whose every drawn column is kept."""
    summary = _Summary(key, spec, bucket, np.unique(np.asarray(picks, dtype=np.int64)))
    batches: Iterable[pa.RecordBatch | pa.Table]
    if isinstance(source, pd.DataFrame):
        batches = [pa.Table.from_pandas(source, preserve_index=False)]
    else:
        wanted = {"t", key, *(col for col, _ in spec[0].values()), *spec[1]}
        batches = read_blocks(source, wanted)
    for batch in batches:
        summary.add(batch)
    return summary.result()


@dataclass
class GridTables:
    """The report's view of a run's buses and lines tables; ``picks`` sorted."""

    buses: ElementTable
    lines: ElementTable
    picks: list[int]

    def row(self, t: int) -> int:
        return self.picks.index(t)


def grid_tables(
    buses: Path | pd.DataFrame,
    lines: Path | pd.DataFrame,
    timestamps: pd.Series,
    picks: Sequence[int] = (),
) -> GridTables:
    """Both tables summarised over the intervals of ``timestamps``."""
    bucket, _ = time_buckets(timestamps)
    return GridTables(
        summarise(buses, "bus", BUS_SPEC, bucket, picks),
        summarise(lines, "line", LINE_SPEC, bucket, picks),
        sorted(set(int(t) for t in picks)),
    )
