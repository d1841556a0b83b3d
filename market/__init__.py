"""Orders, double-auction mechanisms and settlement (pure numpy/pandas computation).

``market.clear(orders, mechanism="uniform")`` is the entry point; see
:func:`market.clearing.clear`. The array core of the uniform-price auction, called
once per interval by the batch engine, is :func:`market.uniform.clear_uniform`.
"""

from market.book import OrderBook, OrderError, order_book, validate_orders
from market.clearing import MECHANISMS, ClearingResult, build_result, clear
from market.uniform import Matching, clear_uniform

__all__ = [
    "MECHANISMS",
    "ClearingResult",
    "Matching",
    "OrderBook",
    "OrderError",
    "build_result",
    "clear",
    "clear_uniform",
    "order_book",
    "validate_orders",
]
