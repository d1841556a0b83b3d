"""Uniform-price double auction over divisible orders: the array core.

This is the engine's hot path (one call per interval, 35,040 calls per simulated year),
so it works on plain numpy arrays, does no validation and allocates little. The
DataFrame API with validation is :func:`market.clear`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from market.owners import separate_owners

__all__ = ["ZERO_KWH", "Matching", "MeritOrder", "clear_uniform", "make_matching", "merit_order"]

ZERO_KWH: float = 1e-12
"""Absolute floor [kWh] below which a trade segment counts as zero length.

The tolerance actually applied is ``max(ZERO_KWH, 64 * eps * traded total)``, so that
the rounding of the cumulative sums of large books (``eps`` is float64's machine
epsilon) does not produce slivers of trade between breakpoints that are equal in
exact arithmetic.
"""

_REL_TOL: float = 64.0 * float(np.finfo(np.float64).eps)
_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_F.flags.writeable = False
_EMPTY_I.flags.writeable = False


@dataclass(frozen=True, slots=True)
class Matching:
    """Outcome of a clearing, as arrays aligned with the input orders.

    Every mechanism's array core returns one (:data:`market.mechanisms.ARRAY_MECHANISMS`).

    Attributes
    ----------
    price_per_kwh : float
        The interval's reported price [currency/kWh]; ``nan`` when nothing trades. For
        the uniform-price auction the clearing price; for every mechanism the
        volume-weighted average of what the buyers pay,
        ``sum(buyer_price_per_kwh * trade_kwh) / volume_kwh``, which for a single-price
        outcome is that price.
    volume_kwh : float
        Total traded energy [kWh]; the sum of ``trade_kwh``.
    buy_filled_kwh : numpy.ndarray
        ``(n_buy,)`` filled energy per buy order [kWh], in input order; exactly the sum
        of that order's entries in ``trade_kwh``.
    sell_filled_kwh : numpy.ndarray
        ``(n_sell,)`` filled energy per sell order [kWh], in input order.
    trade_buy : numpy.ndarray
        ``(n_trades,)`` int64 index of each trade's buy order in the buy arrays.
    trade_sell : numpy.ndarray
        ``(n_trades,)`` int64 index of each trade's sell order in the sell arrays.
    trade_kwh : numpy.ndarray
        ``(n_trades,)`` float64 energy of each trade [kWh], all > 0.
    buyer_price_per_kwh : numpy.ndarray
        ``(n_trades,)`` float64 price the buyer pays per kWh of each trade
        [currency/kWh] (grid fees not included).
    seller_price_per_kwh : numpy.ndarray
        ``(n_trades,)`` float64 price the seller receives per kWh of each trade
        [currency/kWh]; ``<= buyer_price_per_kwh``, the difference being the market
        operator's (see :attr:`market_surplus`).
    convergence : object or None
        How an iterative mechanism got there (``p2p``: a
        :class:`market.p2p.Convergence`); None for the others.
    """

    price_per_kwh: float
    volume_kwh: float
    buy_filled_kwh: np.ndarray
    sell_filled_kwh: np.ndarray
    trade_buy: np.ndarray
    trade_sell: np.ndarray
    trade_kwh: np.ndarray
    buyer_price_per_kwh: np.ndarray
    seller_price_per_kwh: np.ndarray
    convergence: Any = None

    @property
    def market_surplus(self) -> float:
        """What buyers pay minus what sellers receive [currency], >= 0.

        Zero for single-price mechanisms; the market operator keeps it
        (``sum(trade_kwh * (buyer_price_per_kwh - seller_price_per_kwh))``).
        """
        return float(self.trade_kwh @ (self.buyer_price_per_kwh - self.seller_price_per_kwh))


def _no_trade(n_buy: int, n_sell: int) -> Matching:
    return Matching(
        price_per_kwh=float("nan"),
        volume_kwh=0.0,
        buy_filled_kwh=np.zeros(n_buy),
        sell_filled_kwh=np.zeros(n_sell),
        trade_buy=_EMPTY_I,
        trade_sell=_EMPTY_I,
        trade_kwh=_EMPTY_F,
        buyer_price_per_kwh=_EMPTY_F,
        seller_price_per_kwh=_EMPTY_F,
    )


def make_matching(
    n_buy: int,
    n_sell: int,
    trade_buy: np.ndarray,
    trade_sell: np.ndarray,
    trade_kwh: np.ndarray,
    buyer_price_per_kwh: np.ndarray,
    seller_price_per_kwh: np.ndarray,
) -> Matching:
    """A :class:`Matching` from trade arrays: fills by ``bincount``, the reported price
    as the volume-weighted buyer price (``nan`` without trades)."""
    if trade_kwh.shape[0] == 0:
        return _no_trade(n_buy, n_sell)
    volume = float(trade_kwh.sum())
    return Matching(
        price_per_kwh=float(trade_kwh @ buyer_price_per_kwh) / volume,
        volume_kwh=volume,
        buy_filled_kwh=np.bincount(trade_buy, weights=trade_kwh, minlength=n_buy),
        sell_filled_kwh=np.bincount(trade_sell, weights=trade_kwh, minlength=n_sell),
        trade_buy=trade_buy,
        trade_sell=trade_sell,
        trade_kwh=trade_kwh,
        buyer_price_per_kwh=buyer_price_per_kwh,
        seller_price_per_kwh=seller_price_per_kwh,
    )


def _rank(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable ascending argsort of `key` and the sorted keys.

    Equal to ``np.argsort(key, kind="stable")`` but faster on books with few ties: an
    unstable (SIMD/introsort) argsort, then only the runs of equal keys are put back
    in input order.
    """
    # ndarray methods rather than np.* functions: they skip the Python-level
    # __array_function__ dispatch, which matters on small books.
    rank = key.argsort()
    sorted_key = key[rank]
    tied = sorted_key[1:] == sorted_key[:-1]
    if tied.any():
        in_run = np.zeros(rank.shape[0], dtype=bool)
        in_run[1:] = tied
        in_run[:-1] |= tied
        pos = in_run.nonzero()[0]
        sub = rank[pos]
        # Runs are contiguous and their keys ascend, so (key, input position) order
        # restores input order inside every run and leaves the runs where they are.
        rank[pos] = sub[np.lexsort((sub, sorted_key[pos]))]
    return rank, sorted_key


