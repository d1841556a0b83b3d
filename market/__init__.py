"""Orders, double-auction mechanisms and settlement (pure numpy/pandas computation).

``market.clear(orders, mechanism="uniform")`` is the entry point; see
:func:`market.clearing.clear`. The array cores, one call per interval in the batch
engine, are registered in :data:`market.mechanisms.ARRAY_MECHANISMS`:
:func:`~market.uniform.clear_uniform`, :func:`~market.discriminatory.clear_pay_as_bid`,
:func:`~market.discriminatory.clear_mcafee` and :func:`~market.cda.clear_cda`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.lazy import lazy_namespace

if TYPE_CHECKING:
    from market.book import OrderBook, OrderError, order_book, validate_orders
    from market.cda import clear_cda
    from market.clearing import MECHANISMS, ClearingResult, build_result, clear
    from market.discriminatory import clear_mcafee, clear_pay_as_bid
    from market.fees import distance_fee_per_kwh
    from market.mechanisms import ARRAY_MECHANISMS, ArrayMechanism
    from market.quality import ClearingQuality, clearing_quality
    from market.uniform import Matching, clear_uniform

#: Public name -> the submodule defining it, imported on first use (PEP 562), so that
#: importing one submodule (or the CLI's --help) does not import the whole package.
_EXPORTS = {
    "ARRAY_MECHANISMS": "market.mechanisms",
    "ArrayMechanism": "market.mechanisms",
    "ClearingQuality": "market.quality",
    "ClearingResult": "market.clearing",
    "MECHANISMS": "market.clearing",
    "Matching": "market.uniform",
    "OrderBook": "market.book",
    "OrderError": "market.book",
    "build_result": "market.clearing",
    "clear": "market.clearing",
    "clear_cda": "market.cda",
    "clear_mcafee": "market.discriminatory",
    "clear_pay_as_bid": "market.discriminatory",
    "clear_uniform": "market.uniform",
    "clearing_quality": "market.quality",
    "distance_fee_per_kwh": "market.fees",
    "order_book": "market.book",
    "validate_orders": "market.book",
}

__all__ = [
    "ARRAY_MECHANISMS",
    "MECHANISMS",
    "ArrayMechanism",
    "ClearingQuality",
    "ClearingResult",
    "Matching",
    "OrderBook",
    "OrderError",
    "build_result",
    "clear",
    "clear_cda",
    "clear_mcafee",
    "clear_pay_as_bid",
    "clear_uniform",
    "clearing_quality",
    "distance_fee_per_kwh",
    "order_book",
    "validate_orders",
]


__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS, globals())
