"""The trading pairs of a bilateral P2P market and their product differentiation.

A pair is one buy order and one sell order whose households are partners. The partner
set is a household × household relation (:class:`P2PRule` ``partners``, a sparse boolean
matrix; None: everybody trades with everybody); orders of one household never pair up.
Each pair carries a **differentiation cost** ``c`` [currency/kWh]: what a kWh from that
seller is worth less to that buyer than a kWh at its limit price (Sorin, Bobo & Pinson
2019, "product differentiation": ``c_nm`` per kWh of the trade between ``n`` and ``m``).
Three parts, all ≥ 0, borne by the buyer::

    c = distance_per_kwh · d(buyer, seller) / d_max          electrical distance
      + green_premium_per_kwh · (1 − green(seller))         a PV seller is worth more
      + neighbour_premium_per_kwh · (1 − neighbour(b, s))   so is a neighbour

``d`` is the electrical distance between the two households' buses on the feeder
(:func:`grid.distance.electrical_distance_pu`, normalised by its largest value between
household buses, as the distance grid fee is: :mod:`market.fees`). A premium is written
as a cost on the pairs without the preferred attribute, so that every ``c`` is ≥ 0 and
the per-pair price, which is at most the buyer's limit minus ``c``, never exceeds the
buyer's limit (individual rationality in money).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sps

__all__ = ["P2PRule", "Pairs", "order_pairs"]


@dataclass(frozen=True)
class P2PRule:
    """A community's bilateral market: partners, differentiation and the ADMM settings.

    Household arrays are indexed by the owner codes the array core receives (household
    rows in the engine).

    Attributes
    ----------
    partners : ``(n, n)`` sparse bool, symmetric: who may trade with whom; None: all
    neighbours : ``(n, n)`` sparse bool, symmetric: the preferred neighbours; None: none
    household_bus : ``(n,)`` int bus of each household into ``bus_distance``
    bus_distance : ``(n_bus, n_bus)`` electrical distance normalised to [0, 1]
    green : ``(n,)`` bool, the household sells PV (rooftop PV installed)
    distance_per_kwh, green_premium_per_kwh, neighbour_premium_per_kwh : the weights
        of the differentiation cost [currency/kWh] (module docstring)
    rho : the ADMM penalty [currency/kWh²]
    relaxation : the over-relaxation ``α`` of the consensus and price steps, in (0, 2)
    primal_tol_kwh : absolute part of the primal threshold: the root-mean-square
        disagreement of two partners' proposals [kWh]
    dual_tol_per_kwh : absolute part of the dual threshold: rho × the root-mean-square
        change of the pairs' consensus [currency/kWh]
    relative_tol : relative part of both thresholds, times the root-mean-square
        proposal [kWh] and price [currency/kWh] (:mod:`market.p2p`, "Stopping")
    stopping : ``"rms"`` (thresholds on the root-mean-square residuals over all pairs) or
        ``"pairwise"`` (every pair to its own threshold, as live peers test it)
    max_iterations : iteration cap; the last iterate is used when it is reached
    central_check : also solve the same pairs centrally (HiGHS) and report its optimum

    The defaults: ``rho = 0.3`` (a price gap of 0.3 currency/kWh moves a proposal by
    1 kWh per iteration; on the benchmark's books, orders of about 0.3 kWh at
    0.08–0.32 EUR/kWh, 0.3–0.5 took the fewest iterations of 0.03, 0.1, 0.2, 0.3, 0.5
    and 1), ``α = 1.6``, absolute tolerances of 0.01 Wh and 0.001 ct/kWh (root mean
    square over the pairs) and a relative one of ``10⁻⁴``. With them the welfare is within
    ``ε = 0.2 % · W* + primal_tol_kwh · (orders) · (largest margin)`` of the central
    optimum ``W*`` (:mod:`market.p2p_central`; checked on random books by
    ``tests/market/test_p2p.py``; the benchmark's 1,000-household books end at most
    0.025 % below it). ``relative_tol = 3·10⁻⁴`` took a third fewer iterations but
    broke ε on a random book with margins of a few tenths of a cent (its error is
    relative to the energies, ε to the welfare); ``relative_tol = 0`` keeps only the
    absolute parts (about 1.5× the iterations).
    """

    partners: sps.csr_matrix | None = None
    neighbours: sps.csr_matrix | None = None
    household_bus: np.ndarray | None = None
    bus_distance: np.ndarray | None = None
    green: np.ndarray | None = None
    distance_per_kwh: float = 0.0
    green_premium_per_kwh: float = 0.0
    neighbour_premium_per_kwh: float = 0.0
    rho: float = 0.3
    relaxation: float = 1.6
    primal_tol_kwh: float = 1e-5
    dual_tol_per_kwh: float = 1e-5
    relative_tol: float = 1e-4
    stopping: str = "rms"
    max_iterations: int = 1000
    central_check: bool = False

    def __post_init__(self) -> None:
        problems = []
        for name in ("distance_per_kwh", "green_premium_per_kwh", "neighbour_premium_per_kwh"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0, not {getattr(self, name)}")
        if not self.rho > 0:
            problems.append(f"rho must be > 0, not {self.rho}")
        if not 0 < self.relaxation < 2:
            problems.append(f"relaxation must be in (0, 2), not {self.relaxation}")
        if not (self.primal_tol_kwh > 0 and self.dual_tol_per_kwh > 0):
            problems.append("the ADMM tolerances must be > 0")
        if not self.relative_tol >= 0:
            problems.append(f"relative_tol must be >= 0, not {self.relative_tol}")
        if self.stopping not in ("rms", "pairwise"):
            problems.append(f"stopping must be 'rms' or 'pairwise', not {self.stopping!r}")
        if self.max_iterations < 1:
            problems.append(f"max_iterations must be >= 1, not {self.max_iterations}")
        if self.distance_per_kwh > 0 and (self.bus_distance is None or self.household_bus is None):
            problems.append("distance_per_kwh > 0 needs the feeder's distances")
        if self.green_premium_per_kwh > 0 and self.green is None:
            problems.append("green_premium_per_kwh > 0 needs which households have PV")
        if problems:
            raise ValueError("market.p2p: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Pairs:
    """The pairs of one book: ``buy``/``sell`` order indices (sorted by buy order) and
    each pair's differentiation cost ``cost_per_kwh`` and ``neighbour`` flag."""

    buy: np.ndarray
    sell: np.ndarray
    cost_per_kwh: np.ndarray
    neighbour: np.ndarray

    @property
    def n(self) -> int:
        return int(self.buy.shape[0])