def clear_uniform(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    *,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
) -> Matching:
    """Clear divisible buy and sell orders at one uniform price.

    Bids are ranked by price descending and asks by price ascending; orders with equal
    prices keep their input order (stable sort), so the outcome is a deterministic
    function of the input. The cumulative quantities of the ranked bids and asks are
    the demand and supply step curves. Their breakpoints, merged, cut the quantity axis
    into segments on each of which exactly one bid faces exactly one ask. The traded
    volume is the end of the last segment whose bid price is >= its ask price (a bid
    and an ask at equal price trade), i.e. the largest quantity at which demand and
    supply still cross. This volume maximises the welfare
    ``sum(bid price * bought) - sum(ask price * sold)`` and, among the welfare-optimal
    allocations, is the largest one (zero-surplus marginal pairs trade).

    **Price rule (the contract).** The clearing price is the midpoint of the marginal
    matched bid and the marginal matched ask, i.e. of the lowest accepted bid price and
    the highest accepted ask price (the k = 1/2 double auction [1]_, [2]_)::

        price = (lowest accepted bid + highest accepted ask) / 2

    Every accepted bid is >= the lowest accepted bid >= price, and every accepted ask
    is <= the highest accepted ask <= price, so no buyer pays above its bid and no
    seller receives less than its ask.

    **Trades.** Each segment up to the traded volume is one trade between the bid and
    the ask that face each other on it, so there are at most ``n_buy + n_sell - 1``
    trades, listed in order of bid priority. Segments shorter than a tolerance (see
    :data:`ZERO_KWH`) are dropped; the filled energy of every order is exactly the sum
    of its trades (``numpy.bincount``) and the volume is the sum of all trades. As trade
    lengths are differences of cumulative sums, a fill can differ from its order's
    energy (also exceed it) by floating-point rounding: at most about
    ``1.1e-16 * volume`` per trade of that order.

    **Owners.** Given ``buy_owner``/``sell_owner``, no agent trades with itself: the
    trades between two orders of one owner are re-paired with other trades at the same
    fills (:func:`market.owners.separate_owners`).

    Empty, one-sided or non-crossing books give price ``nan``, volume 0, no trades and
    zero fills.

    Parameters
    ----------
    buy_kwh : array_like
        ``(n_buy,)`` energy of each buy order [kWh]; finite and > 0. Any 1-d
        array-like (numpy array, pandas Series, list); a scalar is one order.
    buy_price_per_kwh : array_like
        ``(n_buy,)`` limit price of each buy order [currency/kWh]; finite.
    sell_kwh : array_like
        ``(n_sell,)`` energy of each sell order [kWh]; finite and > 0.
    sell_price_per_kwh : array_like
        ``(n_sell,)`` limit price of each sell order [currency/kWh]; finite.
    buy_owner, sell_owner : numpy.ndarray, optional
        ``(n_buy,)`` / ``(n_sell,)`` agent of each order (any values comparable with
        ``==``); without them every order counts as its own agent.

    Returns
    -------
    Matching
        Clearing price [currency/kWh], volume [kWh], per-order fills [kWh] and the
        trade list.

    Notes
    -----
    No validation is done here: the caller guarantees arrays of equal length per side
    with finite prices and finite positive energies (``market.clear``
    validates user input). Cost is one sort per side (an unstable argsort whose runs of
    equal prices are then put back in input order) plus a linear merge of the two
    cumulative curves; there is no Python loop over orders.

    References
    ----------
    .. [1] D. Friedman, "The double auction market institution: a survey", in
       D. Friedman and J. Rust (eds.), *The Double Auction Market: Institutions,
       Theories, and Evidence*, Addison-Wesley, 1993.
    .. [2] M. A. Satterthwaite and S. R. Williams, "The Bayesian theory of the
       k-double auction", ibid. (the k-double auction price rule; k = 1/2 here).
    """
    buy_kwh = np.asarray(buy_kwh, dtype=np.float64).ravel()
    buy_price_per_kwh = np.asarray(buy_price_per_kwh, dtype=np.float64).ravel()
    sell_kwh = np.asarray(sell_kwh, dtype=np.float64).ravel()
    sell_price_per_kwh = np.asarray(sell_price_per_kwh, dtype=np.float64).ravel()
    n_buy = buy_kwh.shape[0]
    n_sell = sell_kwh.shape[0]
    mo = merit_order(buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh)
    if mo is None:
        return _no_trade(n_buy, n_sell)
    price = 0.5 * (mo.bid[mo.seg_buy[-1]] + mo.ask[mo.seg_sell[-1]])
    tb, ts, tq = separate_owners(mo.trade_buy, mo.trade_sell, mo.trade_kwh, buy_owner, sell_owner)
    n_trades = tq.shape[0]
    if n_trades == 0:
        return _no_trade(n_buy, n_sell)
    volume = float(tq.sum())
    return Matching(
        price_per_kwh=float(price),
        volume_kwh=volume,
        buy_filled_kwh=np.bincount(tb, weights=tq, minlength=n_buy),
        sell_filled_kwh=np.bincount(ts, weights=tq, minlength=n_sell),
        trade_buy=tb,
        trade_sell=ts,
        trade_kwh=tq,
        buyer_price_per_kwh=np.full(n_trades, price),
        seller_price_per_kwh=np.full(n_trades, price),
    )


