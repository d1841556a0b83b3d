"""The array-level mechanism registry the batch engine uses.

Every entry has the same signature,
``(buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh, rng) -> Matching``:
four 1-d float64 arrays [kWh, currency/kWh] (valid: finite prices, finite energies
> 0; not checked) and a :class:`numpy.random.Generator` that only the continuous
double auction uses (for the arrival order). The DataFrame-level registry
:data:`market.clearing.MECHANISMS` (``market.clear``) has the same keys.

=============  ================================================================
``uniform``    uniform-price double auction, midpoint price
               (:func:`market.uniform.clear_uniform`)
``pay_as_bid`` discriminatory: buyers pay their bids, sellers get their asks,
               the spread goes to the market operator
               (:func:`market.discriminatory.clear_pay_as_bid`)
``mcafee``     McAfee's truthful trade-reduction auction
               (:func:`market.discriminatory.clear_mcafee`)
``cda``        continuous double auction, price-time priority, random arrival
               (:func:`market.cda.clear_cda`)
=============  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from market.cda import clear_cda
from market.discriminatory import clear_mcafee, clear_pay_as_bid
from market.uniform import Matching, clear_uniform

__all__ = ["ARRAY_MECHANISMS", "SINGLE_PRICE", "ArrayMechanism"]

ArrayMechanism = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.random.Generator | None], Matching
]
"""An array core: ``(buy_kwh, buy_price, sell_kwh, sell_price, rng) -> Matching``."""


def _ignoring_rng(core: Callable[..., Matching]) -> ArrayMechanism:
    """An array core that needs no random generator, in the registry's signature."""

    def mechanism(
        bq: np.ndarray,
        bp: np.ndarray,
        sq: np.ndarray,
        sp: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> Matching:
        return core(bq, bp, sq, sp)

    return mechanism


ARRAY_MECHANISMS: dict[str, ArrayMechanism] = {
    "uniform": _ignoring_rng(clear_uniform),
    "pay_as_bid": _ignoring_rng(clear_pay_as_bid),
    "mcafee": _ignoring_rng(clear_mcafee),
    "cda": clear_cda,  # raises without rng
}
"""Array cores by mechanism name (the engine's hot path)."""

SINGLE_PRICE: frozenset[str] = frozenset({"uniform"})
"""Mechanisms whose matching is by construction the welfare optimum of the book."""
