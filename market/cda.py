"""Continuous double auction (CDA) with price-time priority: the array core.

In the live market, orders arrive one by one during the gate window; in batch runs the
engine draws their arrival order from a seeded generator. Each arriving order is
matched at once against the resting orders of the other side, best price first and, at
equal price, earliest arrival first (price-time priority); every trade is at the
resting (standing) order's price. What the arriving order does not fill rests in the
book; at gate closure whatever still rests is left unfilled (it goes to the utility).

The matching is inherently sequential; this is a tight loop over arrival events with
one binary heap per side (``heapq``), so its cost is ``O((n + trades) log n)`` Python
steps. A trade either exhausts the resting order or the arriving one, so there are at
most ``n_buy + n_sell − 1`` trades.
"""

from __future__ import annotations

from heapq import heappop, heappush

import numpy as np
from numpy.typing import ArrayLike

from market.uniform import ZERO_KWH, Matching, _no_trade, make_matching

__all__ = ["clear_cda"]


def clear_cda(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    rng: np.random.Generator | None = None,
    *,
    arrival: ArrayLike | None = None,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
) -> Matching:
    """Clear divisible orders in a continuous double auction.

    Parameters
    ----------
    buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh : array_like
        As for :func:`market.uniform.clear_uniform` [kWh, currency/kWh]; no validation.
    rng : numpy.random.Generator, optional
        Draws the arrival order as a uniformly random permutation of all orders (batch
        runs: seed it, and the outcome is reproducible). Used when ``arrival`` is None.
    arrival : array_like of int, optional
        The arrival order: a permutation of ``0 .. n_buy + n_sell − 1`` in which
        ``i < n_buy`` is buy order ``i`` and ``n_buy + j`` is sell order ``j``
        (``arrival[0]`` arrives first). For live use, the order in which the market
        received the orders.
    buy_owner, sell_owner : numpy.ndarray, optional
        Agent of each order. An arriving order passes over the resting orders of its
        own agent (they keep their place in the book), so no agent trades with itself.

    Returns
    -------
    Matching
        Trades in the order they happened; buyer and seller price of a trade are both
        the resting order's limit; ``price_per_kwh`` is the volume-weighted average
        trade price. No budget surplus.

    Raises
    ------
    ValueError
        If neither ``rng`` nor ``arrival`` is given, or ``arrival`` has the wrong length.

    Notes
    -----
    Energies left below ``ZERO_KWH`` after a partial fill count as filled. Individual
    rationality holds trade by trade: an arriving bid only meets asks at or below its
    limit and pays the ask; an arriving ask only meets bids at or above it and gets
    the bid. The outcome is not the welfare optimum in general (an early low bid may
    take an ask a later, higher bid would have valued more), see
    :func:`market.quality.clearing_quality`.
    """
    bq = np.asarray(buy_kwh, dtype=np.float64).ravel()
    bp = np.asarray(buy_price_per_kwh, dtype=np.float64).ravel()
    sq = np.asarray(sell_kwh, dtype=np.float64).ravel()
    sp = np.asarray(sell_price_per_kwh, dtype=np.float64).ravel()
    n_buy, n_sell = bq.shape[0], sq.shape[0]
    n = n_buy + n_sell
    if arrival is None:
        if rng is None:
            raise ValueError("clear_cda needs an arrival order or a random generator (rng)")
        order = rng.permutation(n)
    else:
        order = np.asarray(arrival, dtype=np.int64).ravel()
        if order.shape[0] != n:
            raise ValueError(f"arrival has {order.shape[0]} entries for {n} orders")
    if n_buy == 0 or n_sell == 0:
        return _no_trade(n_buy, n_sell)

    owner = (
        None
        if buy_owner is None or sell_owner is None
        else np.concatenate((np.asarray(buy_owner), np.asarray(sell_owner))).tolist()
    )
    left = np.concatenate((bq, sq)).tolist()
    price = np.concatenate((bp, sp)).tolist()
    bids: list[tuple[float, int, int]] = []  # (-price, arrival, order), best on top
    asks: list[tuple[float, int, int]] = []  # (price, arrival, order), best on top
    t_buy: list[int] = []
    t_sell: list[int] = []
    t_kwh: list[float] = []
    t_price: list[float] = []
    zero = ZERO_KWH
    for seq, i in enumerate(order.tolist()):
        q = left[i]
        p = price[i]
        is_buy = i < n_buy
        # Both books are min-heaps on a key: asks on the price, bids on minus the price.
        # An arriving order takes resting orders of the other book while their key is at
        # most its own limit on that scale, each at the resting order's price.
        own, other = (bids, asks) if is_buy else (asks, bids)
        sign = 1.0 if is_buy else -1.0
        limit = sign * p
        passed: list[tuple[float, int, int]] = []  # own resting orders, put back after
        while other and other[0][0] <= limit:
            key, _, j = other[0]
            if owner is not None and owner[j] == owner[i]:
                passed.append(heappop(other))
                continue
            r = left[j]
            t_buy.append(i if is_buy else j)
            t_sell.append(j if is_buy else i)
            t_price.append(sign * key)
            if r <= q:
                t_kwh.append(r)
                heappop(other)
                q -= r
                if q <= zero:
                    q = 0.0
                    break
            else:
                t_kwh.append(q)
                r -= q
                left[j] = r
                q = 0.0
                if r <= zero:
                    heappop(other)
                break
        for entry in passed:
            heappush(other, entry)
        if q > 0.0:
            left[i] = q
            heappush(own, (-limit, seq, i))
    if not t_kwh:
        return _no_trade(n_buy, n_sell)
    trade_price = np.array(t_price)
    return make_matching(
        n_buy,
        n_sell,
        np.array(t_buy, dtype=np.int64),
        np.array(t_sell, dtype=np.int64) - n_buy,
        np.array(t_kwh),
        trade_price,
        trade_price.copy(),
    )
