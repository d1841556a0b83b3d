"""Writing the per-household table: ``agents.parquet`` (one row per household and
interval), ``agents_daily.parquet`` (one per household and day) or neither
(``[output] agents = "full" | "daily" | "none"``), and in every mode the run's totals
per household, accumulated as the windows pass (:class:`AgentTotals`), from which the
KPIs per member come whatever the file holds.

Each value is written in its column's type (:mod:`scenarios.results.schema`): energies
and money rounded to multiples of :data:`~scenarios.results.schema.QUANTUM`, the end
states and the indoor temperature as float32; the totals are summed from the values as
the engine computed them (float64, before the rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from scenarios.results.schema import (
    AGENTS_DAILY_FILE,
    AGENTS_FILE,
    STATE_COLUMNS,
    Column,
    arrow_schema,
    columns,
    names,
)
from scenarios.results.stream import TableStream

AGENT_VALUE_COLUMNS = names(AGENTS_FILE)[3:]
"""agents.parquet's columns after t, agent_id and bus, in order (the schema table gives
their types, units and signs)."""
AgentsMode = Literal["full", "daily", "none"]
AGENTS_MODES: tuple[AgentsMode, ...] = ("full", "daily", "none")
SUMMED_COLUMNS = tuple(c for c in AGENT_VALUE_COLUMNS if c not in STATE_COLUMNS)
"""The value columns that are energies or money of an interval (summed by day and run)."""
_COLUMN = {c.name: c for c in columns(AGENTS_FILE)}


def narrowed(c: Column, values: np.ndarray) -> np.ndarray:
    """``values`` as column ``c`` stores them: in steps of its quantum, or as float32."""
    if c.quantum:
        return np.rint(values / c.quantum) * c.quantum
    if c.dtype == "float32":
        return values.astype(np.float32)
    return values


@dataclass
class AgentTotals:
    """Per household (arrays of n, in the writer's order), as the engine computed them:
    ``sums`` of :data:`SUMMED_COLUMNS` over the intervals written, ``last`` of every value
    column at the last interval written (the end states), and how many ``intervals``."""

    sums: dict[str, np.ndarray]
    last: dict[str, np.ndarray] = field(default_factory=dict)
    intervals: int = 0

    def add(self, values: Mapping[str, np.ndarray]) -> None:
        """Add a window: each value column as a (T, n) array."""
        for name in SUMMED_COLUMNS:
            self.sums[name] += values[name].sum(axis=0)
        self.last = {name: np.array(values[name][-1]) for name in AGENT_VALUE_COLUMNS}
        self.intervals += len(values[AGENT_VALUE_COLUMNS[0]])


class AgentsWriter:
    """Streams the per-household table of a run in ``mode`` (module docstring); daily
    needs ``intervals_per_day`` (a day is ``t // intervals_per_day``)."""

    def __init__(
        self,
        out_dir: Path,
        agent_ids: np.ndarray,
        buses: np.ndarray | None,
        mode: AgentsMode = "full",
        intervals_per_day: int | None = None,
    ) -> None:
        if mode not in AGENTS_MODES:
            raise ValueError(f"[output] agents = {mode!r}: expected one of {AGENTS_MODES}")
        if mode == "daily" and not intervals_per_day:
            raise ValueError('[output] agents = "daily" needs the intervals per day')
        self.mode = mode
        self._ipd = intervals_per_day or 1
        self._ids = pa.array(agent_ids.astype(str), pa.string())
        self._n = n = len(agent_ids)
        self._bus: tuple[pa.Array, np.ndarray] | None = None
        if buses is not None:
            labels, bus_index = np.unique(buses.astype(str), return_inverse=True)
            self._bus = (pa.array(labels, pa.string()), bus_index.astype(np.int32))
        self.totals = AgentTotals({name: np.zeros(n) for name in SUMMED_COLUMNS})
        file = AGENTS_DAILY_FILE if mode == "daily" else AGENTS_FILE
        schema = arrow_schema(file)
        self._stream = TableStream(out_dir / file, schema, ["agent_id", "bus"])
        self._carry: tuple[int, dict[str, np.ndarray]] | None = None

    def write_window(self, t0: int, values: Mapping[str, np.ndarray]) -> None:
        """Write a window of intervals from ``t0``; ``values`` maps each value column to a
        (T, n) array."""
        self.totals.add(values)
        if self.mode == "full":
            n_t = next(iter(values.values())).shape[0]
            self._write(np.arange(t0, t0 + n_t, dtype=np.int32), values, "t")
        elif self.mode == "daily":
            self._add_days(t0, values)

    def _write(self, keys: np.ndarray, values: Mapping[str, np.ndarray], key: str) -> None:
        """Rows for each key (interval or day) × household; ``values``: (len(keys), n)."""
        n = self._n
        rows = len(keys) * n
        index = pa.array(np.tile(np.arange(n, dtype=np.int32), len(keys)))
        if self._bus is not None:
            labels, bus_index = self._bus
            bus = pa.DictionaryArray.from_arrays(pa.array(np.tile(bus_index, len(keys))), labels)
        else:
            bus = pa.nulls(rows, pa.dictionary(pa.int32(), pa.string()))
        out: dict[str, Any] = {
            key: np.repeat(keys, n),
            "agent_id": pa.DictionaryArray.from_arrays(index, self._ids),
            "bus": bus,
        }
        for name in AGENT_VALUE_COLUMNS:
            flat = np.ascontiguousarray(values[name]).reshape(rows)
            out[name] = narrowed(_COLUMN[name], flat)
        self._stream.write(out)

    def _add_days(self, t0: int, values: Mapping[str, np.ndarray]) -> None:
        """Sum the window's whole days into rows; keep a day the window ends inside."""
        if self._carry is not None:
            c0, carried = self._carry
            assert c0 + len(carried[AGENT_VALUE_COLUMNS[0]]) == t0, "windows not in order"
            values = {k: np.concatenate([carried[k], values[k]]) for k in AGENT_VALUE_COLUMNS}
            t0 = c0
        n_t = len(values[AGENT_VALUE_COLUMNS[0]])
        end = n_t if (t0 + n_t) % self._ipd == 0 else (t0 + n_t) // self._ipd * self._ipd - t0
        end = max(end, 0)
        rest = {k: v[end:].copy() for k, v in values.items()}
        self._carry = (t0 + end, rest) if end < n_t else None
        if end:
            self._write_days(t0, {k: v[:end] for k, v in values.items()})

    def _write_days(self, t0: int, values: Mapping[str, np.ndarray]) -> None:
        n_t = len(values[AGENT_VALUE_COLUMNS[0]])
        day = (t0 + np.arange(n_t)) // self._ipd
        starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
        ends = np.r_[starts[1:], n_t] - 1
        days = {
            k: v[ends] if k in STATE_COLUMNS else np.add.reduceat(v, starts, axis=0)
            for k, v in values.items()
        }
        self._write(day[starts].astype(np.int32), days, "day")

    def close(self) -> None:
        if self._carry is not None:
            c0, carried = self._carry
            self._carry = None
            self._write_days(c0, carried)
        if self.mode != "none":
            self._stream.close()
