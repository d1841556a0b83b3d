"""The market step's clearing of a plan's orders (:class:`scenarios.engine.interval.MarketStep`):
the mechanism's array core on the plan's bids and asks, the fills per order, the trades by
household and the quality of the matching; and the no-P2P baseline's core, which matches
nothing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.households.community import Plan
from grid.pairing import Pairing
from market.mechanisms import ArrayMechanism
from market.quality import welfare
from market.uniform import Matching, clear_uniform, make_matching


@dataclass(frozen=True, slots=True)
class Cleared:
    """One interval's clearing: the matching, fills per order, trades and quality."""

    match: Matching
    filled_kwh: np.ndarray
    pairing: Pairing
    welfare: float
    optimal_welfare: float


def clear_plan(
    plan: Plan, core: ArrayMechanism, rng: np.random.Generator, optimal: bool
) -> Cleared:
    """Clear the plan's orders with the mechanism's array core.

    ``optimal`` says that the mechanism's matching is the welfare optimum (uniform), so
    the optimum need not be computed again.
    """
    buy = np.flatnonzero(plan.is_buy)
    sell = np.flatnonzero(~plan.is_buy)
    bq, bp = plan.energy_kwh[buy], plan.price_per_kwh[buy]
    sq, sp = plan.energy_kwh[sell], plan.price_per_kwh[sell]
    owners = plan.household[buy], plan.household[sell]
    match = core(bq, bp, sq, sp, rng, buy_owner=owners[0], sell_owner=owners[1])
    filled = np.zeros(len(plan.energy_kwh))
    filled[buy] = match.buy_filled_kwh
    filled[sell] = match.sell_filled_kwh
    pairing = Pairing(
        buyer=owners[0][match.trade_buy],
        seller=owners[1][match.trade_sell],
        energy_kwh=match.trade_kwh,
        price_per_kwh=match.buyer_price_per_kwh,
        seller_price_per_kwh=match.seller_price_per_kwh,
        buy_kind=plan.kind[buy][match.trade_buy],
        sell_kind=plan.kind[sell][match.trade_sell],
    )
    got = welfare(bp, sp, match)
    best = got if optimal else welfare(bp, sp, clear_uniform(bq, bp, sq, sp))
    return Cleared(match, filled, pairing, got, best)


def no_market(
    buy_kwh: np.ndarray,
    buy_price: np.ndarray,
    sell_kwh: np.ndarray,
    sell_price: np.ndarray,
    rng: np.random.Generator | None,
    **owners: np.ndarray | None,
) -> Matching:
    """The array core of the no-P2P baseline: nothing is matched."""
    none_i, none_f = np.zeros(0, np.int64), np.zeros(0)
    return make_matching(len(buy_kwh), len(sell_kwh), none_i, none_i, none_f, none_f, none_f)
