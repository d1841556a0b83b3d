"""What the batch engine and the live market share: the per-interval market step (clear →
grid check / re-clear → settle); the community's inputs are drawn by
:class:`scenarios.engine.inputs.CommunityInputs`.

:class:`MarketStep` clears one interval's plan. The batch engine passes the community's
own :meth:`agents.households.community.Community.outcome` for the physics; the live market, which
knows only what the agents sent, passes its book-keeping equivalent. Either way the
orders are cleared, checked on the feeder, re-cleared if needed and settled by this one
piece of code: on what the households metered, against what their orders (and the
feeder's instructions) committed them to (:mod:`market.settlement`).

Every settled interval also updates the households' reliability scores
(:mod:`market.reliability`: delivered against committed energy, estimated readings and
rejected messages over ``[market] reliability_window`` intervals); the live market
passes each interval's conduct (estimated, rejected), the batch engine none. With
``[market] derate_unreliable`` each household's sell orders enter the clearing
multiplied by its delivery ratio up to the previous interval (orders derated below
:data:`market.orders.TINY_KWH` are left out); the derated orders are what it committed
to. Batch, live and a replay of the ledger share this step, so they derate alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agents.households.community import KIND_NET, Flows, Plan
from grid.pairing import Pairing
from market.mechanism_names import P2P
from market.mechanisms import SINGLE_PRICE, ArrayMechanism, array_mechanism
from market.orders import TINY_KWH
from market.reliability import Conduct, Reliability, Scores, derate
from market.settlement import Bill, committed_net_kwh, settle, trade_payments
from market.uniform import Matching
from scenarios.config.schema import Scenario
from scenarios.engine.dimming import Dimming
from scenarios.engine.fees import GridFees
from scenarios.engine.grid_stage import GridOutcome, GridStage
from scenarios.engine.inputs import community_households, price_band, timeline
from scenarios.engine.p2p import p2p_rule
from scenarios.engine.p2p_dso import NO_DSO, DSOReport, FeederDSO
from scenarios.engine.plan_clearing import Cleared, clear_plan, no_market
from scenarios.engine.sharing import share_net, sharing_rule

STREAM_CDA = 303
"""Random stream of the continuous double auction's arrival order."""

