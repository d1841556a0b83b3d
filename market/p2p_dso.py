"""Network charges on bilateral trades: a DSO agent prices the feeder's broken limits.

After the consensus ADMM of :mod:`market.p2p` the households' trades are checked on the
feeder; where a limit breaks, the DSO adds a charge per kWh to the pairs whose trades
load the broken element, and the households negotiate again (outer iterations).

**Sensitivities** (array inputs; this module is a leaf and builds no feeder model). A
trade ``t`` of pair ``(b, s)`` injects ``+t`` at the seller's bus ``i`` and ``−t`` at
the buyer's bus ``j``. On a radial tree with ``path[k, l] = 1`` when branch ``l`` lies
between the slack and bus ``k``, the flow of branch ``l`` (positive away from the slack)
changes by ``(path[j, l] − path[i, l]) t`` (the path difference, a PTDF of the tree), see
:func:`pair_line_sensitivity`. For a voltage limit, ``dv_dp[k, i]`` (the sensitivity of
bus ``k``'s voltage to an injection at ``i``, e.g. a row of the linearised DistFlow map
of :mod:`grid.distflow`) gives ``dv_dp[k, i] − dv_dp[k, j]`` per pair.

``S[e, p]`` is then signed so that ``S > 0`` means pair ``p``'s trade worsens element
``e``'s violation (an overloaded branch in its loading direction, an over-voltage bus
with positive sensitivity, an under-voltage bus with negative). The pair's network
charge is ``c_p = Σ_e λ_e max(S[e, p], 0)`` [currency/kWh], with ``λ_e ≥ 0`` per element.

**The update rule** (projected subgradient on the violation, documented step): with
``g_e`` the element's violation (branch: loading fraction − 1; voltage: p.u. beyond the
band; negative when within), ``λ_e ← max(0, λ_e + step_e · g_e)`` where ``step_e`` is
``DSORule.step_per_kwh`` divided by the element's largest ``max(S[e, ·], 0)`` (so that
the first step charges the most-loading pair ``step_per_kwh · g_e``). Only elements that
broke at some outer iteration carry a price. The loop stops when no element is violated
(within ``tol``), when no trade loads a broken element any more (the rest of the
violation is not the trades': more charges move nothing), or after ``max_outer``
negotiations (the first, uncharged, included); what is still broken then is left to the
grid stage (``restored = False``). Each re-negotiation is warm-started from the last
consensus and prices.

**Money.** The buyer pays the pair's price ``λ_bs`` to the seller and the charge to the
DSO; the DSO's revenue is ``Σ_p c_p t_p`` (:attr:`DSOOutcome.revenue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from market.p2p import MIN_TRADE_KWH, Convergence, solve_admm
from market.p2p_pairs import P2PRule, Pairs

__all__ = [
    "DSOConvergence",
    "DSOOutcome",
    "DSORule",
    "Sensitivity",
    "negotiate_with_dso",
    "pair_line_sensitivity",
]


@dataclass(frozen=True, slots=True)
class DSORule:
    """The DSO's outer loop: ``max_outer`` re-negotiations at most, the subgradient step
    ``step_per_kwh`` [currency/kWh per unit of violation], violations below ``tol`` count
    as none."""

    max_outer: int = 20
    step_per_kwh: float = 0.05
    tol: float = 1e-6

    def __post_init__(self) -> None:
        problems = []
        if self.max_outer < 1:
            problems.append(f"max_outer = {self.max_outer} must be at least 1")
        if not self.step_per_kwh > 0:
            problems.append(f"step_per_kwh = {self.step_per_kwh} must be > 0")
        if not self.tol >= 0:
            problems.append(f"tol = {self.tol} must be >= 0")
        if problems:
            raise ValueError("market.p2p.dso: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class DSOConvergence(Convergence):
    """A negotiation the DSO checked: :class:`~market.p2p.Convergence` (``iterations``:
    the ADMM iterations of every outer iteration together) with the outer loop's
    ``outer_iterations`` and whether it ``restored`` every limit."""

    outer_iterations: int = 1
    restored: bool = True


@dataclass(frozen=True, slots=True)
class DSOOutcome:
    """The trades after the outer loop and the charges that produced them.

    ``trade_kwh``, ``price_per_kwh`` and ``network_charge_per_kwh`` are per pair of the
    ``pairs`` passed in (0 trade where the pair does not trade); ``element_price`` is
    ``λ_e`` per element [currency/kWh per unit sensitivity]; ``violation`` the elements'
    violations at the returned trades."""

    trade_kwh: np.ndarray
    price_per_kwh: np.ndarray
    network_charge_per_kwh: np.ndarray
    element_price: np.ndarray
    violation: np.ndarray
    outer_iterations: int
    restored: bool
    convergence: Convergence
    """The last negotiation's residuals, with ``iterations`` the ADMM iterations of all
    the outer iterations together."""

    @property
    def revenue(self) -> float:
        """The DSO's revenue ``Σ_p c_p t_p`` [currency]."""
        return float(self.network_charge_per_kwh @ self.trade_kwh)


