"""What the market's orders can do for a broken limit, decided before any re-clearing.

The grid stage of an interval (``scenarios/engine/grid_stage.py``) re-clears only where the market
holds something that could relieve the broken limits (:func:`can_relieve`), and replaces
the re-clearing by its known optimum where only an under-voltage is broken that stays
broken without any flexible charging (:func:`saturated_relief`). Both work on the market's
order arrays (:class:`market.orders.Orders`) and the feeder's limits (:mod:`grid.limits`).
"""

from __future__ import annotations

import numpy as np

from grid.limits import Limits
from grid.lindistflow import FeederModel
from market.orders import TINY_KWH, OrderKind, Orders


def can_relieve(
    limits: Limits,
    v_pu: np.ndarray,
    line_violation: np.ndarray,
    orders: Orders,
    filled_kwh: np.ndarray,
    generation_kwh: np.ndarray,
    ev_deferrable_kwh: np.ndarray,
) -> bool:
    """Whether the market holds anything that could relieve the broken limits.

    Under-voltage is relieved only by not charging flexible storage or postponing EV
    charging that has time to spare; over-voltage by curtailing PV or not discharging
    storage; an overloaded branch by any of them. Where nothing could help (say, an
    evening under-voltage caused by inflexible load on a weak feeder), the interval is not
    re-cleared: the violation stands and is reported, and the market's result is what the
    re-clearing would give.
    """
    flexible = orders.flexible
    flex_buy = float(filled_kwh[flexible & orders.is_buy].sum())
    flex_buy += float(ev_deferrable_kwh.sum())
    flex_sell = float(filled_kwh[flexible & orders.is_sell].sum())
    pv = float(generation_kwh.sum())
    under = bool(limits.under_voltage(v_pu).any())
    over = bool(limits.over_voltage(v_pu).any())
    return (
        (under and flex_buy > TINY_KWH)
        or (over and pv + flex_sell > TINY_KWH)
        or (bool(line_violation.any()) and pv + flex_buy + flex_sell > TINY_KWH)
    )


def deferrable_of_buyers(orders: Orders, ev_deferrable_kwh: np.ndarray) -> np.ndarray:
    """Deferrable EV charging of households that buy their net position [kWh].

    Deferring it shrinks their buy order and nothing else (a household that charges
    from its own PV would turn into a seller instead)."""
    net_buy = (orders.kind == OrderKind.NET) & orders.is_buy
    buying = np.zeros(len(ev_deferrable_kwh))
    buying[orders.household[net_buy]] = orders.energy_kwh[net_buy]
    return np.minimum(ev_deferrable_kwh, buying)


def shrink_buy_orders(orders: Orders, deferred_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each buyer's net buy order reduced by its deferred charging: the energy of every
    order [kWh] and which orders stay (a buy order deferred entirely is dropped)."""
    net_buy = (orders.kind == OrderKind.NET) & orders.is_buy
    energy = orders.energy_kwh.copy()
    energy[net_buy] -= deferred_kwh[orders.household[net_buy]]
    return energy, ~net_buy | (energy > TINY_KWH)


def saturated_relief(
    model: FeederModel,
    household_bus: np.ndarray,
    v_pu: np.ndarray,
    line_violation: np.ndarray,
    orders: Orders,
    filled_kwh: np.ndarray,
    ev_deferrable_kwh: np.ndarray,
    p_kw: np.ndarray,
    q_kvar: np.ndarray,
    interval_hours: float,
) -> np.ndarray | None:
    """Orders to drop when an under-voltage persists even without any flexible charging.

    With only an under-voltage broken, the constrained clearing can relieve it only by
    not filling flexible buys and postponing deferrable EV charging; if the limit stays
    broken with all of that undone, its penalised optimum is exactly that: drop every
    flexible buy, defer all deferrable EV charging of the buyers
    (:func:`deferrable_of_buyers`), and clear the rest as the market would (the physics of
    the other orders does not depend on their fills). This returns that set of orders (a
    mask), or None when the optimisation is needed. Nodal prices are not defined then (the
    limit cannot be restored).
    """
    limits = model.limits
    under = bool(limits.under_voltage(v_pu).any())
    over = bool(limits.over_voltage(v_pu).any())
    if not under or over or line_violation.any():
        return None
    n_bus = model.feeder.n_bus
    flex_buy = orders.flexible & orders.is_buy
    charging = flex_buy & (filled_kwh > 0)
    deferred = deferrable_of_buyers(orders, ev_deferrable_kwh)
    relief_kwh = np.bincount(
        household_bus[orders.household[charging]], filled_kwh[charging], n_bus
    ).astype(float)
    relief_kwh += np.bincount(household_bus, deferred, n_bus)
    # the screen is the same linear model as the Pyomo check (equal to 1e-7 p.u.),
    # and this is only the decision whether the optimisation is needed
    v_relieved, _, _ = model.screen(p_kw + relief_kwh / interval_hours, q_kvar)
    if limits.under_voltage(v_relieved).any():
        return flex_buy
    return None
