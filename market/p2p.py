"""Bilateral peer-to-peer trading by consensus ADMM: the ``p2p`` array core.

No auctioneer matches the book: every pair of partners (:mod:`market.p2p_pairs`)
negotiates its own trade and price, and each household only solves its own small
problem and exchanges proposals with its partners (Sorin, Bobo & Pinson 2019 [1]_).

**The problem.** A buy order ``b`` (energy ``q_b``, limit price ``π_b``) values each kWh
at ``π_b``, less the pair's differentiation cost ``c_bs``; a sell order ``s`` costs its
``π_s`` per kWh. What an order does not trade is settled with the utility, the partner of
last resort, at retail or feed-in (so every order is free to trade anything from 0 to its
energy, as in the auctions). The trades ``t_bs ≥ 0`` maximise the welfare::

    W(t) = Σ_pairs (π_b − π_s − c_bs) t_bs   s.t.  Σ_s t_bs ≤ q_b,  Σ_b t_bs ≤ q_s.

The utilities are linear, as the auctions read the limit prices (no quadratic term is
added: ADMM's own penalty regularises every local problem, and with all ``c = 0`` the
optimum is then exactly the uniform auction's, :mod:`market.uniform`).

**The decomposition** [1]_ (their ``p_nm`` is our ``x_bs`` for the buyer and ``−y_bs``
for the seller; the reciprocity ``p_nm + p_mn = 0`` is ``x = y``). Every pair holds two
proposals, the buyer's ``x_bs`` and the seller's ``y_bs``, and a price ``λ_bs``. One
iteration ``k`` (global consensus ADMM, Boyd et al. 2011 §7.1 [2]_, over-relaxed with
``α`` as in their §3.4.3; the consensus is the pair's average ``z = (x + y)/2``, and with
``α = 1`` the price step is [1]_'s ``λ_nm ← λ_nm − ρ/2 (p_nm + p_mn)``)::

    x_b ← argmin_{x ≥ 0, Σx ≤ q_b}  Σ_s (λ_bs − π_b + c_bs) x_bs + ρ/2 (x_bs − z_bs)²
    y_s ← argmin_{y ≥ 0, Σy ≤ q_s}  Σ_b (π_s − λ_bs) y_bs + ρ/2 (y_bs − z_bs)²
    z   ← α (x + y)/2 + (1 − α) z
    λ   ← λ + α ρ/2 (x − y)

(the relaxed copies ``x̂ = α x + (1 − α) z`` and ``ŷ`` averaged, and ``λ`` moved by ``ρ``
times ``x̂`` less their average). Both updates use only the pair's two proposals, so
each pair's partners compute them alike. The buyer pays ``λ`` and the seller receives it:
the price rises while buyers ask for
more than sellers offer. Each local problem is a projection of ``z − (coefficient)/ρ``
onto the capped simplex ``{v ≥ 0, Σ v ≤ q}``, ``v = max(u − μ, 0)`` with one ``μ ≥ 0``
per order, found by Newton steps on the piecewise-linear ``Σ max(u − μ, 0) = q`` from
``μ = 0`` (monotone, exact in finitely many steps): all orders at once, with
``numpy.bincount`` over the pair arrays (no loop over households).

**Stopping** (Boyd et al. 2011 §3.3.1 [2]_, written per pair: their norms divided by
``√p`` over the ``p`` negotiating pairs, :class:`~market.p2p_pairs.P2PRule`). The primal
residual is the root-mean-square disagreement of two partners, ``‖x − y‖₂/√p`` [kWh], the
dual residual ``ρ ‖z_k − z_{k−1}‖₂/√p`` [currency/kWh]; the negotiation stops when

    r ≤ primal_tol_kwh + relative_tol · max(‖x‖₂, ‖y‖₂)/√p
    s ≤ dual_tol_per_kwh + relative_tol · ‖λ‖₂/√p

or after ``max_iterations``. ``α = 1.6`` is fixed and ``ρ`` starts at ``0.3`` (defaults);
under the ``"rms"`` rule ``ρ`` is rebalanced every :data:`~market.p2p_steps.BALANCE_EVERY`
iterations (:func:`market.p2p_steps.balanced_rho`, Boyd §3.4.1). The benchmark's books
converge before the first or second check, with or without it; on small books with margins
of a few tenths of a cent a fixed ``ρ`` stalled: of 3,000 random books of up to six buyers
and six sellers (the distribution of ``tests/market/test_p2p.py``) 30 reached the cap of
1,000 iterations and 4 ended outside ε, up to 140 ε below the optimum; with the balancing
none did either.

The ``"rms"`` rule (the default) and the balancing are global (norms over all pairs).
``stopping = "pairwise"`` holds every pair to its own threshold instead, with ``ρ`` fixed,
``|x − y| ≤ primal_tol_kwh + relative_tol · max(x, y)`` and ``ρ |z_k − z_{k−1}| ≤
dual_tol_per_kwh + relative_tol · |λ|`` (:func:`market.p2p_steps.pairs_settled`): both
partners of a pair know these numbers, so live peers, which see only their own pairs, can
test it and agree on it by flooding their flags over the partner graph
(:mod:`live.p2p_peer`); a batch run with it negotiates exactly as the live peers do.

**Outcome.** Each pair's trade is the smaller of its two last proposals (what both
sides agree to, so no order is filled beyond its energy), kept when above
:data:`MIN_TRADE_KWH`; its price is the pair's dual ``λ_bs``, clipped into ``[π_s, π_b]`` (at
convergence it already lies in ``[π_s, π_b − c_bs]``: the clip moves it by at most the
residuals and makes every trade individually rational). Buyer and seller face the same
price (no market surplus). :class:`Convergence` rides along on the matching; with
``central_check`` it also holds the central LP's optimum of the same pairs (the proof,
:mod:`market.p2p_central`).

References
----------
.. [1] T. Sorin, L. Bobo and P. Pinson, "Consensus-based approach to peer-to-peer
   electricity markets with product differentiation", *IEEE Trans. Power Systems*
   34(2), 994–1004, 2019.
.. [2] S. Boyd, N. Parikh, E. Chu, B. Peleato and J. Eckstein, "Distributed
   optimization and statistical learning via the alternating direction method of
   multipliers", *Found. Trends Mach. Learn.* 3(1), 2011.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from market.p2p_pairs import P2PRule, Pairs, order_pairs
from market.p2p_steps import (
    BALANCE_EVERY,
    balanced_rho,
    pair_update,
    pairs_settled,
    residuals,
    tolerances,
)
from market.uniform import Matching, make_matching

__all__ = [
    "Convergence",
    "P2PRule",
    "cap_project",
    "clear_p2p",
    "local_update",
    "negotiating_pairs",
    "pair_matching",
    "residuals",
    "solve_admm",
    "tolerances",
]

MIN_TRADE_KWH = 1e-6
"""Trades below this (1 mWh) are dropped: both proposals are exactly 0 on the pairs that
do not trade (the projection's ``max(·, 0)``), so what is below is rounding."""

_NEWTON_STEPS = 64
"""Newton steps of a projection at most (each step passes at least one breakpoint)."""


@dataclass(frozen=True, slots=True)
class Convergence:
    """How the ADMM negotiation of one book went.

    ``pairs`` are the pairs that negotiate: partner pairs whose seller's ask is at most
    what the buyer's kWh from it is worth (the others cannot trade, and neither side
    proposes). ``messages`` counts what the decentralised protocol sends: two proposals
    per pair and iteration (the buyer's and the seller's).
    """

    iterations: int
    primal_residual_kwh: float
    dual_residual_per_kwh: float
    converged: bool
    pairs: int
    rho: float
    differentiation_cost: float
    """``Σ c_bs t_bs`` of the trades [currency]: the welfare the preferences take off."""
    neighbour_trades: int
    """Trades between neighbours (preferred partners)."""
    central_welfare: float = float("nan")
    """With ``P2PRule.central_check``: the central LP's optimum of the same pairs, net of
    the differentiation costs (:mod:`market.p2p_central`) [currency]; else NaN."""
    central_solve_s: float = float("nan")
    """HiGHS's solve time of that LP [s]."""
    primal_tol_kwh: float = float("nan")
    """The threshold the primal residual was held to at the last iteration [kWh]
    (absolute plus relative part, module docstring "Stopping")."""
    dual_tol_per_kwh: float = float("nan")
    """The threshold of the dual residual at the last iteration [currency/kWh]."""

    @property
    def messages(self) -> int:
        return 2 * self.pairs * self.iterations


def cap_project(
    u: np.ndarray, seg: np.ndarray, cap: np.ndarray, mu0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Project every segment of ``u`` onto ``{v ≥ 0, Σ v ≤ cap[seg]}`` (Euclidean):
    ``(v, μ)`` per entry and per segment.

    ``seg`` names each entry's segment (order); ``v = max(u − μ_seg, 0)`` with ``μ = 0``
    where the positive part fits, else the root of ``f(μ) = Σ max(u − μ, 0) − cap = 0``,
    found by Newton steps. ``f`` is convex, decreasing and piecewise linear, so from a
    point left of the root the steps increase monotonically and end on it; a start to
    the right of it (``f < 0``) lands left of it after one step (the tangent lies below
    ``f``). ``mu0`` (the last iteration's ``μ``) is such a start; default 0. Only the
    entries of the segments that do not fit take part in the steps.
    """
    n_seg = cap.shape[0]
    v = np.maximum(u, 0.0)
    over = np.bincount(seg, v, n_seg) > cap
    mu = np.zeros(n_seg)
    if not over.any():
        return v, mu
    rows = over[seg].nonzero()[0]
    us, ss = u[rows], seg[rows]
    if mu0 is not None:
        mu = np.where(over, mu0, 0.0)
    vs = np.maximum(us - mu[ss], 0.0)
    tol = 1e-14 * max(1.0, float(cap.max()))
    for _ in range(_NEWTON_STEPS):
        excess = np.bincount(ss, vs, n_seg) - cap
        active = np.bincount(ss[vs > 0], minlength=n_seg)
        # right of the root with nothing active: back to the start of the segment
        lost = over & (excess < -tol) & (active == 0)
        slope = np.maximum(active, 1)
        step = np.where(over & (np.abs(excess) > tol), excess / slope, 0.0)
        step[lost] = -mu[lost]
        if not step.any():
            break
        mu = np.maximum(mu + step, 0.0)
        vs = np.maximum(us - mu[ss], 0.0)
    v[rows] = vs
    return v, mu


def local_update(
    z: np.ndarray,
    coef: np.ndarray,
    seg: np.ndarray,
    cap: np.ndarray,
    rho: float,
    mu0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The households' local step (module docstring): their proposals ``(v, μ)``.

    One formula for the batch ADMM (all orders at once) and for each live peer (its own
    pairs only): ``v = argmin_{v ≥ 0, Σ v ≤ cap} Σ coef·v + ρ/2 (v − z)²``, the
    projection of ``z − coef/ρ`` per segment. ``coef`` is ``λ − (π_b − c)`` for a
    buyer's pairs and ``π_s − λ`` for a seller's.
    """
    return cap_project(z - coef / rho, seg, cap, mu0)


def solve_admm(
    bq: np.ndarray,
    bp: np.ndarray,
    sq: np.ndarray,
    sp: np.ndarray,
    pairs: Pairs,
    rule: P2PRule,
    warm: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Convergence]:
    """Run the negotiation (module docstring): ``(x, y, λ, convergence)`` per pair.

    ``warm = (z, λ)`` per pair starts from a previous negotiation's consensus and prices
    (the DSO's re-negotiation, :mod:`market.p2p_dso`); default ``z = 0`` and every
    pair's midpoint price."""
    pb, ps, cost = pairs.buy, pairs.sell, pairs.cost_per_kwh
    value = bp[pb] - cost  # what the buyer's kWh from this seller is worth to it
    ask = sp[ps]
    if warm is None:
        lam = 0.5 * (value + ask)  # start at each pair's midpoint
        z = np.zeros(pairs.n)
    else:
        z, lam = np.array(warm[0], dtype=np.float64), np.array(warm[1], dtype=np.float64)
    x = y = z
    rho, alpha = float(rule.rho), float(rule.relaxation)
    mu: np.ndarray | None = None
    # buyers' and sellers' problems are independent given (z, λ): one projection over
    # both, the sellers' segments after the buyers'
    n_p = pairs.n
    seg = np.concatenate((pb, bq.shape[0] + ps))
    cap = np.concatenate((bq, sq))
    zz, coef = np.empty(2 * n_p), np.empty(2 * n_p)  # both sides' copies of z, their costs
    r = s = eps_pri = eps_dual = float("inf")
    pairwise = rule.stopping == "pairwise"
    if pairwise:  # each pair is held to its own threshold: report the absolute parts
        eps_pri, eps_dual = rule.primal_tol_kwh, rule.dual_tol_per_kwh
    done = False
    root_p = np.sqrt(n_p)
    k = 0
    while k < rule.max_iterations:
        k += 1
        zz[:n_p] = z
        zz[n_p:] = z
        np.subtract(lam, value, out=coef[:n_p])
        np.subtract(ask, lam, out=coef[n_p:])
        v, mu = local_update(zz, coef, seg, cap, rho, mu)
        x, y = v[:n_p], v[n_p:]
        gap = x - y
        z_new, lam = pair_update(x, y, z, lam, rho, alpha)
        r, s = residuals(gap, z_new - z, rho, root_p)
        if pairwise:
            done = bool(pairs_settled(gap, z_new - z, x, y, lam, rule).all())
        else:
            eps_pri, eps_dual = tolerances(x, y, lam, rule, root_p)
            done = r <= eps_pri and s <= eps_dual
        z = z_new
        if done:
            break
        if not pairwise and k % BALANCE_EVERY == 0:
            rho = balanced_rho(rho, r / eps_pri, s / eps_dual)
    converged = done
    conv = Convergence(k, r, s, converged, pairs.n, rho, 0.0, 0,
                       primal_tol_kwh=eps_pri, dual_tol_per_kwh=eps_dual)  # fmt: skip
    return x, y, lam, conv


def negotiating_pairs(
    bp: np.ndarray,
    sp: np.ndarray,
    buy_owner: np.ndarray | None,
    sell_owner: np.ndarray | None,
    rule: P2PRule,
) -> Pairs:
    """The partner pairs that negotiate: those whose seller's ask is at most what the
    buyer's kWh from it is worth (the others can never trade)."""
    pairs = order_pairs(bp.shape[0], sp.shape[0], buy_owner, sell_owner, rule)
    gain = bp[pairs.buy] - sp[pairs.sell] - pairs.cost_per_kwh
    return Pairs(*(a[gain >= 0] for a in (pairs.buy, pairs.sell, pairs.cost_per_kwh,
                                          pairs.neighbour)))  # fmt: skip


def pair_matching(
    bq: np.ndarray,
    bp: np.ndarray,
    sq: np.ndarray,
    sp: np.ndarray,
    pairs: Pairs,
    rule: P2PRule,
    trade_kwh: np.ndarray,
    seller_price_per_kwh: np.ndarray,
    conv: Convergence,
    charge_per_kwh: np.ndarray | None = None,
) -> Matching:
    """The :class:`~market.uniform.Matching` of per-pair trades and prices (module
    docstring, "Outcome"): the pairs trading above :data:`MIN_TRADE_KWH`; the buyer pays
    the seller's price plus the pair's network charge (:mod:`market.p2p_dso`; none by
    default). ``conv`` gains the trades' differentiation cost, neighbour trades and,
    with ``rule.central_check``, the central LP's optimum."""
    keep = np.flatnonzero(trade_kwh > MIN_TRADE_KWH)
    tb, ts, tq = pairs.buy[keep], pairs.sell[keep], trade_kwh[keep]
    price = seller_price_per_kwh[keep]
    buyer_price = price.copy() if charge_per_kwh is None else price + charge_per_kwh[keep]
    conv = replace(
        conv,
        differentiation_cost=float(pairs.cost_per_kwh[keep] @ tq),
        neighbour_trades=int(pairs.neighbour[keep].sum()),
    )
    if rule.central_check:
        from market.p2p_central import solve_central_pairs  # HiGHS only when asked

        central = solve_central_pairs(bq, bp, sq, sp, pairs)
        conv = replace(conv, central_welfare=central.welfare, central_solve_s=central.solve_s)
    m = make_matching(bq.shape[0], sq.shape[0], tb, ts, tq, buyer_price, price)
    return replace(m, convergence=conv)


def clear_p2p(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    rng: np.random.Generator | None = None,
    *,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
    rule: P2PRule | None = None,
) -> Matching:
    """Bilateral trades and per-pair prices by consensus ADMM (module docstring).

    The signature of every array core (:data:`market.mechanisms.ARRAY_MECHANISMS`);
    ``rng`` is unused. Owners are household codes into ``rule``'s arrays; orders of one
    owner never trade with each other. The returned :class:`~market.uniform.Matching`
    carries the negotiation's :class:`Convergence` as ``convergence``.
    """
    rule = rule or P2PRule()
    bq = np.asarray(buy_kwh, dtype=np.float64).ravel()
    bp = np.asarray(buy_price_per_kwh, dtype=np.float64).ravel()
    sq = np.asarray(sell_kwh, dtype=np.float64).ravel()
    sp = np.asarray(sell_price_per_kwh, dtype=np.float64).ravel()
    pairs = negotiating_pairs(bp, sp, buy_owner, sell_owner, rule)
    if pairs.n == 0:
        none_i, none_f = np.zeros(0, np.int64), np.zeros(0)
        empty = make_matching(bq.shape[0], sq.shape[0], none_i, none_i, none_f, none_f, none_f)
        conv = Convergence(0, 0.0, 0.0, True, 0, rule.rho, 0.0, 0, 0.0, 0.0,
                           rule.primal_tol_kwh, rule.dual_tol_per_kwh)  # fmt: skip
        return replace(empty, convergence=conv)
    x, y, lam, conv = solve_admm(bq, bp, sq, sp, pairs, rule)
    price = np.clip(lam, sp[pairs.sell], bp[pairs.buy])
    return pair_matching(bq, bp, sq, sp, pairs, rule, np.minimum(x, y), price, conv)
