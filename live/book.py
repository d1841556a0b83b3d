"""The anonymous view of an interval's book, in ``market/result`` (every account reads it).

:func:`book_curve`: the supply and demand step curves, bids highest first and asks lowest
first, no household ids and no single order: each step pools at least
:data:`ORDERS_PER_LEVEL` orders (consecutive in price; a remainder joins the step before
it) at the pool's marginal price (the lowest bid, the highest ask of the pool), so the
curve never shows more than is bid above, or asked below, each price. A side with fewer
orders than that is published as no steps at all (its volume is still in the result's
totals). Random limit prices rarely repeat, so steps per distinct price would expose
every order's size and price.

The operator's full view, ``market/book`` (the ``market`` and ``operator`` accounts alone
read it, :mod:`live.acl`), every order with its household, kind and fill and every trade
with buyer and seller, is :func:`live.payloads.book_payload`.
"""

from __future__ import annotations

import numpy as np

from agents.community import Plan

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