FlowsOf = Callable[[Plan, np.ndarray, "np.ndarray | None"], Flows]
"""``(plan, filled_kwh per order, ev_deferred_kwh or None) -> Flows``."""


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """One interval through the market and the feeder: the market outcome, the grid
    outcome, every household's flows and bill (imbalance included).

    The results files and the live payloads are derived from it through one table
    (:data:`scenarios.results.schema.COLUMNS`, each column's ``source`` read by
    :meth:`value`). ``plan`` is the plan as finally cleared (orders dropped or shrunk by
    the feeder); ``order_filled_kwh`` and ``ev_deferred_kwh`` refer to the orders of the
    plan that went in, so that an agent can apply its own fills.
    """

    plan: Plan
    cleared: Cleared
    match: Matching
    pairing: Pairing
    price_per_kwh: float
    volume_kwh: float
    order_filled_kwh: np.ndarray
    ev_deferred_kwh: np.ndarray | None
    flows: Flows
    generation_kwh: np.ndarray
    curtailed_kwh: np.ndarray
    net_kwh: np.ndarray
    outcome: GridOutcome | None
    trade_fee: np.ndarray
    bill: Bill
    committed_net_kwh: np.ndarray
    """What the orders and the feeder's instructions committed each household to inject
    [kWh]: a later, corrected reading is settled against it (:func:`market.settlement.settle`)."""
    interval_hours: float
    violations_before_reclear: int = 0
    dimmed_kwh: np.ndarray | None = None
    """Planned draw of controllable devices the grid operator dimmed (§14a EnWG) [kWh]."""
    ev_shortfall_kwh: np.ndarray | None = None
    """Least-laxity EV charging dimmed: missing at departure [kWh AC]."""
    reliability: Scores | None = None
    """Every household's reliability scores with this interval (:mod:`market.reliability`);
    :meth:`MarketStep.run` always sets them."""
    dso: DSOReport = NO_DSO
    """The DSO's outer loop (``[market.p2p] dso``, :mod:`scenarios.engine.p2p_dso`)."""

    @property
    def network_charge_per_kwh(self) -> np.ndarray:
        """Each trade's network charge (in its buyer's price) [currency/kWh]."""
        c = self.dso.network_charge_per_kwh
        return c if c is not None else np.zeros(len(self.pairing.energy_kwh))

    @property
    def seller_price_per_kwh(self) -> float:
        """Volume-weighted price the sellers receive; NaN without trades."""
        p = self.pairing
        return (
            float(p.energy_kwh @ p.seller_price_per_kwh / self.volume_kwh)
            if (self.volume_kwh > 0)
            else float("nan")
        )

    @property
    def market_surplus(self) -> float:
        """What the buyers pay minus what the sellers receive [currency]."""
        p = self.pairing
        return float(p.energy_kwh @ (p.price_per_kwh - p.seller_price_per_kwh))

    @property
    def losses_kwh(self) -> float:
        assert self.outcome is not None
        return float(self.outcome.check.losses_kw * self.interval_hours)

    @property
    def solved_with_pyomo(self) -> bool:
        assert self.outcome is not None
        return self.outcome.check.solved_with == "pyomo"

    @property
    def ev_deferred_or_zero_kwh(self) -> np.ndarray:
        d = self.ev_deferred_kwh
        return d if d is not None else np.zeros(len(self.net_kwh))

    @property
    def dimmed_or_zero_kwh(self) -> np.ndarray:
        d = self.dimmed_kwh
        return d if d is not None else np.zeros(len(self.net_kwh))

    @property
    def ev_shortfall_or_zero_kwh(self) -> np.ndarray:
        d = self.ev_shortfall_kwh
        return d if d is not None else np.zeros(len(self.net_kwh))

    def value(self, source: str) -> Any:
        """The value a schema column's ``source`` names: an attribute path
        (``bill.cost``), summed over the households with a ``sum:`` prefix."""
        path, total = _source(source)
        value = path(self)
        return value.sum() if total else value


@functools.cache
def _source(source: str) -> tuple[Callable[[IntervalResult], Any], bool]:
    """A getter of the dotted path (each step an attribute, or a key of a mapping)."""
    parts = source.removeprefix("sum:").split(".")

    def get(result: IntervalResult) -> Any:
        value: Any = result
        for part in parts:
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        return value

    return get, source.startswith("sum:")


