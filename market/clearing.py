"""Clearing orders given as a DataFrame: ``market.clear`` and the mechanism registry.

A mechanism is a function ``(OrderBook) -> ClearingResult`` registered in
:data:`MECHANISMS`. It works on the validated arrays of an
:class:`~market.book.OrderBook` and builds its result with :func:`build_result`, which
turns trade arrays into the trades table every mechanism returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.book import OrderBook, order_book
from market.uniform import clear_uniform

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
        The clearing price [currency/kWh] for single-price mechanisms; None when
        nothing trades (or when the mechanism has no single price).
    volume_kwh : float
        Total traded energy [kWh], the sum of ``trades.energy_kwh``.
    filled_kwh : pandas.Series
        Filled energy per input order [kWh], indexed like the orders and named
        ``filled_kwh``; for every order the sum of its trades' energy.
    """

    trades: pd.DataFrame
    price_per_kwh: float | None
    volume_kwh: float
    filled_kwh: pd.Series


Mechanism = Callable[[OrderBook], ClearingResult]
"""A clearing mechanism: validated order book in, result out."""


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
    return ClearingResult(
        trades=pd.DataFrame(columns, copy=False),
        price_per_kwh=price_per_kwh,
        volume_kwh=float(trade_kwh.sum()),
        filled_kwh=pd.Series(filled, index=book.index, name="filled_kwh", copy=False),
    )


def _clear_uniform_book(book: OrderBook) -> ClearingResult:
    """Uniform-price double auction (see :func:`market.uniform.clear_uniform`)."""
    m = clear_uniform(book.buy_kwh, book.buy_price_per_kwh, book.sell_kwh, book.sell_price_per_kwh)
    price = None if np.isnan(m.price_per_kwh) else m.price_per_kwh
    return build_result(
        book,
        m.trade_buy,
        m.trade_sell,
        m.trade_kwh,
        m.price_per_kwh,
        m.price_per_kwh,
        price,
        m.buy_filled_kwh,
        m.sell_filled_kwh,
    )


MECHANISMS: dict[str, Mechanism] = {
    "uniform": _clear_uniform_book,
}
"""Clearing mechanisms by name, as used by ``market.clear`` and ``market.mechanism``."""


def clear(orders: pd.DataFrame, mechanism: str = "uniform") -> ClearingResult:
    """Clear a book of orders with the named mechanism.

    Parameters
    ----------
    orders : pandas.DataFrame
        One row per order: ``agent_id``, ``side`` (``"buy"``/``"sell"``),
        ``energy_kwh`` [kWh] (finite, > 0), ``price_per_kwh`` (limit) [currency/kWh]
        (finite); optional ``order_id`` and ``bus``, which are carried into the trades.
    mechanism : str, default "uniform"
        A key of :data:`MECHANISMS`. ``"uniform"``: uniform-price double auction over
        divisible orders, the price being the midpoint of the lowest accepted bid and
        the highest accepted ask (:func:`market.uniform.clear_uniform`).

    Returns
    -------
    ClearingResult
        Trades, clearing price (None when nothing trades), volume [kWh] and the
        filled energy of every order [kWh].

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
    return run(order_book(orders))
