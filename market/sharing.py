"""Energy sharing: allocation keys as a market mechanism (the array core).

In an energy-sharing community (§42c EnWG, an Austrian renewable energy community, a
French *autoconsommation collective*) nobody bids: every quarter hour the metered surplus
of the members is allocated to the members' metered consumption by an agreed **key**,
at the community's internal price. The core works on the interval's net positions, given
as orders (a sell order is a member's net surplus, a buy order its net demand; limit
prices are ignored), with the signature of every array core
(:data:`market.mechanisms.ARRAY_MECHANISMS`), so that the engine's market step, the live
market and ``compare`` run it unchanged.

**Keys** (``S`` the community's surplus, the sum of the sell orders; ``d_j`` member
``j``'s demand; ``a_j`` its allocation):

- ``proportional`` (dynamic): ``a_j = d_j · min(1, S / Σ d)``, in proportion to each
  member's consumption in the interval.
- ``equal`` (glass-filling): every member with demand gets the same share of ``S``; what a
  member cannot use (its share exceeds ``d_j``) is re-distributed equally to the others, in
  rounds, until the surplus or the demand runs out. The fixed point of those rounds is a
  level ``L`` with ``a_j = min(d_j, L)`` and ``Σ a_j = min(S, Σ d)``.
- ``static``: fixed shares ``w_j`` (fractions of the surplus). Round 1 gives
  ``min(d_j, w_j S)``; **the leftover rule**: what members cannot use (and the part of
  ``S`` no share covers) is re-offered to the members whose demand is not yet met, in
  proportion to their static shares, round after round, until it is used up or every
  member with a share is served; what is left is exported. Members without a share
  (``w_j = 0``) get nothing. The fixed point is ``a_j = min(d_j, w_j λ)`` with one
  ``λ ≥ S``, so the result does not change if the shares are scaled.

All three are one weighted glass-filling (:func:`glass_fill`, weights ``d_j``, ``1`` and
``w_j``), computed with one sort and cumulative sums (no loop over members): sort members
by the level at which they are satisfied, ``d_j / w_j``; the allocated total at the
``k``-th level is nondecreasing in ``k``, so the level that uses up the surplus is found
by a binary search on it.

**Priority.** Optional ordered groups of members (a school first, then the households):
group 1 is served from ``S`` by the key, group 2 from what is left, and so on; members in
no group come last. A loop over the (few) groups, not over members.

**Invariants.** Every member's allocation is at most its demand, the total at most ``S``
(equal to ``min(S, Σ d)`` for ``proportional`` and ``equal`` and without priority limits);
the rest of ``S`` is exported at feed-in by the settlement.

**Producers and trades.** Every seller shares the same fraction ``A / S`` of its surplus
(``A`` the allocated total): pro rata, as the pooled surplus of the community. The trades
pair the sellers' shared energy and the buyers' allocations along their cumulative sums
(members in input order), so there are at most ``n_buy + n_sell − 1`` trades; a trade
between two orders of one member is re-paired (:func:`market.owners.separate_owners`).
Each trade's seller is the member whose surplus is shared, its buyer the member it is
allocated to, and both face the internal price (no market surplus).

A member should place one order (its net position), as the engine does under sharing;
a member with several buy orders has its static or equal weight split evenly between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.mechanism_names import SHARING_KEYS
from market.owners import separate_owners
from market.uniform import ZERO_KWH, Matching, make_matching

__all__ = ["SHARING_KEYS", "SharingRule", "allocate", "clear_sharing", "glass_fill"]


@dataclass(frozen=True)
class SharingRule:
    """How a community shares (bound to the array core by
    :func:`market.mechanisms.array_mechanism`).

    Attributes
    ----------
    key : ``"static"``, ``"proportional"`` or ``"equal"``
    price_per_kwh : the internal price of a shared kWh [currency/kWh]; None: the mean
        limit price of the book (the DataFrame API without a community's contract)
    shares : ``(n_members,)`` static share of each member, indexed by the owner codes the
        core receives (household rows in the engine); needed by ``static``
    priority : ``(n_members,)`` int group of each member, 0 first; None: one group
    """

    key: str = "proportional"
    price_per_kwh: float | None = None
    shares: np.ndarray | None = None
    priority: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.key not in SHARING_KEYS:
            raise ValueError(f"sharing key {self.key!r} is not one of {', '.join(SHARING_KEYS)}")
        if self.key == "static" and self.shares is None:
            raise ValueError("the static sharing key needs the members' shares")


def glass_fill(demand_kwh: np.ndarray, weight: np.ndarray, supply_kwh: float) -> np.ndarray:
    """Weighted glass-filling: ``a_j = min(d_j, w_j λ)`` with the smallest ``λ`` such that
    ``Σ a_j = min(supply, Σ_{w_j > 0} d_j)`` [kWh per member].

    ``demand_kwh`` ≥ 0, ``weight`` ≥ 0 (a member with weight 0 gets nothing). One sort by
    the satisfaction level ``d_j / w_j`` and cumulative sums: at level ``λ_k`` (the
    ``k``-th smallest) the members below are satisfied and the others get ``w_j λ_k``, so
    the total ``f_k = Σ_{i<k} d_(i) + λ_k Σ_{i≥k} w_(i)`` is nondecreasing; the first
    ``k`` with ``f_k ≥ supply`` brackets ``λ = (supply − Σ_{i<k} d_(i)) / Σ_{i≥k} w_(i)``.
    """
    d = np.asarray(demand_kwh, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    out = np.zeros(d.shape[0])
    live = np.flatnonzero((d > 0) & (w > 0))
    if live.size == 0 or supply_kwh <= 0:
        return out
    dl, wl = d[live], w[live]
    with np.errstate(over="ignore"):  # a tiny weight's level may be inf: it sorts last
        level = dl / wl
    order = level.argsort(kind="stable")
    lv, ds, ws = level[order], dl[order], wl[order]
    before = np.concatenate(([0.0], ds.cumsum()[:-1]))
    tail_w = ws[::-1].cumsum()[::-1]
    with np.errstate(over="ignore", invalid="ignore"):
        total_at = before + lv * tail_w
    k = int(total_at.searchsorted(supply_kwh, side="left"))
    if k >= lv.shape[0]:  # enough for everybody
        out[live] = dl
        return out
    # w_j λ as (w_j / Σ_{i≥k} w_(i)) · what is left (> 0): exact for tiny weights; the
    # ratio of a member satisfied below the level may overflow to inf, and min() takes d_j
    with np.errstate(over="ignore"):
        out[live] = np.minimum(dl, (wl / tail_w[k]) * (supply_kwh - before[k]))
    return out


def allocate(
    demand_kwh: np.ndarray,
    supply_kwh: float,
    key: str,
    shares: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> np.ndarray:
    """Each demand's allocation of ``supply_kwh`` by ``key`` [kWh] (see the module).

    ``shares`` (static) and ``priority`` (group per demand, 0 first) are aligned with
    ``demand_kwh``.
    """
    d = np.asarray(demand_kwh, dtype=np.float64)
    if key == "proportional":
        weight = d
    elif key == "equal":
        weight = np.ones(d.shape[0])
    elif key == "static":
        if shares is None:
            raise ValueError("the static sharing key needs the members' shares")
        weight = np.asarray(shares, dtype=np.float64)
    else:
        raise ValueError(f"sharing key {key!r} is not one of {', '.join(SHARING_KEYS)}")
    if priority is None:
        return glass_fill(d, weight, supply_kwh)
    out = np.zeros(d.shape[0])
    left = float(supply_kwh)
    for group in np.unique(priority):
        if left <= 0:
            break
        rows = np.flatnonzero(priority == group)
        got = glass_fill(d[rows], weight[rows], left)
        out[rows] = got
        left -= float(got.sum())
    return out


def _per_order(values: np.ndarray | None, owner: np.ndarray | None, n: int) -> np.ndarray | None:
    """A per-member array read at each order's owner (the order's index without owners)."""
    if values is None:
        return None
    return values[owner] if owner is not None else values[:n]


def clear_sharing(
    buy_kwh: np.ndarray,
    buy_price_per_kwh: np.ndarray,
    sell_kwh: np.ndarray,
    sell_price_per_kwh: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
    rule: SharingRule | None = None,
) -> Matching:
    """Allocate the sell orders' surplus to the buy orders by ``rule`` (module docstring).

    The signature of every array core; ``rng`` is unused and the limit prices only set the
    price when ``rule.price_per_kwh`` is None (their mean over the whole book). Owners are
    member codes (household rows in the engine) into ``rule.shares`` / ``rule.priority``.
    Returns a :class:`~market.uniform.Matching` whose trades all carry the internal price
    for buyer and seller.
    """
    rule = rule or SharingRule()
    bq = np.asarray(buy_kwh, dtype=np.float64).ravel()
    sq = np.asarray(sell_kwh, dtype=np.float64).ravel()
    n_buy, n_sell = bq.shape[0], sq.shape[0]
    none_i, none_f = np.zeros(0, np.int64), np.zeros(0)
    supply = float(sq.sum())
    if n_buy == 0 or n_sell == 0 or supply <= 0:
        return make_matching(n_buy, n_sell, none_i, none_i, none_f, none_f, none_f)
    shares = _per_order(rule.shares, buy_owner, n_buy)
    if shares is not None and buy_owner is not None:
        # a member's weight is split evenly between its buy orders
        counts = np.bincount(buy_owner)
        shares = shares / counts[buy_owner]
    weight_key = rule.key
    if rule.key == "equal" and buy_owner is not None:
        counts = np.bincount(buy_owner)
        shares, weight_key = 1.0 / counts[buy_owner], "static"
    priority = _per_order(rule.priority, buy_owner, n_buy)
    got = allocate(bq, supply, weight_key, shares, priority)
    got = np.minimum(got, bq)  # rounding of λ·w never lifts an allocation above its demand
    allocated = float(got.sum())
    if allocated <= ZERO_KWH:
        return make_matching(n_buy, n_sell, none_i, none_i, none_f, none_f, none_f)
    shared = sq * (allocated / supply)  # every seller shares the same fraction
    tb, ts, tq = _pair(got, shared)
    tb, ts, tq = separate_owners(tb, ts, tq, buy_owner, sell_owner)
    price = rule.price_per_kwh
    if price is None:
        bp = np.asarray(buy_price_per_kwh, dtype=np.float64)
        sp = np.asarray(sell_price_per_kwh, dtype=np.float64)
        price = float(np.concatenate((bp, sp)).mean())
    prices = np.full(tq.shape[0], float(price))
    return make_matching(n_buy, n_sell, tb, ts, tq, prices, prices.copy())


def _pair(buy_kwh: np.ndarray, sell_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trades between two lists of energies with equal sums, along their cumulative sums:
    the breakpoints merged (two sorted runs: a linear-time stable merge), segment ``k``
    facing the buyer and the seller whose runs it lies in (as in
    :func:`market.uniform.merit_order`); segments shorter than the sliver tolerance are
    dropped."""
    n_buy = buy_kwh.shape[0]
    cb, cs = buy_kwh.cumsum(), sell_kwh.cumsum()
    end = float(min(cb[-1], cs[-1]))
    points = np.concatenate((cb, cs))
    merge = points.argsort(kind="stable")
    points = points[merge]
    n_inner = int(points.searchsorted(end, side="left"))
    seg_buy = np.empty(n_inner + 1, dtype=np.int64)
    seg_buy[0] = 0
    np.add.accumulate(merge[:n_inner] < n_buy, dtype=np.int64, out=seg_buy[1:])
    seg_sell = np.arange(n_inner + 1) - seg_buy
    bounds = np.empty(n_inner + 2)
    bounds[0], bounds[1:-1], bounds[-1] = 0.0, points[:n_inner], end
    length = bounds[1:] - bounds[:-1]
    keep = length > max(ZERO_KWH, 64 * np.finfo(np.float64).eps * end)
    tb = np.minimum(seg_buy[keep], n_buy - 1)
    ts = np.minimum(seg_sell[keep], sell_kwh.shape[0] - 1)
    return tb, ts, length[keep]