def pair_line_sensitivity(
    path: np.ndarray, buy_bus: np.ndarray, sell_bus: np.ndarray
) -> np.ndarray:
    """``(n_line, n_pairs)``: the change of every branch flow (positive away from the
    slack) per kWh that each pair trades, ``path[j, l] − path[i, l]`` with ``j`` the
    buyer's and ``i`` the seller's bus."""
    p = np.asarray(path, dtype=np.float64)
    return p[np.asarray(buy_bus, np.int64)].T - p[np.asarray(sell_bus, np.int64)].T


Sensitivity = np.ndarray | Callable[[np.ndarray], np.ndarray]
"""``S`` (all elements' rows), or a function of element rows returning those rows of it
(a feeder with many elements needs only the rows of the elements that broke)."""


def negotiate_with_dso(
    bq: np.ndarray,
    bp: np.ndarray,
    sq: np.ndarray,
    sp: np.ndarray,
    pairs: Pairs,
    rule: P2PRule,
    check: Callable[[np.ndarray], tuple[np.ndarray, Sensitivity]],
    dso: DSORule,
) -> DSOOutcome:
    """Negotiate, check, charge, re-negotiate (module docstring).

    ``check(trade_kwh)`` maps the per-pair trades onto the feeder and returns
    ``(violation, sensitivity)``: ``violation`` per element (``> 0`` broken) and the
    signed ``(n_element, n_pairs)`` sensitivity ``S`` at that point (or a function of
    element rows giving those rows, :data:`Sensitivity`). Every re-negotiation starts
    from the last one's consensus and prices (:func:`market.p2p.solve_admm`'s ``warm``).
    The loop also stops, unrestored, when no trade left loads a broken element (no
    charge can move anything more: the rest of the violation is not the trades').
    """
    base_cost = pairs.cost_per_kwh
    charge = np.zeros(pairs.n)
    lam_e: np.ndarray | None = None
    priced: np.ndarray | None = None
    warm: tuple[np.ndarray, np.ndarray] | None = None
    k = admm = 0
    while True:
        k += 1
        priced_pairs = replace(pairs, cost_per_kwh=base_cost + charge)
        x, y, lam, conv = solve_admm(bq, bp, sq, sp, priced_pairs, rule, warm)
        admm += conv.iterations
        warm = (0.5 * (x + y), lam)
        trade = np.minimum(x, y)
        trade[trade <= MIN_TRADE_KWH] = 0.0
        violation, sens = check(trade)
        violation = np.asarray(violation, dtype=np.float64)
        if lam_e is None or priced is None:
            lam_e = np.zeros(violation.shape[0])
            priced = np.zeros(violation.shape[0], dtype=bool)
        broken = violation > dso.tol
        if not broken.any() or k >= dso.max_outer:
            break
        priced |= broken
        rows = np.flatnonzero(priced)
        s_rows = sens(rows) if callable(sens) else np.asarray(sens, dtype=np.float64)[rows]
        load = np.maximum(np.asarray(s_rows, dtype=np.float64), 0.0)
        if not ((load[broken[rows]] > 0) & (trade > 0)).any():
            break  # no trade loads a broken element: no charge can move it
        scale = np.maximum(load.max(axis=1), 1e-12)
        lam_e[rows] = np.maximum(0.0, lam_e[rows] + dso.step_per_kwh / scale * violation[rows])
        charge = load.T @ lam_e[rows]
    ask = sp[pairs.sell]
    price = np.clip(lam, ask, np.maximum(bp[pairs.buy] - charge, ask))
    return DSOOutcome(
        trade_kwh=trade,
        price_per_kwh=price,
        network_charge_per_kwh=charge,
        element_price=lam_e,
        violation=violation,
        outer_iterations=k,
        restored=not bool((violation > dso.tol).any()),
        convergence=replace(conv, iterations=admm),
    )
