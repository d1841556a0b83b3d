"""Reading the market's interval payloads back. They are built from the step's
:class:`~scenarios.engine.interval.IntervalResult` through the results schema
(:data:`scenarios.results.schema.COLUMNS`) by :mod:`scenarios.results.payloads` (so that
the batch engine's audit ledger holds the same payloads): a column with a ``live`` name
is published,

- from ``intervals.parquet``'s columns, in ``market/result`` (``grid.x`` inside its
  ``grid`` object, which is null without the grid check);
- from ``agents.parquet``'s and the settlement's own columns, in every household's
  ``agents/<id>/settlement``,

so that a column added to the table once is written by the batch engine and published
by the live market alike. The decoders (:func:`decode_result`, :func:`decode_settlement`,
:func:`decode_reading`) read those payloads back under the columns' names, through the
same table: what the dashboard shows of a live market is what a run writes.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from live.protocol import Reading
from scenarios.results.payloads import RESULT_FIELDS, SETTLEMENT_FIELDS, num
from scenarios.results.schema import (
    AGENTS_FILE,
    INTERVALS_FILE,
    SETTLEMENT,
    Column,
    columns,
)

READING_FIELDS = tuple(
    c for c in columns(AGENTS_FILE) if c.name in {f.name for f in fields(Reading)}
)
"""agents.parquet's columns a reading reports under the same name (its energies and the
storage's state of charge, which no settlement carries)."""
COMMUNITY_SUMS = {
    iv.name: hh.name
    for iv in columns(INTERVALS_FILE)
    for hh in columns(AGENTS_FILE) + columns(SETTLEMENT)
    if hh.source and iv.source == f"sum:{hh.source}"
}
"""intervals.parquet's column → the household column (agents.parquet's or the
settlement's) it sums over the community, as the schema's sources say."""


# --- decoders: a payload's fields under the results columns' names ---------------------


def number(value: Any) -> float | None:
    """A payload's JSON number as a finite float; None for anything else (null, text,
    true/false, NaN, an integer beyond the float range)."""
    if type(value) is float:  # the common case first
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return num(float(value))
    except OverflowError:
        return None


def _decoded(c: Column, value: Any) -> Any:
    """``value`` as column ``c``'s type, or None (absent, null, or not of that type)."""
    if c.dtype == "float64":
        return number(value)
    if c.dtype == "bool":
        return value if isinstance(value, bool) else None
    if c.dtype.startswith("int"):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return number(value)


def decode_result(payload: dict[str, Any]) -> dict[str, Any]:
    """intervals.parquet's columns a ``market/result`` carries (``grid.x`` read from its
    ``grid`` object): ``{column: value}``, None where absent or not of the column's type."""
    grid = payload.get("grid")
    grid = grid if isinstance(grid, dict) else {}
    out = {}
    for c in RESULT_FIELDS:
        nested = c.live.startswith("grid.")
        value = grid.get(c.live.removeprefix("grid.")) if nested else payload.get(c.live)
        out[c.name] = _decoded(c, value)
    return out


def decode_settlement(payload: dict[str, Any]) -> dict[str, float]:
    """The numbers of an ``agents/<id>/settlement`` under agents.parquet's (and the
    settlement's own) column names: ``bought_kwh`` as ``bought_p2p_kwh``, …; fields that
    are absent or not finite numbers are left out."""
    return _present({c.name: _decoded(c, payload.get(c.live)) for c in SETTLEMENT_FIELDS})


def decode_reading(payload: dict[str, Any]) -> dict[str, float]:
    """The numbers of an ``agents/<id>/reading`` that are agents.parquet columns
    (:data:`READING_FIELDS`); the rest left out."""
    return _present({c.name: _decoded(c, payload.get(c.name)) for c in READING_FIELDS})


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
