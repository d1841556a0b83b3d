"""Trades from the fills of the network-constrained clearing (:func:`pair_fills`).

The constrained clearing (:mod:`grid.clearing`) fills orders so that the P2P volume
balances, but it may fill orders that no counterparty's limit accepts; this module turns
its fills into trades that respect every order's limit, on the market's order arrays
(:class:`market.orders.Orders`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from market.orders import TINY_KWH, Orders


@dataclass(frozen=True, slots=True)
class Pairing:
    """Trades as household rows, energies and the prices each side faces; ``buy_kind``
    and ``sell_kind`` say which of the household's orders (:class:`market.orders.Orders`
    ``kind``) each trade fills, so that a trade can be checked against its own order's
    limit."""

    buyer: np.ndarray
    seller: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    seller_price_per_kwh: np.ndarray
    buy_kind: np.ndarray
    sell_kind: np.ndarray

    def traded_kwh(self, n_households: int) -> tuple[np.ndarray, np.ndarray]:
        """Energy each household bought and sold in these trades [kWh]."""
        return (
            np.bincount(self.buyer, self.energy_kwh, n_households),
            np.bincount(self.seller, self.energy_kwh, n_households),
        )


def _take_first(
    owner: np.ndarray, key: np.ndarray, fill_kwh: np.ndarray, amount_kwh: np.ndarray
) -> np.ndarray:
    """Take ``amount_kwh[h]`` from the fills of owner ``h``'s orders, smallest ``key``
    first [kWh per order]."""
    order = np.lexsort((key, owner))
    f = fill_kwh[order]
    h = owner[order]
    before = np.cumsum(f) - f
    first = np.bincount(h, f, len(amount_kwh)).cumsum() - np.bincount(h, f, len(amount_kwh))
    take = np.clip(amount_kwh[h] - (before - first[h]), 0.0, f)
    out = np.empty_like(fill_kwh)
    out[order] = take
    return out


def _segments(
    first_kwh: np.ndarray, second_kwh: np.ndarray, volume_kwh: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay two ranked runs of energies end to end over [0, volume] and cut where either
    changes: (position in the first, position in the second, length) of every piece."""
    d, s = np.cumsum(first_kwh), np.cumsum(second_kwh)
    tol = max(TINY_KWH, 64 * np.finfo(float).eps * volume_kwh)
    ends = np.unique(np.concatenate([d, s]))
    ends = np.append(ends[ends < volume_kwh - tol], volume_kwh)
    starts = np.concatenate([[0.0], ends[:-1]])
    mid = 0.5 * (starts + ends)
    length = ends - starts
    keep = length > tol
    return (np.searchsorted(d, mid[keep]), np.searchsorted(s, mid[keep]), length[keep])


def _no_trades() -> Pairing:
    empty = np.zeros(0)
    return Pairing(
        empty.astype(np.int64),
        empty.astype(np.int64),
        empty,
        empty,
        empty,
        empty.astype(np.int8),
        empty.astype(np.int8),
    )


def pair_fills(
    orders: Orders, filled_kwh: np.ndarray, price_per_kwh: float, n_households: int
) -> Pairing:
    """Turn the fills of the network-constrained clearing into trades, order by order.

    The constrained clearing fills orders so that the P2P volume balances, but it may
    fill orders that no counterparty's limit accepts: storage forced to discharge (or to
    charge) to relieve a limit, say, at an ask above every filled bid. Trades are made
    only where both limits allow them; the rest is settled with the utility like any
    unmatched position (the physical fills stand, only their money goes to the utility):

    1. **Own orders first.** A household with fills on both sides (net buy and battery
       sell, say) serves itself: ``min(bought, sold)`` of its own fills is not a trade
       (its lowest bids and highest asks first). No household trades with itself.
    2. **Individually rational pairs, as many as possible.** Of the remaining fills, the
       largest volume ``q`` that can be paired with every pair's bid >= its ask is the
       highest-bid ``q`` kWh against the lowest-ask ``q`` kWh, paired in opposite order
       (highest bid with the highest of those asks); ``q`` is the smallest
       ``D_{i-1} + S_{j-1}`` over the ranked bid steps ``i`` and ask steps ``j`` with
       ``b_i < a_j`` (``D``, ``S`` the cumulative ranked fills), capped at the volume.
    3. **Prices.** ``price_per_kwh`` (the dual of the P2P balance) where it lies in
       every pair's [ask, bid]: clipped into [highest paired ask, lowest paired bid]
       when that interval exists, else into each pair's own [ask, bid]; the midpoint of
       the pair when the dual is not finite. So no buyer pays above the bid of its
       order and no seller receives below the ask of its order.

    What is left over (the lowest bids and highest asks beyond ``q``: the forced
    dispatch) is no trade: the buyer imports it at retail, the seller's energy is
    exported at feed-in.
    """
    fill = np.where(filled_kwh > 0, filled_kwh, 0.0)
    n = n_households
    hh, is_buy, limit = orders.household, orders.is_buy, orders.price_per_kwh
    own = np.minimum(
        np.bincount(hh, np.where(is_buy, fill, 0.0), n),
        np.bincount(hh, np.where(is_buy, 0.0, fill), n),
    )
    if own.any():
        buys, sells = np.flatnonzero(is_buy), np.flatnonzero(~is_buy)
        fill = fill.copy()
        fill[buys] -= _take_first(hh[buys], limit[buys], fill[buys], own)
        fill[sells] -= _take_first(hh[sells], -limit[sells], fill[sells], own)
    # ranked: bids descending, asks ascending (stable: ties in the orders' order)
    buy = np.flatnonzero(is_buy & (fill > TINY_KWH))
    buy = buy[np.argsort(-limit[buy], kind="stable")]
    sell = np.flatnonzero(~is_buy & (fill > TINY_KWH))
    sell = sell[np.argsort(limit[sell], kind="stable")]
    bid, ask = limit[buy], limit[sell]
    d, s = np.cumsum(fill[buy]), np.cumsum(fill[sell])
    volume = min(d[-1], s[-1]) if len(d) and len(s) else 0.0
    first_above = np.searchsorted(ask, bid, side="right")  # first ask above each bid
    conflict = first_above < len(sell)
    s_before = np.concatenate([[0.0], s])
    q = min([volume, *((d - fill[buy])[conflict] + s_before[first_above[conflict]])])
    if q <= TINY_KWH:
        return _no_trades()
    take_buy = np.clip(q - (d - fill[buy]), 0.0, fill[buy])
    take_sell = np.clip(q - (s - fill[sell]), 0.0, fill[sell])
    in_b, in_s = take_buy > 0, take_sell > 0
    buy, take_buy = buy[in_b], take_buy[in_b]
    sell, take_sell = sell[in_s][::-1], take_sell[in_s][::-1]
    i, j, energy = _segments(take_buy, take_sell, q)
    b_order, s_order = buy[i], sell[j]
    pair_bid, pair_ask = limit[b_order], limit[s_order]
    lo, hi = pair_ask.max(), pair_bid.min()
    if not math.isfinite(price_per_kwh):
        price = 0.5 * (pair_bid + pair_ask) if lo > hi else np.full(len(i), 0.5 * (lo + hi))
    elif lo <= hi:
        price = np.full(len(i), min(max(price_per_kwh, lo), hi))
    else:
        price = np.clip(price_per_kwh, pair_ask, pair_bid)
    return Pairing(
        buyer=hh[b_order],
        seller=hh[s_order],
        energy_kwh=energy,
        price_per_kwh=price,
        seller_price_per_kwh=price.copy(),
        buy_kind=orders.kind[b_order],
        sell_kind=orders.kind[s_order],
    )
