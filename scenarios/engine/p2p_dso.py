"""The DSO of the bilateral market on the run's feeder (``[market.p2p] dso = true``).

Under ``market.mechanism = "p2p"`` with the grid check on, every interval's consensus
ADMM (:mod:`market.p2p`) is followed by the feeder check of the injections its trades
imply; where a limit breaks, the DSO charges the pairs whose trades load the broken
element and the households re-negotiate, warm-started from the last consensus and
prices, until nothing is broken or ``[market.p2p] dso_max_outer`` negotiations are done
(:func:`market.p2p_dso.negotiate_with_dso`: the charges, the subgradient rule on
``λ_e``, its step ``dso_step_per_kwh``). What is still broken then goes to the grid
stage's re-clearing as without the DSO (:mod:`scenarios.engine.grid_stage`), whose
trades replace the negotiated ones and carry no network charge (``dso_fallback``).

**What a trade moves.** A trade fills one buy and one sell order. Filling an order of
kind ``net`` (the household's inflexible position) moves no energy: the surplus is
injected and the deficit drawn whether they trade with a peer or with the utility. A
filled flexible order (battery or EV, :data:`agents.households.community.KIND_NET`
excepted) is energy its device charges or discharges only because it traded
(:func:`agents.households.community.device_flows`). A pair's trade of ``t`` kWh in an
interval of ``Δt`` h thus raises the seller's bus injection by ``t/Δt`` kW when the
sell order is flexible, and lowers the buyer's by as much when the buy order is; a
trade between two ``net`` orders loads nothing and is never charged (a violation only
such trades face is left to the grid stage at once).

**The check** is the run's feeder model in its linear form (the screen of
:class:`grid.lindistflow.FeederModel`, the same map its Pyomo check solves, to 1e-7 p.u.):
the household flows of the trades' fills (the ``flows_of`` the engine passes), summed
per bus with the background (:meth:`~scenarios.engine.grid_stage.GridStage.injections`).
Elements are the branches, then every bus twice (over-, then under-voltage); their
violations, in the model's limits (:mod:`grid.limits`, margins included), are fractions of
what each may deviate: a branch's ``loading − loading_limit`` of its rating, a bus's
``v − v_hi`` or ``v_lo − v`` of half the voltage band ``(v_max − v_min)/2`` (0.05 p.u. by
default), so that one ``dso_step_per_kwh`` suits both (a voltage 0.01 p.u. out of a ±5 %
band is a violation of 0.2, as a branch loaded 20 % over its limit).

**The sensitivities** come from the feeder model's linear map ``H``
(:class:`grid.distflow.LinearMap`: ``∂P_l/∂p_k``, ``∂Q_l/∂p_k``, ``∂w_b/∂p_k`` per unit).
A branch's loading ``|S_l| / (V_from s_max)`` changes by ``(P_l ∂P_l + Q_l ∂Q_l) /
(|S_l| V_from s_max)`` per unit of injection at ``k``; a bus voltage ``v_b = √w_b`` by
``∂w_b/∂p_k / (2 v_b)`` (over the half band, as the violation). In LinDistFlow terms
(Baran & Wu 1989; ``H`` is exactly that at a zero operating point, as on the LV
feeders) ``∂P_l/∂p_k = −path[k, l]`` and ``∂w_b/∂p_k = 2 Σ_l path[b, l] path[k, l] r_l``:
the voltage at ``b`` rises by the resistance of the path that ``b`` and ``k`` share from
the slack times the active injection (``x`` enters only through reactive power, which a
storage trade at unity power factor does not move). A pair's sensitivity is the seller's
bus column minus the buyer's (each where its order is flexible) over ``Δt``, signed so
that positive worsens the element's violation (:mod:`market.p2p_dso`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from agents.households.community import KIND_NET, Flows, Plan
from grid.distflow import loading_frac
from grid.limits import VIOLATION_TOL
from grid.pairing import Pairing
from market.mechanisms import ArrayMechanism
from market.p2p import MIN_TRADE_KWH, clear_p2p, negotiating_pairs, pair_matching
from market.p2p_dso import DSOConvergence, DSOOutcome, DSORule, Sensitivity, negotiate_with_dso
from market.p2p_pairs import P2PRule, Pairs
from market.uniform import Matching
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridOutcome, GridStage
from scenarios.engine.plan_clearing import Cleared

__all__ = ["NO_DSO", "DSOReport", "FeederDSO", "charged_matching"]

FlowsOf = Callable[[Plan, np.ndarray, "np.ndarray | None"], Flows]


@dataclass(frozen=True, slots=True)
class DSOReport:
    """One interval's DSO loop as the results record it (``intervals.parquet``'s
    ``dso_*`` columns, ``trades.parquet``'s ``network_charge_per_kwh``)."""

    outer_iterations: int = 0
    """Negotiations of the interval (1: no re-negotiation; 0: no pair could trade)."""
    restored: bool = True
    """Every limit of the linear check holds after the loop (also where none broke)."""
    fallback: bool = False
    """The grid stage re-cleared the interval after the loop."""
    network_charge_per_kwh: np.ndarray | None = None
    """Per trade of the interval's final pairing [currency/kWh]; None: no charges."""
    revenue: float = 0.0
    """``Σ charge × energy`` of the trades settled [currency]."""


