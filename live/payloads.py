"""The market's interval payloads, built from the step's
:class:`~scenarios.interval.IntervalResult` through the results schema
(:data:`scenarios.results_schema.COLUMNS`): a column with a ``live`` name is published,

- from ``intervals.parquet``'s columns, in ``market/result`` (``grid.x`` inside its
  ``grid`` object, which is null without the grid check);
- from ``agents.parquet``'s and the settlement's own columns, in every household's
  ``agents/<id>/settlement``,

so that a column added to the table once is written by the batch engine and published
by the live market alike. Also the operator's ``market/book`` (every order and trade,
:func:`book_payload`) and a settlement re-issued with a late meter's true energy
(:func:`rebilled`, the late-energy rule of :mod:`live.corrections`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from agents.community import Plan
from agents.devices import kind_names
from market.settlement import Tariffs, settle
from scenarios.interval import IntervalResult
from scenarios.results_schema import (
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


def _trades(res: IntervalResult) -> Iterator[tuple[int, int, float, float, float, float]]:
    """Every trade of a cleared interval: buyer and seller rows, energy, the buyer's and
    the seller's price, the grid fee."""
    p = res.pairing
    return zip(
        p.buyer.tolist(),
        p.seller.tolist(),
        p.energy_kwh.tolist(),
        p.price_per_kwh.tolist(),
        p.seller_price_per_kwh.tolist(),
        res.trade_fee.tolist(),
        strict=True,
    )


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
    for b, s, e, pb, ps, fee in _trades(res):
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


def book_payload(
    t: int, interval_start: str, ids: list[str], plan: Plan, res: IntervalResult
) -> dict[str, Any]:
    """The operator's ``market/book`` of interval ``t``: ``orders`` (columns ``agent``,
    ``side``, ``kind``, ``energy_kwh``, ``price_per_kwh``, ``filled_kwh``, one entry per
    order in the market's canonical order) and ``trades`` (``{buyer, seller, energy_kwh,
    price_per_kwh (the buyer's), seller_price_per_kwh, grid_fee}``)."""
    names = np.asarray(ids, dtype=object)
    return {
        "v": 1,
        "t": t,
        "interval_start": interval_start,
        "orders": {
            "agent": names[plan.household].tolist(),
            "side": np.where(plan.is_buy, "buy", "sell").tolist(),
            "kind": np.asarray(kind_names(), dtype=object)[plan.kind].tolist(),
            "energy_kwh": plan.energy_kwh.tolist(),
            "price_per_kwh": plan.price_per_kwh.tolist(),
            "filled_kwh": np.asarray(res.order_filled_kwh, dtype=float).tolist(),
        },
        "trades": [
            {
                "buyer": ids[b],
                "seller": ids[s],
                "energy_kwh": float(e),
                "price_per_kwh": float(pb),
                "seller_price_per_kwh": float(ps),
                "grid_fee": float(f),
            }
            for b, s, e, pb, ps, f in _trades(res)
        ],
    }


def rebilled(
    payload: dict[str, Any], import_kwh: float, export_kwh: float, tariffs: Tariffs
) -> dict[str, Any]:
    """The settlement ``payload`` with the metered energy ``import_kwh`` / ``export_kwh``
    instead of its estimate: the next ``version``; the same trades, fees and committed
    net; the difference to the commitment is imbalance (:func:`market.settlement.settle`)."""
    metered = export_kwh - import_kwh - payload["battery_kwh"] - payload["ev_kwh"]

    def one(key: str) -> np.ndarray:
        return np.array([float(payload[key])])

    bill = settle(
        np.array([metered]),
        one("committed_net_kwh"),
        one("bought_kwh"),
        one("sold_kwh"),
        one("paid"),
        one("received"),
        tariffs,
        one("fees"),
    )
    return {
        **payload,
        "version": int(payload.get("version", 1)) + 1,
        "estimated": False,
        "generation_kwh": export_kwh,
        "demand_kwh": import_kwh,
        **{
            key: float(getattr(bill, key)[0])
            for key in ("grid_import_kwh", "grid_export_kwh", "imbalance_kwh", "imbalance_cost")
        },
        "cost": float(bill.cost[0]),
    }
