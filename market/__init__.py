"""Orders, double-auction mechanisms and settlement (pure numpy/pandas computation).

``market.clear(orders, mechanism="uniform")`` is the entry point; see
:func:`market.clearing.clear`. The array cores, one call per interval in the batch
engine, are registered in :data:`market.mechanisms.ARRAY_MECHANISMS`:
:func:`~market.uniform.clear_uniform`, :func:`~market.discriminatory.clear_pay_as_bid`,
:func:`~market.discriminatory.clear_mcafee` and :func:`~market.cda.clear_cda`.
"""

from market.book import OrderBook, OrderError, order_book, validate_orders
from market.cda import clear_cda
from market.clearing import MECHANISMS, ClearingResult, build_result, clear
from market.discriminatory import clear_mcafee, clear_pay_as_bid
from market.fees import distance_fee_per_kwh
from market.mechanisms import ARRAY_MECHANISMS, ArrayMechanism
from market.quality import ClearingQuality, clearing_quality
from market.uniform import Matching, clear_uniform

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