NO_DSO = DSOReport()


class FeederDSO:
    """The DSO of one run: its feeder's sensitivities and the charged negotiation."""

    def __init__(self, grid: GridStage, rule: P2PRule, dso: DSORule) -> None:
        self.grid, self.rule, self.dso = grid, rule, dso
        m = grid.model
        nl, nb, s = m.tree.n_line, m.tree.n_bus, m.feeder.s_base_kva
        h = m.map.h[:, :nb] / s  # per kW of active injection at every bus
        self.dp, self.dq, self.dw = h[:nl], h[nl : 2 * nl], h[2 * nl :]
        self.n_line, self.n_bus = nl, nb
        self.half_band_pu = 0.5 * (m.limits.v_max_pu - m.limits.v_min_pu)

    @classmethod
    def of(
        cls, scenario: Scenario, grid: GridStage | None, rule: P2PRule | None
    ) -> FeederDSO | None:
        """The run's DSO: with ``[market.p2p] dso``, the bilateral market and the feeder."""
        cfg = scenario.market.p2p
        if not cfg.dso or grid is None or rule is None:
            return None
        dso = DSORule(cfg.dso_max_outer, cfg.dso_step_per_kwh, VIOLATION_TOL)
        return cls(grid, rule, dso)

    def state(
        self, p_kw: np.ndarray, q_kvar: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Violations of every element and the linear state ``(P, Q, w, v)`` [p.u.]."""
        m = self.grid.model
        s = m.feeder.s_base_kva
        pl, ql, w = m.map.solve(p_kw / s, q_kvar / s)
        v = np.sqrt(np.maximum(w, 0.0))
        loading = loading_frac(m.tree, pl, ql, w)
        lim = m.limits
        half = self.half_band_pu
        violation = np.concatenate(
            (loading - lim.loading_limit_frac, (v - lim.v_hi_pu) / half, (lim.v_lo_pu - v) / half)
        )
        return violation, pl, ql, w, v

    def element_rows(
        self, rows: np.ndarray, pl: np.ndarray, ql: np.ndarray, w: np.ndarray, v: np.ndarray
    ) -> np.ndarray:
        """``(len(rows), n_bus)``: each element's violation per kW injected at each bus
        (module docstring, "The sensitivities")."""
        m = self.grid.model
        nl, nb = self.n_line, self.n_bus
        out = np.empty((len(rows), nb))
        line = rows < nl
        lr = rows[line]
        if lr.size:
            apparent = np.maximum(np.hypot(pl[lr], ql[lr]), 1e-12)
            v_from = np.sqrt(np.maximum(w[m.tree.from_bus[lr]], 1e-12))
            scale = apparent * v_from * m.tree.s_max_pu[lr]
            out[line] = (pl[lr, None] * self.dp[lr] + ql[lr, None] * self.dq[lr]) / scale[:, None]
        bus = ~line
        br = rows[bus] - nl
        over = br < nb
        b = np.where(over, br, br - nb)
        dv = self.dw[b] / (2.0 * self.half_band_pu * np.maximum(v[b], 1e-6))[:, None]
        out[bus] = np.where(over[:, None], dv, -dv)
        return out

    def core(
        self, plan: Plan, flows_of: FlowsOf, bg_p: np.ndarray | None, bg_q: np.ndarray | None
    ) -> ArrayMechanism:
        """The array core of ``plan``'s clearing: the charged negotiation, its trades
        checked on the feeder with the plan's physics (``bg_p``, ``bg_q``: the feeder's
        background injections of the interval [kW, kvar])."""
        assert bg_p is not None and bg_q is not None  # the grid stage's, as the DSO's
        buy, sell = np.flatnonzero(plan.is_buy), np.flatnonzero(~plan.is_buy)
        grid, dt_h = self.grid, self.grid.dt_h
        flexible = plan.kind != KIND_NET
        bus = grid.bus[plan.household]

        def core(
            bq: np.ndarray,
            bp: np.ndarray,
            sq: np.ndarray,
            sp: np.ndarray,
            rng: np.random.Generator | None = None,
            *,
            buy_owner: np.ndarray | None = None,
            sell_owner: np.ndarray | None = None,
        ) -> Matching:
            pairs = negotiating_pairs(bp, sp, buy_owner, sell_owner, self.rule)
            if pairs.n == 0:
                return clear_p2p(
                    bq, bp, sq, sp, buy_owner=buy_owner, sell_owner=sell_owner, rule=self.rule
                )
            ob, os_ = buy[pairs.buy], sell[pairs.sell]
            fb, fs = flexible[ob].astype(np.float64), flexible[os_].astype(np.float64)
            jb, js = bus[ob], bus[os_]

            def check(trade_kwh: np.ndarray) -> tuple[np.ndarray, Sensitivity]:
                filled = np.zeros(len(plan.energy_kwh))
                filled[buy] = np.bincount(pairs.buy, trade_kwh, len(buy))
                filled[sell] = np.bincount(pairs.sell, trade_kwh, len(sell))
                net = flows_of(plan, filled, None).net_kwh(plan.generation_kwh, plan.demand_kwh)
                p, q = grid.injections(net, plan.demand_kwh, bg_p, bg_q)
                violation, *point = self.state(p, q)

                def sensitivity(rows: np.ndarray) -> np.ndarray:
                    g = self.element_rows(rows, *point)
                    return (g[:, js] * fs - g[:, jb] * fb) / dt_h

                return violation, sensitivity

            out = negotiate_with_dso(bq, bp, sq, sp, pairs, self.rule, check, self.dso)
            return charged_matching(bq, bp, sq, sp, pairs, self.rule, out)

        return core

    def report(
        self, negotiated: Cleared, pairing: Pairing, outcome: GridOutcome | None, broken: int
    ) -> DSOReport:
        """The interval's :class:`DSOReport`: ``negotiated`` is the clearing the DSO's
        core made, ``pairing`` the trades settled, ``outcome`` the grid stage's verdict on
        them and ``broken`` the limits it found broken before any re-clearing."""
        conv = negotiated.match.convergence
        fallback = outcome is not None and outcome.recleared
        if not isinstance(conv, DSOConvergence):  # no pair could trade: nothing to charge
            return DSOReport(0, broken == 0, fallback)
        if pairing is not negotiated.pairing:
            return DSOReport(conv.outer_iterations, conv.restored, fallback)
        m = negotiated.match
        charge = m.buyer_price_per_kwh - m.seller_price_per_kwh
        revenue = float(charge @ m.trade_kwh)
        return DSOReport(conv.outer_iterations, conv.restored, fallback, charge, revenue)


def charged_matching(
    bq: np.ndarray,
    bp: np.ndarray,
    sq: np.ndarray,
    sp: np.ndarray,
    pairs: Pairs,
    rule: P2PRule,
    out: DSOOutcome,
) -> Matching:
    """The matching of the DSO loop's outcome: the buyer pays the pair's price plus its
    network charge. A pair whose charge leaves the buyer's limit below the seller's ask
    does not trade (at convergence it does not; this drops what the residuals left), so
    every trade is individually rational with its charge."""
    charge = out.network_charge_per_kwh
    rational = bp[pairs.buy] - charge >= sp[pairs.sell]
    trade = np.where(rational & (out.trade_kwh > MIN_TRADE_KWH), out.trade_kwh, 0.0)
    c = out.convergence
    conv = DSOConvergence(
        **{f.name: getattr(c, f.name) for f in fields(c)},
        outer_iterations=out.outer_iterations,
        restored=out.restored,
    )
    return pair_matching(bq, bp, sq, sp, pairs, rule, trade, out.price_per_kwh, conv, charge)
