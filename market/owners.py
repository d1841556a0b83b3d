"""No trade of an agent with itself: re-pairing a matching's trades by owner.

An agent may place several orders in one interval, also on both sides (a household's
net buy and its battery's flexible sell). Its own buy and sell orders must never trade
with each other: such a "trade" moves no energy between two parties, yet would be
billed a grid fee and, in the discriminatory mechanisms, a spread.

The merit-order mechanisms (uniform, pay-as-bid, McAfee) fix *which* orders trade and
*at what price per order*; the pairing of buy with sell volume is free among the
accepted orders (every accepted bid is at least every accepted ask, and each side's
price depends only on its own order). :func:`separate_owners` therefore keeps every
fill and re-pairs only the trades whose two orders have the same owner, swapping
counterparties with another trade: a self-trade ``(h, h, L)`` and a trade ``(i, j, L')``
with ``i ≠ h ≠ j`` become ``(h, j, m)`` and ``(i, h, m)``, ``m = min(L, L')``. Only
when no other trade is left that does not involve ``h`` (``h`` then holds more than the
whole traded volume on its two sides together, ``bought_h + sold_h > volume``) is the
rest of its self-trade dropped, which leaves the least volume of ``h``'s own orders
unfilled. The continuous double auction prevents self-trades in its matching loop
instead (:func:`market.cda.clear_cda`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["separate_owners"]


def separate_owners(
    trade_buy: np.ndarray,
    trade_sell: np.ndarray,
    trade_kwh: np.ndarray,
    buy_owner: np.ndarray | None,
    sell_owner: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-pair trades so that no agent buys from itself.

    Parameters
    ----------
    trade_buy, trade_sell : numpy.ndarray
        ``(n_trades,)`` int64 positions of each trade's buy and sell order.
    trade_kwh : numpy.ndarray
        ``(n_trades,)`` energy of each trade [kWh], > 0.
    buy_owner, sell_owner : numpy.ndarray or None
        Owner of every buy (sell) order, comparable with ``==``; None: all distinct.

    Returns
    -------
    tuple of numpy.ndarray
        ``(trade_buy, trade_sell, trade_kwh)``: the input arrays themselves when no
        trade has one owner on both sides; otherwise the trades without self-trades,
        the re-paired ones appended. Every order's filled energy is unchanged except
        where a self-trade could not be re-paired (see the module docstring).

    Notes
    -----
    One vectorised comparison when there is no self-trade (the usual case); a Python
    loop over the self-trades only, each step either finishing a self-trade or using up
    a partner trade, so at most ``2 * n_trades`` steps.
    """
    if buy_owner is None or sell_owner is None or trade_kwh.shape[0] == 0:
        return trade_buy, trade_sell, trade_kwh
    own_b = np.asarray(buy_owner)[trade_buy]
    own_s = np.asarray(sell_owner)[trade_sell]
    same = own_b == own_s
    if not same.any():
        return trade_buy, trade_sell, trade_kwh
    tb, ts, q = trade_buy.tolist(), trade_sell.tolist(), trade_kwh.tolist()
    ob, os_ = own_b.tolist(), own_s.tolist()
    selfish = np.flatnonzero(same).tolist()
    for s in selfish:
        h = ob[s]
        p = 0
        while q[s] > 0.0:
            # next partner trade: energy left and neither side owned by h
            while p < len(q) and (q[p] <= 0.0 or ob[p] == h or os_[p] == h):
                p += 1
            if p == len(q):
                q[s] = 0.0  # nothing left to swap with: h's own volume stays unfilled
                break
            m = min(q[s], q[p])
            tb += [tb[s], tb[p]]
            ts += [ts[p], ts[s]]
            ob += [h, ob[p]]
            os_ += [os_[p], h]
            q += [m, m]
            q[s] -= m
            q[p] -= m
    qa = np.array(q)
    keep = qa > 0.0
    return (
        np.array(tb, dtype=np.int64)[keep],
        np.array(ts, dtype=np.int64)[keep],
        qa[keep],
    )
