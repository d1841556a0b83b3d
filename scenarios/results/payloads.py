"""The market's interval payloads, built from the step's
:class:`~scenarios.engine.interval.IntervalResult` through the results schema
(:data:`scenarios.results.schema.COLUMNS`): a column with a ``live`` name is published,

- from ``intervals.parquet``'s columns, in ``market/result`` (``grid.x`` inside its
  ``grid`` object, which is null without the grid check), with the anonymous book curve
  (:func:`book_curve`);
- from ``agents.parquet``'s and the settlement's own columns, in every household's
  ``agents/<id>/settlement``,

so that a column added to the table once is written by the batch engine and published
by the live market alike. The live market publishes them (:mod:`live.market`); the batch
engine writes the same payloads into its audit ledger (:mod:`scenarios.audit.ledger`),
and the ledger's replay rebuilds them with these functions to compare
(:mod:`scenarios.audit.replay`). The decoders that read them back are the live side's
(:mod:`live.payloads`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.households.community import Plan
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


#: Fewest orders pooled in one step of the anonymous book curve.
ORDERS_PER_LEVEL = 5


def _levels(energy: np.ndarray, price: np.ndarray, descending: bool) -> list[list[float]]:
    n = len(price)
    if n < ORDERS_PER_LEVEL:
        return []
    order = np.argsort(-price if descending else price, kind="stable")
    step = np.minimum(np.arange(n) // ORDERS_PER_LEVEL, n // ORDERS_PER_LEVEL - 1)
    total = np.bincount(step, energy[order])
    last = np.flatnonzero(np.r_[step[1:] != step[:-1], True])  # each step's marginal order
    return [[float(e), float(p)] for e, p in zip(total, price[order][last], strict=True)]


def book_curve(plan: Plan) -> dict[str, list[list[float]]]:
    """``{"buy": [[energy_kwh, price_per_kwh], …], "sell": […]}``: steps of at least
    :data:`ORDERS_PER_LEVEL` orders at their marginal price, bids by falling price,
    asks by rising price."""
    buy = plan.is_buy
    return {
        "buy": _levels(plan.energy_kwh[buy], plan.price_per_kwh[buy], True),
        "sell": _levels(plan.energy_kwh[~buy], plan.price_per_kwh[~buy], False),
    }