class MeritOrder(NamedTuple):
    """The welfare-optimal merit-order matching of a book, with the ranked curves.

    What :func:`clear_uniform`, ``clear_pay_as_bid`` and ``clear_mcafee`` share.
    ``bid``/``ask`` are the ranked limit prices (bids descending, asks ascending),
    ``demand_kwh``/``supply_kwh`` the cumulative ranked energies, ``seg_buy``/
    ``seg_sell`` the ranks of the bid and ask facing each trade, ``trade_buy``/
    ``trade_sell`` their input positions, ``trade_kwh`` the trade energies,
    ``end_kwh`` the traded volume (end of the last trade on the quantity axis) and
    ``tol_kwh`` the sliver tolerance applied.
    """

    bid: np.ndarray
    ask: np.ndarray
    demand_kwh: np.ndarray
    supply_kwh: np.ndarray
    seg_buy: np.ndarray
    seg_sell: np.ndarray
    trade_buy: np.ndarray
    trade_sell: np.ndarray
    trade_kwh: np.ndarray
    end_kwh: float
    tol_kwh: float


def merit_order(
    buy_kwh: np.ndarray,
    buy_price_per_kwh: np.ndarray,
    sell_kwh: np.ndarray,
    sell_price_per_kwh: np.ndarray,
) -> MeritOrder | None:
    """Match float64 1-d order arrays in merit order (see :func:`clear_uniform`).

    Returns None when nothing trades (empty, one-sided or non-crossing book).
    """
    n_buy = buy_kwh.shape[0]
    n_sell = sell_kwh.shape[0]
    if n_buy == 0 or n_sell == 0:
        return None
    # Rank: bids by price descending, asks ascending; ties by input position.
    buy_rank, neg_bid = _rank(-buy_price_per_kwh)
    sell_rank, ask = _rank(sell_price_per_kwh)
    bid = -neg_bid
    if bid[0] < ask[0]:  # the best bid does not reach the best ask
        return None
    demand_kwh = buy_kwh[buy_rank].cumsum()
    supply_kwh = sell_kwh[sell_rank].cumsum()
    end_kwh = min(demand_kwh[-1], supply_kwh[-1])

    # Merge the breakpoints (two sorted runs, which the stable sort merges in linear
    # time) and keep those strictly inside (0, end). Segment k runs from point k - 1
    # (0 for k = 0) to point k (`end` for the last one); the bid facing it is the
    # number of demand breakpoints before it, the ask likewise.
    points = np.concatenate((demand_kwh, supply_kwh))
    merge = points.argsort(kind="stable")
    points = points[merge]
    n_inner = int(points.searchsorted(end_kwh, side="left"))
    seg_buy = np.empty(n_inner + 1, dtype=np.int64)
    seg_buy[0] = 0
    np.add.accumulate(merge[:n_inner] < n_buy, dtype=np.int64, out=seg_buy[1:])
    seg_sell = np.arange(n_inner + 1) - seg_buy
    # Bid prices fall and ask prices rise along the segments, so the crossing
    # segments are a prefix.
    n_cross = int((bid[seg_buy] >= ask[seg_sell]).sum())
    if n_cross == 0:
        return None

    bounds = np.empty(n_cross + 1)
    bounds[0] = 0.0
    if n_cross <= n_inner:
        bounds[1:] = points[:n_cross]
    else:
        bounds[1:n_cross] = points[: n_cross - 1]
        bounds[n_cross] = end_kwh
    length_kwh = bounds[1:] - bounds[:-1]
    tol_kwh = max(ZERO_KWH, _REL_TOL * bounds[-1])
    keep = (length_kwh > tol_kwh).nonzero()[0]
    if keep.size == 0:
        return None
    seg_buy = seg_buy[keep]
    seg_sell = seg_sell[keep]
    return MeritOrder(
        bid=bid,
        ask=ask,
        demand_kwh=demand_kwh,
        supply_kwh=supply_kwh,
        seg_buy=seg_buy,
        seg_sell=seg_sell,
        trade_buy=buy_rank[seg_buy],
        trade_sell=sell_rank[seg_sell],
        trade_kwh=length_kwh[keep],
        end_kwh=float(bounds[keep[-1] + 1]),
        tol_kwh=tol_kwh,
    )