class MarketStep:
    """Clear → grid check (re-clear) → settle, for one interval at a time.

    With ``p2p=False`` it is the no-P2P baseline's step: no order is matched, neither by
    the mechanism nor by the feeder's re-clearing, so the utility is the only
    counterparty, while the feeder check, curtailment and EV deferral are the same code.

    Under ``market.mechanism = "sharing"`` the core allocates the net positions by the
    community's key (:mod:`market.sharing`; ``agent_ids`` name the household rows, drawn
    from the scenario when not given). Sharing moves no energy, so the feeder is checked
    and, where a limit breaks, re-cleared as in the baseline (curtailment and deferral, no
    trade by limit prices); the allocation is then made on the net positions that remain.

    Under ``market.mechanism = "p2p"`` the core negotiates bilateral trades between the
    ``[market.p2p]`` partners by consensus ADMM (:mod:`market.p2p`,
    :func:`scenarios.engine.p2p.p2p_rule`); with ``[market.p2p] dso`` the DSO charges
    the trades that break a feeder limit and the households re-negotiate
    (:mod:`scenarios.engine.p2p_dso`). Where the feeder re-clears an interval, the
    network-constrained clearing's trades replace the negotiated ones.
    """

    def __init__(
        self,
        scenario: Scenario,
        n_households: int,
        grid: GridStage | None,
        p2p: bool = True,
        agent_ids: Sequence[str] | None = None,
    ) -> None:
        mk = scenario.market
        self.n = n_households
        self.grid = grid
        self.p2p = p2p
        self.sharing = p2p and mk.is_sharing
        self.fees = GridFees(scenario, grid, timeline(scenario))
        self.dimming = Dimming.of(scenario, n_households) if grid is not None else None
        band = price_band(scenario)
        rule = bilateral = None
        if self.sharing:
            ids = community_households(scenario).agent_id if agent_ids is None else agent_ids
            rule = sharing_rule(scenario, list(ids))
        elif p2p and mk.mechanism == P2P:
            hh = community_households(scenario)
            ids = hh.agent_id if agent_ids is None else agent_ids
            feeder, bus = (grid.feeder, grid.bus) if grid is not None else (None, None)
            bilateral = p2p_rule(scenario, list(ids), hh.pv_kwp, feeder, bus)
        self.dso = FeederDSO.of(scenario, grid, bilateral)
        # McAfee closes a book with an exhausted side at the outside prices
        self.core: ArrayMechanism = (
            array_mechanism(
                mk.mechanism,
                outside_bid_per_kwh=band.low,
                outside_ask_per_kwh=band.high,
                sharing=rule,
                p2p=bilateral,
            )
            if p2p
            else no_market
        )
        self.optimal = mk.mechanism in SINGLE_PRICE or not p2p
        self.interval_hours = scenario.simulation.interval_hours
        self.rng = np.random.default_rng([scenario.simulation.seed, STREAM_CDA])
        self.tariffs = self.fees.base
        self.reliability = Reliability(n_households, mk.reliability_window)
        """The households' rolling reliability window (restored by a restarted market)."""
        self.derate = mk.derate_unreliable and p2p

    def run(
        self,
        plan: Plan,
        flows_of: FlowsOf,
        bg_p: np.ndarray | None = None,
        bg_q: np.ndarray | None = None,
        t: int | None = None,
        conduct: Conduct | None = None,
    ) -> IntervalResult:
        """Clear ``plan`` (interval ``t``: the time-variable grid fee needs it);
        ``flows_of`` turns fills into what the households did (the metered side of the
        bill: generation − demand − battery − ev); the plan's orders, their fills and
        the feeder's instructions are the committed side (:mod:`market.settlement`);
        ``conduct`` (live) the households' estimated readings and rejected messages."""
        n, grid = self.n, self.grid
        tariffs = self.fees.tariffs(t)
        rows = np.arange(len(plan.energy_kwh))
        submitted = plan
        if self.derate:
            ratio = self.reliability.scores.delivery_ratio
            energy = derate(plan.household, plan.is_buy, plan.energy_kwh, ratio)
            submitted = plan.with_orders(rows, energy)
            rows = np.flatnonzero(energy > TINY_KWH)
            plan = submitted.with_orders(rows)
        core = self.core if self.dso is None else self.dso.core(plan, flows_of, bg_p, bg_q)
        cleared = negotiated = clear_plan(plan, core, self.rng, self.optimal)
        match, filled, pairing = cleared.match, cleared.filled_kwh, cleared.pairing
        price, volume = match.price_per_kwh, match.volume_kwh
        order_filled = np.zeros(len(submitted.energy_kwh))
        order_filled[rows] = filled
        deferred: np.ndarray | None = None
        flows = flows_of(plan, filled, None)
        generation = plan.generation_kwh
        curtailed = np.zeros(n)
        net = flows.net_kwh(generation, plan.demand_kwh)
        outcome = None
        before = 0
        dim = None
        if grid is not None:
            assert bg_p is not None and bg_q is not None
            if self.dimming is not None:
                dim = self.dimming.dim(grid, plan, filled, net, bg_p, bg_q)
            if dim is not None:
                # §14a: dimmed before anything else; the market clears the dimmed plan
                plan, rows = dim.plan, rows[dim.rows]
                if self.dso is not None:
                    core = self.dso.core(plan, flows_of, bg_p, bg_q)
                cleared = negotiated = clear_plan(plan, core, self.rng, self.optimal)
                match, filled, pairing = cleared.match, cleared.filled_kwh, cleared.pairing
                price, volume = match.price_per_kwh, match.volume_kwh
                order_filled = np.zeros(len(submitted.energy_kwh))
                order_filled[rows] = filled
                flows = flows_of(plan, filled, None)
                net = flows.net_kwh(generation, plan.demand_kwh)
            outcome = grid.check(
                plan, net, bg_p, bg_q, tariffs, filled, self.p2p and not self.sharing
            )
            before = outcome.violations_before_reclear if dim is None else dim.violations
            if outcome.dropped_orders is not None:
                # the limit cannot be restored: clear again without those orders and
                # with the buyers' deferred EV charging taken off their orders
                kept_rows = rows[np.flatnonzero(~outcome.dropped_orders)]
                subset = plan.with_orders(~outcome.dropped_orders)
                kept, keep = GridStage.shrink_buy_orders(subset, outcome.ev_deferred_kwh)
                kept_rows = kept_rows[keep]
                cleared = clear_plan(kept, self.core, self.rng, self.optimal)
                match, pairing = cleared.match, cleared.pairing
                deferred = outcome.ev_deferred_kwh
                plan = kept.postpone(deferred)
                filled = cleared.filled_kwh
                order_filled = np.zeros(len(submitted.energy_kwh))
                order_filled[kept_rows] = filled
                flows = flows_of(plan, filled, None)
                net = flows.net_kwh(generation, plan.demand_kwh)
                outcome = grid.recheck(outcome, net, plan.demand_kwh, bg_p, bg_q)
                price, volume = match.price_per_kwh, match.volume_kwh
            elif outcome.recleared:
                deferred = outcome.ev_deferred_kwh
                order_filled = np.zeros(len(submitted.energy_kwh))
                order_filled[rows] = outcome.filled_kwh
                pairing = outcome.pairing
                # fills that no counterparty's limit accepts are not traded (pair_fills)
                bought, sold = pairing.traded_kwh(n)
                flows = replace(
                    flows_of(plan, outcome.filled_kwh, deferred), bought_kwh=bought, sold_kwh=sold
                )
                curtailed = outcome.curtailed_kwh
                generation = generation - curtailed
                net = flows.net_kwh(generation, plan.demand_kwh)
                outcome = grid.recheck(outcome, net, plan.demand_kwh, bg_p, bg_q)
                if self.sharing:  # the allocation of the net positions the feeder left
                    pairing = share_net(self.core, self.rng, net)
                    bought, sold = pairing.traded_kwh(n)
                    flows = replace(flows, bought_kwh=bought, sold_kwh=sold)
                volume = float(pairing.energy_kwh.sum())
                price = (
                    float(np.average(pairing.price_per_kwh, weights=pairing.energy_kwh))
                    if volume > 0
                    else float("nan")
                )
        paid, received = trade_payments(
            n,
            pairing.buyer,
            pairing.seller,
            pairing.energy_kwh,
            pairing.price_per_kwh,
            pairing.seller_price_per_kwh,
        )
        trade_fee = self.fees.per_trade(pairing, tariffs)
        committed = committed_net_kwh(
            n,
            submitted.household,
            submitted.is_buy,
            submitted.kind != KIND_NET,
            submitted.energy_kwh,
            order_filled,
        )
        # the feeder's instructions: curtailed PV not injected, postponed EV charging and
        # dimmed own charging not drawn
        committed = committed - curtailed + (0.0 if deferred is None else deferred)
        committed = committed + (0.0 if dim is None else dim.own_cut_kwh)
        bill = settle(
            net,
            committed,
            flows.bought_kwh,
            flows.sold_kwh,
            paid,
            received,
            tariffs,
            np.bincount(pairing.buyer, trade_fee, n),
        )
        scores = self.reliability.update(net, committed, conduct)
        return IntervalResult(
            plan=plan,
            cleared=cleared,
            match=match,
            pairing=pairing,
            price_per_kwh=price,
            volume_kwh=volume,
            order_filled_kwh=order_filled,
            ev_deferred_kwh=deferred,
            flows=flows,
            generation_kwh=generation,
            curtailed_kwh=curtailed,
            net_kwh=net,
            outcome=outcome,
            trade_fee=trade_fee,
            bill=bill,
            committed_net_kwh=committed,
            interval_hours=self.interval_hours,
            violations_before_reclear=before,
            dimmed_kwh=None if dim is None else dim.dimmed_kwh,
            ev_shortfall_kwh=None if dim is None else dim.ev_shortfall_kwh,
            reliability=scores,
            dso=NO_DSO
            if self.dso is None
            else self.dso.report(negotiated, pairing, outcome, before),
        )
