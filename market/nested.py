"""The district market of nested markets (issue 18): a uniform double auction between LV
feeders over their aggregated residual curves.

Each LV feeder clears its own market first. What its households' net orders leave
unmatched (the *residual*: an order's energy minus its fill) is offered to the district
as one aggregated curve per feeder: the residual orders of one side at one limit price are
merged into one *step* (:func:`merge_steps`). The district clears all feeders' steps at
one uniform price with :func:`market.uniform.clear_uniform` (the k = 1/2 double auction:
the price is the midpoint of the marginal accepted bid and ask); what it does not match
goes to the utility, the last resort, at retail and feed-in. A feeder's own buy and sell
steps may match each other here when its mechanism left crossing orders (McAfee's trade
reduction); after a uniform auction a feeder's residual bids are all below its asks.

Market splitting. ``zone`` (one label per step) splits the district into markets that
clear on their own, each at its own price: the MV check of the engine gives the feeders
below a congested MV line a zone of their own, so that no district trade crosses the
congestion (:mod:`scenarios.engine.district_mv`).

Allocation back. A step's fill is shared by its orders pro rata to their residual energy
(:func:`allocate_pro_rata`): within one price step every order gets the same fraction,
which is the only split that does not depend on the order of the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.uniform import clear_uniform


@dataclass(frozen=True)
class Steps:
    """Merged residual orders: one row per (key, side, price) step; ``key`` labels a
    curve (a feeder, or a feeder's interval).

    ``group`` gives, per input order, the row of its step.
    """

    group: np.ndarray
    key: np.ndarray
    is_buy: np.ndarray
    price_per_kwh: np.ndarray
    energy_kwh: np.ndarray


def merge_steps(
    key: np.ndarray, is_buy: np.ndarray, price_per_kwh: np.ndarray, energy_kwh: np.ndarray
) -> Steps:
    """Merge orders of the same key (curve), side and limit price into one step each
    [kWh]; steps are sorted by key, side (sell first) and price."""
    key = np.asarray(key, np.int64)
    is_buy = np.asarray(is_buy, bool)
    price = np.asarray(price_per_kwh, float)
    n = len(key)
    if n == 0:
        e = np.zeros(0, np.int64)
        return Steps(e, e, np.zeros(0, bool), np.zeros(0), np.zeros(0))
    order = np.lexsort((price, is_buy, key))
    f, b, p = key[order], is_buy[order], price[order]
    new = np.ones(n, bool)
    new[1:] = (f[1:] != f[:-1]) | (b[1:] != b[:-1]) | (p[1:] != p[:-1])
    first = np.flatnonzero(new)
    group = np.empty(n, np.int64)
    group[order] = np.cumsum(new) - 1
    energy = np.bincount(group, weights=np.asarray(energy_kwh, float), minlength=len(first))
    return Steps(group, f[first], b[first], p[first], energy)


@dataclass(frozen=True)
class DistrictClearing:
    """One interval of the district market.

    ``filled_kwh`` per step [kWh]; ``price_per_kwh`` per step: the clearing price of its
    zone (NaN where the zone trades nothing); ``volume_kwh`` the energy traded in all zones.
    """

    filled_kwh: np.ndarray
    price_per_kwh: np.ndarray
    volume_kwh: float
    zones: int


def clear_district(steps: Steps, zone: np.ndarray | None = None) -> DistrictClearing:
    """Clear the steps at one uniform price per zone (``zone``: a label per step, default
    one zone)."""
    n = len(steps.energy_kwh)
    zone = np.zeros(n, np.int64) if zone is None else np.asarray(zone, np.int64)
    if zone.shape != (n,):
        raise ValueError(f"zone must have one label per step ({n}), got shape {zone.shape}")
    filled = np.zeros(n)
    price = np.full(n, np.nan)
    labels = np.unique(zone)
    for z in labels.tolist():
        buy = np.flatnonzero((zone == z) & steps.is_buy)
        sell = np.flatnonzero((zone == z) & ~steps.is_buy)
        if len(buy) == 0 or len(sell) == 0:
            continue
        m = clear_uniform(
            steps.energy_kwh[buy],
            steps.price_per_kwh[buy],
            steps.energy_kwh[sell],
            steps.price_per_kwh[sell],
        )
        filled[buy] = m.buy_filled_kwh
        filled[sell] = m.sell_filled_kwh
        if m.volume_kwh > 0:
            price[np.concatenate([buy, sell])] = m.price_per_kwh
    return DistrictClearing(filled, price, float(filled[steps.is_buy].sum()), len(labels))


def allocate_pro_rata(
    group: np.ndarray, energy_kwh: np.ndarray, step_kwh: np.ndarray, step_filled_kwh: np.ndarray
) -> np.ndarray:
    """Each order's share of its step's fill [kWh]: ``energy × filled / step energy``."""
    step_kwh = np.asarray(step_kwh, float)
    frac = np.divide(step_filled_kwh, step_kwh, out=np.zeros(len(step_kwh)), where=step_kwh > 0)
    return np.asarray(energy_kwh, float) * frac[np.asarray(group, np.int64)]
