"""The array-level mechanism registry the batch engine uses.

Every entry has the same signature,
``(buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh, rng, *, buy_owner=None,
sell_owner=None) -> Matching``: four 1-d float64 arrays [kWh, currency/kWh] (valid:
finite prices, finite energies > 0; not checked), a :class:`numpy.random.Generator`
that only the continuous double auction uses (for the arrival order), and optionally
the agent of every order, so that no agent trades with itself (:mod:`market.owners`).
The DataFrame-level registry :data:`market.clearing.MECHANISMS` (``market.clear``) has
the same keys. :func:`array_mechanism` gives a core with the community's outside prices
bound (McAfee closes a book whose one side is exhausted with them).

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
``sharing``    energy sharing by an allocation key on the net positions, at an
               internal price (:func:`market.sharing.clear_sharing`); registered
               with the ``proportional`` key at the book's mean limit price, bound
               to a community's contract by :func:`array_mechanism`
=============  ================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from market.cda import clear_cda
from market.discriminatory import clear_mcafee, clear_pay_as_bid
from market.p2p import clear_p2p
from market.p2p_pairs import P2PRule
from market.sharing import SharingRule, clear_sharing
from market.uniform import Matching, clear_uniform

__all__ = ["ARRAY_MECHANISMS", "SINGLE_PRICE", "ArrayMechanism", "array_mechanism"]

ArrayMechanism = Callable[..., Matching]
"""An array core: ``(buy_kwh, buy_price, sell_kwh, sell_price, rng, *, buy_owner=None,
sell_owner=None) -> Matching``."""


def _ignoring_rng(core: Callable[..., Matching]) -> ArrayMechanism:
    """An array core that needs no random generator, in the registry's signature."""

    def mechanism(
        bq: np.ndarray,
        bp: np.ndarray,
        sq: np.ndarray,
        sp: np.ndarray,
        rng: np.random.Generator | None = None,
        **owners: np.ndarray | None,
    ) -> Matching:
        return core(bq, bp, sq, sp, **owners)

    return mechanism


ARRAY_MECHANISMS: dict[str, ArrayMechanism] = {
    "uniform": _ignoring_rng(clear_uniform),
    "pay_as_bid": _ignoring_rng(clear_pay_as_bid),
    "mcafee": _ignoring_rng(clear_mcafee),
    "cda": clear_cda,  # raises without rng
    "sharing": clear_sharing,
    "p2p": clear_p2p,
}
"""Array cores by mechanism name (the engine's hot path); McAfee without outside prices."""


def array_mechanism(
    name: str,
    *,
    outside_bid_per_kwh: float = -math.inf,
    outside_ask_per_kwh: float = math.inf,
    sharing: SharingRule | None = None,
    p2p: P2PRule | None = None,
) -> ArrayMechanism:
    """The array core ``name`` with the community's outside prices [currency/kWh].

    ``outside_bid_per_kwh`` is what any seller gets from the utility (feed-in) and
    ``outside_ask_per_kwh`` what a buyer's kWh from the utility is worth to it (retail
    minus the largest grid fee). Only McAfee uses them, as the ``(k+1)``-th bid and ask
    of a book whose one side is exhausted (:func:`market.discriminatory.clear_mcafee`);
    ``sharing`` is bound to the community's :class:`~market.sharing.SharingRule` (key,
    shares, priority, internal price), ``p2p`` to its :class:`~market.p2p_pairs.P2PRule`
    (partners, preferences, ADMM settings); the other mechanisms have no such rule and are
    returned as registered.
    """
    core = ARRAY_MECHANISMS[name]
    if name == "sharing" and sharing is not None:
        return partial(clear_sharing, rule=sharing)
    if name == "p2p" and p2p is not None:
        return partial(clear_p2p, rule=p2p)
    if name != "mcafee":
        return core
    return _ignoring_rng(
        partial(
            clear_mcafee,
            outside_bid_per_kwh=outside_bid_per_kwh,
            outside_ask_per_kwh=outside_ask_per_kwh,
        )
    )


SINGLE_PRICE: frozenset[str] = frozenset({"uniform"})
"""Mechanisms whose matching is by construction the welfare optimum of the book."""
