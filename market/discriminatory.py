"""Pay-as-bid and McAfee's trade-reduction double auction: array cores.

Both start from the welfare-optimal merit-order matching of the uniform-price auction
(:func:`market.uniform.merit_order`: bids ranked by price descending, asks ascending,
ties by input position, the two cumulative step curves cut into segments on each of
which one bid faces one ask) and differ in which segments trade and at what prices.
Like :func:`market.uniform.clear_uniform` they take plain arrays, do no validation
and have no Python loop over orders (a sort and a cumulative sum per side).

Money. In both mechanisms a buyer can pay more per kWh than its seller receives. The
difference, ``sum(trade_kwh * (buyer_price - seller_price))``, is the **budget
surplus**; it goes to the **market operator** (who runs the auction; in a community
market typically a community fund), not to any household. The engine reports it per
interval as ``market_surplus`` (intervals.parquet) and in total (kpis.json), and the
households' money balance reads
``Σ cost = utility imports − exports + grid fees + market surplus``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from market.owners import separate_owners
from market.uniform import Matching, _no_trade, make_matching, merit_order

__all__ = ["McAfeeOutcome", "clear_mcafee", "clear_pay_as_bid", "mcafee_outcome"]


def _arrays(*values: ArrayLike) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=np.float64).ravel() for v in values)


def clear_pay_as_bid(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    *,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
) -> Matching:
    """Discriminatory (pay-as-bid) double auction over divisible orders.

    The highest bids are matched with the lowest asks while they cross, exactly as in
    :func:`market.uniform.clear_uniform` (same trades, same volume: the welfare-optimal
    one, zero-surplus pairs included). Each buyer pays its own bid and each seller
    receives its own ask; the spread ``bid − ask >= 0`` of every trade goes to the
    market operator (the budget surplus, :attr:`Matching.market_surplus`), which here
    is the whole gain from trade of the declared prices.

    Parameters
    ----------
    buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh : array_like
        As for :func:`market.uniform.clear_uniform` [kWh, currency/kWh].
    buy_owner, sell_owner : numpy.ndarray, optional
        Agent of each order: no agent trades with itself
        (:func:`market.owners.separate_owners`; what each order pays is unchanged).

    Returns
    -------
    Matching
        ``buyer_price_per_kwh`` the bid and ``seller_price_per_kwh`` the ask of each
        trade; ``price_per_kwh`` the volume-weighted average bid paid.
    """
    bq, bp, sq, sp = _arrays(buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh)
    mo = merit_order(bq, bp, sq, sp)
    if mo is None:
        return _no_trade(bq.shape[0], sq.shape[0])
    tb, ts, tq = separate_owners(mo.trade_buy, mo.trade_sell, mo.trade_kwh, buy_owner, sell_owner)
    return make_matching(bq.shape[0], sq.shape[0], tb, ts, tq, bp[tb], sp[ts])


class McAfeeOutcome:
    """How McAfee's rule decided a book (for tests and reports).

    Attributes
    ----------
    b_k, s_k : float
        Bid and ask of the marginal (last) trade of the welfare-optimal matching.
    b_next, s_next : float
        The highest bid and the lowest ask with energy left over beyond the optimal
        volume; where a side is exhausted, its outside price (``outside_bid_per_kwh``
        / ``outside_ask_per_kwh`` of :func:`clear_mcafee`, ``-inf`` / ``+inf`` without).
    p0 : float
        ``(b_next + s_next) / 2`` (``nan``/``±inf`` when an exhausted side has no bound).
    reduced : bool
        True when ``p0`` is outside ``[s_k, b_k]`` and the marginal trade was dropped.
    exhausted : bool
        True when a side had no order left beyond the optimal volume, so that an outside
        price stood in for its ``(k+1)``-th order.
    """

    __slots__ = ("b_k", "b_next", "exhausted", "p0", "reduced", "s_k", "s_next")

    def __init__(
        self,
        b_k: float,
        s_k: float,
        b_next: float,
        s_next: float,
        p0: float,
        reduced: bool,
        exhausted: bool = False,
    ) -> None:
        self.b_k, self.s_k, self.b_next, self.s_next = b_k, s_k, b_next, s_next
        self.p0, self.reduced, self.exhausted = p0, reduced, exhausted

    def __repr__(self) -> str:
        return (
            f"McAfeeOutcome(b_k={self.b_k}, s_k={self.s_k}, b_next={self.b_next}, "
            f"s_next={self.s_next}, p0={self.p0}, reduced={self.reduced}, "
            f"exhausted={self.exhausted})"
        )


def mcafee_outcome(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    *,
    outside_bid_per_kwh: float = -math.inf,
    outside_ask_per_kwh: float = math.inf,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
) -> tuple[Matching, McAfeeOutcome | None]:
    """:func:`clear_mcafee` and how it decided (None when nothing crosses)."""
    bq, bp, sq, sp = _arrays(buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh)
    n_buy, n_sell = bq.shape[0], sq.shape[0]
    mo = merit_order(bq, bp, sq, sp)
    if mo is None:
        return _no_trade(n_buy, n_sell), None
    b_k = float(mo.bid[mo.seg_buy[-1]])
    s_k = float(mo.ask[mo.seg_sell[-1]])
    # First ranked order whose cumulative energy reaches beyond the traded volume:
    # the (k+1)-th bid / ask (the rest of a partly filled marginal order counts); an
    # exhausted side has its outside price in that place.
    limit = mo.end_kwh + mo.tol_kwh
    nb = int(mo.demand_kwh.searchsorted(limit, side="right"))
    ns = int(mo.supply_kwh.searchsorted(limit, side="right"))
    b_next = float(mo.bid[nb]) if nb < n_buy else float(outside_bid_per_kwh)
    s_next = float(mo.ask[ns]) if ns < n_sell else float(outside_ask_per_kwh)
    exhausted = nb == n_buy or ns == n_sell
    p0 = 0.5 * (b_next + s_next)  # Python floats: -inf + inf is nan, no warning
    if s_k <= p0 <= b_k:
        tb, ts, tq = separate_owners(
            mo.trade_buy, mo.trade_sell, mo.trade_kwh, buy_owner, sell_owner
        )
        price = np.full(tq.shape[0], p0)
        m = make_matching(n_buy, n_sell, tb, ts, tq, price, price.copy())
        return m, McAfeeOutcome(b_k, s_k, b_next, s_next, p0, False, exhausted)
    n = mo.trade_kwh.shape[0] - 1  # drop the marginal trade
    tb, ts, tq = separate_owners(
        mo.trade_buy[:n], mo.trade_sell[:n], mo.trade_kwh[:n], buy_owner, sell_owner
    )
    n = tq.shape[0]
    m = make_matching(n_buy, n_sell, tb, ts, tq, np.full(n, b_k), np.full(n, s_k))
    return m, McAfeeOutcome(b_k, s_k, b_next, s_next, p0, True, exhausted)


def clear_mcafee(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    *,
    outside_bid_per_kwh: float = -math.inf,
    outside_ask_per_kwh: float = math.inf,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
) -> Matching:
    """McAfee's (1992) trade-reduction double auction, for divisible orders.

    **Unit orders (McAfee's setting).** With bids ranked ``b_1 >= b_2 >= ...``, asks
    ``s_1 <= s_2 <= ...`` and ``k`` the number of crossing pairs (``b_k >= s_k``),
    let ``p0 = (b_{k+1} + s_{k+1}) / 2``. If ``s_k <= p0 <= b_k`` all ``k`` pairs trade
    at ``p0``. Otherwise the ``k``-th pair is dropped: the first ``k − 1`` buyers pay
    ``b_k`` and the first ``k − 1`` sellers receive ``s_k``; the budget surplus
    ``(k − 1)(b_k − s_k)`` goes to the market operator. With unit-demand traders this
    is dominant-strategy truthful, individually rational, never runs a deficit, and
    loses at most the one marginal trade against the welfare optimum [1]_.

    **Closing the book with outside prices.** When every order of one side trades there
    is no ``(k+1)``-th order on that side. Pure McAfee then has no ``p0`` and always
    drops the marginal trade. In an energy community both sides have a known outside
    option, which takes that place: ``outside_bid_per_kwh`` as the ``(k+1)``-th bid
    (what the utility pays any seller: the feed-in tariff) and ``outside_ask_per_kwh``
    as the ``(k+1)``-th ask (what buying from the utility is worth to a buyer: retail
    net of the grid fee, i.e. retail minus the largest fee a P2P kWh can carry, the
    same cap every bid of the engine's strategies respects, so a P2P purchase never
    costs more than retail). They are fixed numbers that no trader's report moves, like
    a trader who always stands at the end of the book, so the truthfulness argument is
    unchanged; without them (the defaults, ``-inf`` / ``+inf``) this is pure McAfee.

    **Divisible orders (the definition used here).** The "units" are the trades of the
    welfare-optimal merit-order matching (the segments of the merged demand and supply
    step curves, :func:`market.uniform.clear_uniform`): trade ``k`` is the last one,
    between the marginal bid ``b_k`` and the marginal ask ``s_k``. ``b_{k+1}`` is the
    highest bid with energy left beyond the optimal volume (the unfilled rest of the
    marginal bid order, if it is only partly filled, else the next bid order), and
    ``s_{k+1}`` the lowest ask with energy left; a side with nothing left has its
    outside price there (above). If ``p0`` lies in ``[s_k, b_k]`` every trade goes
    ahead at ``p0``; otherwise the marginal trade (the whole last segment) is dropped
    and the others go ahead with buyers paying ``b_k`` and sellers receiving ``s_k``.
    When every order has the same energy this is exactly McAfee's unit rule (scaled),
    so the truthfulness result applies to such books; with unequal order sizes a trader
    whose partly filled order is also the ``(k+1)``-th one can influence ``p0``, so
    strategy-proofness is not claimed there. Note that a partly filled marginal order
    makes ``b_{k+1} = b_k`` (or ``s_{k+1} = s_k``) and then ``p0`` leaves the
    interval: in typical divisible books the marginal trade is dropped.

    Parameters
    ----------
    buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh : array_like
        As for :func:`market.uniform.clear_uniform` [kWh, currency/kWh].
    outside_bid_per_kwh : float, default -inf
        The ``(k+1)``-th bid when every bid trades [currency/kWh] (the feed-in tariff).
    outside_ask_per_kwh : float, default +inf
        The ``(k+1)``-th ask when every ask trades [currency/kWh] (retail minus the
        largest grid fee).
    buy_owner, sell_owner : numpy.ndarray, optional
        Agent of each order: no agent trades with itself
        (:func:`market.owners.separate_owners`, applied to the trades that go ahead).

    Returns
    -------
    Matching
        ``price_per_kwh`` is ``p0``, or ``b_k`` (what every buyer pays) after a
        reduction; ``seller_price_per_kwh`` is ``p0`` or ``s_k``.

    References
    ----------
    .. [1] R. P. McAfee, "A dominant strategy double auction", *Journal of Economic
       Theory* 56(2), 434-450, 1992.
    """
    return mcafee_outcome(
        buy_kwh,
        buy_price_per_kwh,
        sell_kwh,
        sell_price_per_kwh,
        outside_bid_per_kwh=outside_bid_per_kwh,
        outside_ask_per_kwh=outside_ask_per_kwh,
        buy_owner=buy_owner,
        sell_owner=sell_owner,
    )[0]
