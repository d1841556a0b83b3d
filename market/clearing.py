"""Clearing orders given as a DataFrame: ``market.clear`` and the mechanism registry.

A mechanism is a function ``(OrderBook, rng=None) -> ClearingResult`` registered in
:data:`MECHANISMS`. It works on the validated arrays of an
:class:`~market.book.OrderBook` and builds its result with :func:`build_result`, which
turns trade arrays into the trades table every mechanism returns. Each one wraps the
array core of the same name in :data:`market.mechanisms.ARRAY_MECHANISMS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from market.book import OrderBook, order_book
from market.cda import clear_cda
from market.mechanisms import ARRAY_MECHANISMS
from market.uniform import Matching

__all__ = ["MECHANISMS", "ClearingResult", "Mechanism", "build_result", "clear"]


@dataclass(frozen=True)
class ClearingResult:
    """Outcome of clearing one order book.

    Attributes
    ----------
    trades : pandas.DataFrame
        One row per trade, in the mechanism's matching order, with a RangeIndex and
        the columns ``buyer_id``, ``seller_id``, ``energy_kwh`` [kWh, > 0],
        ``price_per_kwh`` (what the buyer pays) [currency/kWh] and
        ``seller_price_per_kwh`` (what the seller receives) [currency/kWh], plus
        ``buy_order_id`` and ``sell_order_id`` when the orders have an ``order_id``
        column and ``buyer_bus`` and ``seller_bus`` when they have a ``bus`` column.
    price_per_kwh : float or None
        The clearing price [currency/kWh] for the uniform auction; for every
        mechanism the volume-weighted average price the buyers pay
        (:attr:`market.uniform.Matching.price_per_kwh`). None when nothing trades.
    volume_kwh : float
        Total traded energy [kWh], the sum of ``trades.energy_kwh``.
    filled_kwh : pandas.Series
        Filled energy per input order [kWh], indexed like the orders and named
        ``filled_kwh``; for every order the sum of its trades' energy.
    market_surplus : float
        What buyers pay minus what sellers receive [currency]; kept by the market
        operator (pay_as_bid, McAfee after a trade reduction), else 0.
    """

    trades: pd.DataFrame
    price_per_kwh: float | None
    volume_kwh: float
    filled_kwh: pd.Series
    market_surplus: float = 0.0


Mechanism = Callable[..., ClearingResult]
"""A clearing mechanism: ``(book, rng=None)``, validated order book in, result out."""


def _per_trade(price_per_kwh: np.ndarray | float, n_trades: int) -> np.ndarray:
    """A fresh float64 array of one price per trade [currency/kWh]."""
    if np.ndim(price_per_kwh) == 0:
        return np.full(n_trades, price_per_kwh, dtype=np.float64)
    return np.array(price_per_kwh, dtype=np.float64).reshape(n_trades)


def build_result(
    book: OrderBook,
    trade_buy: np.ndarray,
    trade_sell: np.ndarray,
    trade_kwh: np.ndarray,
    buyer_price_per_kwh: np.ndarray | float,
    seller_price_per_kwh: np.ndarray | float,
    price_per_kwh: float | None,
    buy_filled_kwh: np.ndarray,
    sell_filled_kwh: np.ndarray,
) -> ClearingResult:
    """Assemble a :class:`ClearingResult` from a mechanism's trade arrays.

    Parameters
    ----------
    book : OrderBook
        The validated orders that were cleared.
    trade_buy, trade_sell : numpy.ndarray
        ``(n_trades,)`` int index of each trade's buy (sell) order among the book's
        buy (sell) orders, i.e. into ``book.buy_rows`` (``book.sell_rows``).
    trade_kwh : numpy.ndarray
        ``(n_trades,)`` energy of each trade [kWh].
    buyer_price_per_kwh, seller_price_per_kwh : numpy.ndarray or float
        Price paid by the buyer and received by the seller [currency/kWh], per trade
        or one for all.
    price_per_kwh : float or None
        Single clearing price [currency/kWh], or None.
    buy_filled_kwh, sell_filled_kwh : numpy.ndarray
        ``(n_buy,)`` and ``(n_sell,)`` filled energy per order [kWh].

    Returns
    -------
    ClearingResult
    """
    buy_rows = book.buy_rows[trade_buy]
    sell_rows = book.sell_rows[trade_sell]
    n_trades = trade_kwh.shape[0]
    columns: dict[str, np.ndarray] = {
        "buyer_id": book.agent_id[buy_rows],
        "seller_id": book.agent_id[sell_rows],
        "energy_kwh": trade_kwh,
        "price_per_kwh": _per_trade(buyer_price_per_kwh, n_trades),
        "seller_price_per_kwh": _per_trade(seller_price_per_kwh, n_trades),
    }
    if book.order_id is not None:
        columns["buy_order_id"] = book.order_id[buy_rows]
        columns["sell_order_id"] = book.order_id[sell_rows]
    if book.bus is not None:
        columns["buyer_bus"] = book.bus[buy_rows]
        columns["seller_bus"] = book.bus[sell_rows]
    filled = np.empty(len(book))
    filled[book.buy_rows] = buy_filled_kwh
    filled[book.sell_rows] = sell_filled_kwh
    surplus = float(trade_kwh @ (columns["price_per_kwh"] - columns["seller_price_per_kwh"]))
    return ClearingResult(
        trades=pd.DataFrame(columns, copy=False),
        price_per_kwh=price_per_kwh,
        volume_kwh=float(trade_kwh.sum()),
        filled_kwh=pd.Series(filled, index=book.index, name="filled_kwh", copy=False),
        market_surplus=surplus,
    )


def _result(book: OrderBook, m: Matching) -> ClearingResult:
    price = None if np.isnan(m.price_per_kwh) else m.price_per_kwh
    return build_result(
        book,
        m.trade_buy,
        m.trade_sell,
        m.trade_kwh,
        m.buyer_price_per_kwh,
        m.seller_price_per_kwh,
        price,
        m.buy_filled_kwh,
        m.sell_filled_kwh,
    )


def _clear_book(
    name: str, book: OrderBook, rng: np.random.Generator | None = None
) -> ClearingResult:
    """Clear a validated book with the array core ``name`` (``rng`` unused)."""
    core = ARRAY_MECHANISMS[name]
    m = core(
        book.buy_kwh,
        book.buy_price_per_kwh,
        book.sell_kwh,
        book.sell_price_per_kwh,
        None,
        **_owners(book),
    )
    return _result(book, m)


def _owners(book: OrderBook) -> dict[str, np.ndarray]:
    """The agent of every buy and sell order, as integer codes (no self-trades)."""
    codes = pd.factorize(book.agent_id)[0]
    return {"buy_owner": codes[book.buy_rows], "sell_owner": codes[book.sell_rows]}


def _clear_cda_book(book: OrderBook, rng: np.random.Generator | None = None) -> ClearingResult:
    """Continuous double auction: the rows arrive in input order, or in an order
    drawn from ``rng`` when one is given."""
    if rng is None:
        key = np.empty(len(book), dtype=np.int64)
        key[book.buy_rows] = np.arange(book.buy_rows.shape[0])
        key[book.sell_rows] = book.buy_rows.shape[0] + np.arange(book.sell_rows.shape[0])
        m = clear_cda(
            book.buy_kwh,
            book.buy_price_per_kwh,
            book.sell_kwh,
            book.sell_price_per_kwh,
            arrival=key,
            **_owners(book),
        )
    else:
        m = clear_cda(
            book.buy_kwh,
            book.buy_price_per_kwh,
            book.sell_kwh,
            book.sell_price_per_kwh,
            rng,
            **_owners(book),
        )
    return _result(book, m)


MECHANISMS: dict[str, Mechanism] = {
    "uniform": partial(_clear_book, "uniform"),
    "pay_as_bid": partial(_clear_book, "pay_as_bid"),
    "mcafee": partial(_clear_book, "mcafee"),
    "cda": _clear_cda_book,
    "sharing": partial(_clear_book, "sharing"),
    "p2p": partial(_clear_book, "p2p"),
}
"""Clearing mechanisms by name, as used by ``market.clear`` and ``market.mechanism``
(the keys of :data:`market.mechanisms.ARRAY_MECHANISMS`)."""


def clear(
    orders: pd.DataFrame,
    mechanism: str = "uniform",
    *,
    rng: np.random.Generator | None = None,
) -> ClearingResult:
    """Clear a book of orders with the named mechanism.

    Parameters
    ----------
    orders : pandas.DataFrame
        One row per order: ``agent_id``, ``side`` (``"buy"``/``"sell"``),
        ``energy_kwh`` [kWh] (finite, > 0), ``price_per_kwh`` (limit) [currency/kWh]
        (finite); optional ``order_id`` and ``bus``, which are carried into the trades.
    mechanism : str, default "uniform"
        A key of :data:`MECHANISMS`:

        - ``"uniform"``: uniform-price double auction over divisible orders, the price
          being the midpoint of the lowest accepted bid and the highest accepted ask
          (:func:`market.uniform.clear_uniform`);
        - ``"pay_as_bid"``: the same trades, each buyer paying its bid and each seller
          receiving its ask; the spread goes to the market operator
          (:func:`market.discriminatory.clear_pay_as_bid`);
        - ``"mcafee"``: McAfee's (1992) truthful trade-reduction auction, divisible
          orders as documented in :func:`market.discriminatory.clear_mcafee`;
        - ``"cda"``: continuous double auction with price-time priority, trades at the
          resting order's price (:func:`market.cda.clear_cda`); the rows arrive in
          the frame's order unless ``rng`` is given;
        - ``"sharing"``: the sell orders' surplus allocated to the buy orders in
          proportion to their energy, at the book's mean limit price
          (:func:`market.sharing.clear_sharing`; a community's key, shares and price
          are bound in the engine).
    rng : numpy.random.Generator, optional
        Only for ``"cda"``: draw a random arrival order instead of the row order.

    Returns
    -------
    ClearingResult
        Trades, clearing price (None when nothing trades), volume [kWh] and the
        filled energy of every order [kWh]. No agent trades with itself: its own buy and
        sell orders are never paired (:mod:`market.owners`).

    Raises
    ------
    ValueError
        If ``mechanism`` is not registered; the message names the valid ones.
    market.book.OrderError
        If the orders are invalid; the message lists every problem with its row,
        agent and column.

    Examples
    --------
    >>> import pandas as pd, market
    >>> orders = pd.DataFrame({
    ...     "agent_id": ["a", "b", "c"],
    ...     "side": ["buy", "sell", "sell"],
    ...     "energy_kwh": [3.0, 2.0, 2.0],
    ...     "price_per_kwh": [0.30, 0.10, 0.20],
    ... })
    >>> res = market.clear(orders)
    >>> res.price_per_kwh, res.volume_kwh
    (0.25, 3.0)
    """
    try:
        run = MECHANISMS[mechanism]
    except (KeyError, TypeError):
        valid = ", ".join(MECHANISMS)
        raise ValueError(f"mechanism {mechanism!r} is not one of {valid}") from None
    return run(order_book(orders), rng=rng)
