"""The market's interval payloads, built from the step's
:class:`~scenarios.engine.interval.IntervalResult` through the results schema
(:data:`scenarios.results.schema.COLUMNS`): a column with a ``live`` name is published,

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
from scenarios.engine.interval import IntervalResult
from scenarios.results.schema import (
    AGENTS_FILE,
    INTERVALS_FILE,
    SETTLEMENT,
    Column,
    columns,
)

RESULT_FIELDS = tuple(c for c in columns(INTERVALS_FILE) if c.live)
SETTLEMENT_FIELDS = tuple(c for c in columns(AGENTS_FILE) + columns(SETTLEMENT) if c.live)
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


def num(x: float | None) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _scalar(c: Column, value: Any) -> Any:
    if c.dtype == "bool":
        return bool(value)
    if c.dtype.startswith("int"):
        return int(value)
    return num(value)


def result_payload(
    t: int,
    interval_start: str,
    res: IntervalResult,
    grid_rows: tuple[list[dict], list[dict]] | None,
    counts: dict[str, int],
    book: dict[str, Any],
) -> dict[str, Any]:
    """The anonymous ``market/result`` of interval ``t``; ``grid_rows`` are the feeder's
    bus and line rows (None without the grid check)."""
    top: dict[str, Any] = {}
    grid: dict[str, Any] | None = {} if res.outcome is not None else None
    for c in RESULT_FIELDS:
        nested = c.live.startswith("grid.")
        if nested and grid is None:
            continue
        value = _scalar(c, res.value(c.source))
        if nested:
            assert grid is not None
            grid[c.live.removeprefix("grid.")] = value
        else:
            top[c.live] = value
    if grid is not None:
        assert grid_rows is not None
        grid["buses"], grid["lines"] = grid_rows
    return {
        "v": 1,
        "t": t,
        "interval_start": interval_start,
        **top,
        "grid": grid,
        "counts": counts,
        "book": book,
    }


def settlement_payloads(
    t: int,
    ids: list[str],
    res: IntervalResult,
    where: list[tuple[int, int]],
    estimated: set[int],
) -> dict[str, dict[str, Any]]:
    """Every household's ``agents/<id>/settlement`` (version 1) of interval ``t``;
    ``where`` is each order's (household row, index in its message), ``estimated`` the
    rows settled on a late meter's estimate."""
    n = len(ids)
    fills: dict[int, dict[int, float]] = {}
    for (row, i), f in zip(where, res.order_filled_kwh.tolist(), strict=True):
        fills.setdefault(row, {})[i] = f
    trades: dict[int, list[dict[str, Any]]] = {}
    p = res.pairing
    for b, s, e, pb, ps, fee in zip(
        p.buyer.tolist(),
        p.seller.tolist(),
        p.energy_kwh.tolist(),
        p.price_per_kwh.tolist(),
        p.seller_price_per_kwh.tolist(),
        res.trade_fee.tolist(),
        strict=True,
    ):
        trades.setdefault(b, []).append(
            {
                "side": "buy",
                "counterparty": ids[s],
                "energy_kwh": e,
                "price_per_kwh": pb,
                "grid_fee": fee,
            }
        )
        trades.setdefault(s, []).append(
            {
                "side": "sell",
                "counterparty": ids[b],
                "energy_kwh": e,
                "price_per_kwh": ps,
                "grid_fee": 0.0,
            }
        )
    price = num(res.price_per_kwh)
    values = {c.live: res.value(c.source).tolist() for c in SETTLEMENT_FIELDS}
    out = {}
    for row in range(n):
        f = fills.get(row, {})
        out[ids[row]] = {
            "v": 1,
            "t": t,
            "version": 1,
            "estimated": row in estimated,
            "price_per_kwh": price,
            "filled_kwh": [f[i] for i in sorted(f)],
            **{name: column[row] for name, column in values.items()},
            "trades": trades.get(row, []),
        }
    return out


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