def _lookup(matrix: sps.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]] != 0`` for every k, as a bool array."""
    if rows.size == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(matrix[rows, cols]).ravel() != 0


def order_pairs(
    n_buy: int,
    n_sell: int,
    buy_owner: np.ndarray | None,
    sell_owner: np.ndarray | None,
    rule: P2PRule,
) -> Pairs:
    """Every (buy order, sell order) pair whose owners are partners, with its cost.

    Without owners every order is its own household (codes ``0..n_buy-1`` for the buy
    orders and ``n_buy..`` for the sell orders), so only ``partners = None`` applies.
    """
    if buy_owner is None or sell_owner is None:
        if rule.partners is not None or rule.neighbours is not None or rule.green is not None:
            raise ValueError("market.p2p: partners, neighbours or green need the orders' owners")
        buy_owner = np.arange(n_buy)
        sell_owner = np.arange(n_buy, n_buy + n_sell)
    bo = np.asarray(buy_owner, dtype=np.int64)
    so = np.asarray(sell_owner, dtype=np.int64)
    if rule.partners is None:
        pb = np.repeat(np.arange(n_buy, dtype=np.int64), n_sell)
        ps = np.tile(np.arange(n_sell, dtype=np.int64), n_buy)
        keep = bo[pb] != so[ps]
        pb, ps = pb[keep], ps[keep]
    else:
        import scipy.sparse as sps  # SciPy only when the market has partner lists

        n_h = rule.partners.shape[0]
        if (n_buy and int(bo.max()) >= n_h) or (n_sell and int(so.max()) >= n_h):
            raise ValueError(f"market.p2p: an order's owner is not one of the {n_h} households")
        ones_b = np.ones(n_buy)
        ones_s = np.ones(n_sell)
        to_b = sps.csr_matrix((ones_b, (np.arange(n_buy), bo)), shape=(n_buy, n_h))
        of_s = sps.csr_matrix((ones_s, (so, np.arange(n_sell))), shape=(n_h, n_sell))
        allowed = (to_b @ rule.partners.astype(np.float64) @ of_s).tocoo()
        pb = allowed.row.astype(np.int64)
        ps = allowed.col.astype(np.int64)
        keep = bo[pb] != so[ps]
        pb, ps = pb[keep], ps[keep]
        order = np.lexsort((ps, pb))
        pb, ps = pb[order], ps[order]
    hb, hs = bo[pb], so[ps]
    cost = np.zeros(pb.shape[0])
    if rule.distance_per_kwh > 0:
        assert rule.bus_distance is not None and rule.household_bus is not None
        bus = rule.household_bus
        cost += rule.distance_per_kwh * rule.bus_distance[bus[hb], bus[hs]]
    if rule.green_premium_per_kwh > 0:
        assert rule.green is not None
        cost += rule.green_premium_per_kwh * (~rule.green[hs].astype(bool))
    neighbour = (
        _lookup(rule.neighbours, hb, hs)
        if rule.neighbours is not None
        else np.zeros(pb.shape[0], dtype=bool)
    )
    if rule.neighbour_premium_per_kwh > 0:
        cost += rule.neighbour_premium_per_kwh * (~neighbour)
    return Pairs(pb, ps, cost, neighbour)
