"""What the market publishes about an interval's book, in two views.

- :func:`scenarios.results.payloads.book_curve`: the anonymous view for ``market/result``
  (every account reads it): the supply and demand step curves, bids highest first and
  asks lowest first, no household ids and no single order: each step pools at least
  :data:`~scenarios.results.payloads.ORDERS_PER_LEVEL` orders (consecutive in price; a
  remainder joins the step before it) at the pool's marginal price (the lowest bid, the
  highest ask of the pool), so the curve never shows more than is bid above, or asked
  below, each price. A side with fewer orders than that is published as no steps at all
  (its volume is still in the result's totals). Random limit prices rarely repeat, so
  steps per distinct price would expose every order's size and price.
- :func:`full_book`: the operator's ``market/book`` (the ``market`` and ``operator``
  accounts alone read it, :mod:`live.acl`): every order with its household, kind and
  fill, and every trade with buyer and seller.

:func:`decode_curve` and :func:`decode_trades` read them back (the dashboard).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.devices import kind_names
from agents.households.community import Plan
from live.payloads import number


def trade_rows(ids: list[str], res: Any) -> list[dict[str, Any]]:
    """Every trade of a cleared interval: ``{buyer, seller, energy_kwh, price_per_kwh
    (the buyer's), seller_price_per_kwh, grid_fee}``."""
    p = res.pairing
    return [
        {
            "buyer": ids[b],
            "seller": ids[s],
            "energy_kwh": float(e),
            "price_per_kwh": float(pb),
            "seller_price_per_kwh": float(ps),
            "grid_fee": float(f),
        }
        for b, s, e, pb, ps, f in zip(
            p.buyer.tolist(),
            p.seller.tolist(),
            p.energy_kwh.tolist(),
            p.price_per_kwh.tolist(),
            p.seller_price_per_kwh.tolist(),
            res.trade_fee.tolist(),
            strict=True,
        )
    ]


def full_book(t: int, interval_start: str, ids: list[str], plan: Plan, res: Any) -> dict[str, Any]:
    """The ``market/book`` payload of interval ``t``: ``orders`` (columns ``agent``,
    ``side``, ``kind``, ``energy_kwh``, ``price_per_kwh``, ``filled_kwh``, one entry per
    order in the market's canonical order) and ``trades`` (:func:`trade_rows`)."""
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
        "trades": trade_rows(ids, res),
    }


def decode_curve(side: Any) -> tuple[np.ndarray, np.ndarray]:
    """One side of a result's ``book`` as arrays (energy [kWh], price [currency/kWh]):
    its steps ``[energy_kwh, price_per_kwh]`` (or orders ``{energy_kwh,
    price_per_kwh}``); malformed entries and empty steps are left out."""
    kwh, price = [], []
    for step in side if isinstance(side, list) else []:
        if isinstance(step, dict):
            e, p = number(step.get("energy_kwh")), number(step.get("price_per_kwh"))
        elif isinstance(step, list | tuple) and len(step) == 2:
            e, p = number(step[0]), number(step[1])
        else:
            continue
        if e is not None and p is not None and e > 0:
            kwh.append(e)
            price.append(p)
    return np.asarray(kwh, float), np.asarray(price, float)


def decode_trades(payload: dict[str, Any], t: int) -> list[dict[str, Any]]:
    """The trades of a ``market/book`` as rows of trades.parquet (``t``, ``buyer_id``,
    ``seller_id``, …); a trade without a finite energy and price is left out, a missing
    seller price is the buyer's, a missing grid fee 0."""
    rows = []
    for tr in payload.get("trades") or []:
        if not isinstance(tr, dict):
            continue
        energy, price = number(tr.get("energy_kwh")), number(tr.get("price_per_kwh"))
        if energy is None or price is None:
            continue
        seller_price = number(tr.get("seller_price_per_kwh"))
        fee = number(tr.get("grid_fee"))
        rows.append(
            {
                "t": t,
                "buyer_id": str(tr.get("buyer", "")),
                "seller_id": str(tr.get("seller", "")),
                "energy_kwh": energy,
                "price_per_kwh": price,
                "seller_price_per_kwh": price if seller_price is None else seller_price,
                "grid_fee": 0.0 if fee is None else fee,
            }
        )
    return rows
