"""What the batch engine and the live market share: the community's inputs and the
per-interval market step (clear → grid check / re-clear → settle).

:class:`CommunityInputs` draws the households, their profiles, EV trips and limit
prices from the scenario's seed, in blocks of :data:`BLOCK_DAYS` days (the same draws
whoever asks: the batch engine, the live agents or the meter emulator). Meter-backed
households (``[live] meters``) have no devices of their own and see their grid
connection (:func:`agents.meters.connection.as_metered`); price takers bid ``retail − fee`` and ask
``feed_in``.

:class:`MarketStep` clears one interval's plan. The batch engine passes the community's
own :meth:`agents.households.community.Community.outcome` for the physics; the live market, which
knows only what the agents sent, passes its book-keeping equivalent. Either way the
orders are cleared, checked on the feeder, re-cleared if needed and settled by this one
piece of code: on what the households metered, against what their orders (and the
feeder's instructions) committed them to (:mod:`market.settlement`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from agents.devices.ev_trips import EvSchedule, EvWindow, draw_ev_schedule
from agents.households.community import KIND_NET, Flows, Plan
from agents.households.table import Households, HouseholdSpec, sample_households
from agents.meters.connection import as_metered, without_devices
from agents.profiles.source import ProfileSource, Site
from agents.strategies.bidding import PriceBand, draw_limit_prices
from grid import electrical_distance_pu
from grid.pairing import Pairing
from market.fees import distance_fee_per_kwh
from market.mechanisms import SINGLE_PRICE, ArrayMechanism, array_mechanism
from market.quality import welfare
from market.settlement import Bill, Tariffs, committed_net_kwh, settle, trade_payments
from market.uniform import Matching, clear_uniform, make_matching
from scenarios.config.preflight import require_profiles
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridOutcome, GridStage

BLOCK_DAYS = 7
"""Days of intervals simulated and written per block (bounds memory)."""

STREAM_CDA = 303
"""Random stream of the continuous double auction's arrival order."""

FlowsOf = Callable[[Plan, np.ndarray, "np.ndarray | None"], Flows]
"""``(plan, filled_kwh per order, ev_deferred_kwh or None) -> Flows``."""


def household_spec(scenario: Scenario) -> HouseholdSpec:
    """The ``[community]`` keys that shape the household table."""
    c = scenario.community
    names = HouseholdSpec.__dataclass_fields__
    return HouseholdSpec(**{k: v for k, v in c.model_dump().items() if k in names})


def make_profiles(scenario: Scenario, hh: Households) -> ProfileSource:
    """The profile source the scenario asks for."""
    sim, c = scenario.simulation, scenario.community
    site = Site(c.latitude, c.longitude, c.altitude_m, sim.timezone)
    start = sim.start_timestamp()
    if c.profiles == "simbench":
        from agents.profiles.simbench import SimbenchProfiles

        require_profiles(scenario)

        return SimbenchProfiles(
            start,
            sim.days,
            sim.interval_minutes,
            site,
            hh.annual_kwh,
            hh.pv_kwp,
            sim.seed,
            grid_code=c.simbench_code,
        )
    from agents.profiles.source import SyntheticProfiles

    return SyntheticProfiles(
        start,
        sim.days,
        sim.interval_minutes,
        site,
        hh.annual_kwh,
        hh.pv_kwp,
        hh.pv_tilt_deg,
        hh.pv_azimuth_deg,
        sim.seed,
    )


def timeline(scenario: Scenario) -> pd.DatetimeIndex:
    """Tz-aware timestamps of every interval start (elapsed time from the start)."""
    sim = scenario.simulation
    start = sim.start_timestamp()
    utc = pd.date_range(
        start.tz_convert("UTC"), periods=sim.n_intervals, freq=f"{sim.interval_minutes}min"
    )
    return utc.tz_convert(sim.timezone)


def price_band(scenario: Scenario) -> PriceBand:
    mk = scenario.market
    return PriceBand(mk.feed_in_price_per_kwh, mk.retail_price_per_kwh, mk.max_grid_fee_per_kwh)


@dataclass(frozen=True)
class Block:
    """A block of whole days of inputs, arrays of shape (intervals, households)."""

    first_day: int
    t0: int
    generation_kwh: np.ndarray
    demand_kwh: np.ndarray
    bids: np.ndarray
    asks: np.ndarray
    ev: EvWindow

    @property
    def n(self) -> int:
        return len(self.generation_kwh)

    def observed(self, t: int, intervals_per_day: int) -> tuple:
        """The arguments of :meth:`agents.households.community.Community.plan` for ``t``."""
        i = t - self.t0
        ev = self.ev
        return (
            t % intervals_per_day,
            self.generation_kwh[i],
            self.demand_kwh[i],
            self.bids[i],
            self.asks[i],
            ev.present[i],
            ev.drive_kwh[i],
            ev.intervals_to_departure[i],
        )


def community_households(scenario: Scenario) -> Households:
    """The scenario's households as sampled from its seed; a household behind a smart
    meter (``[[live.meters]]``) keeps no simulated devices (the meter measures them)."""
    hh = sample_households(household_spec(scenario), scenario.simulation.seed)
    metered = np.isin(hh.agent_id, [m.household for m in scenario.live.meters])
    return without_devices(hh, metered) if metered.any() else hh


class CommunityInputs:
    """The scenario's households and everything they observe, drawn from its seed."""

    def __init__(self, scenario: Scenario) -> None:
        sim = scenario.simulation
        self.scenario = scenario
        self.stamps = timeline(scenario)
        self.band = price_band(scenario)
        hh = community_households(scenario)
        ids = list(hh.agent_id)
        meters = scenario.live.meters
        self.meter_rows = np.array([ids.index(m.household) for m in meters], dtype=np.int64)
        self.price_takers = np.array(
            [ids.index(m.household) for m in meters if m.strategy == "price_taker"], dtype=np.int64
        )
        self.metered = np.zeros(hh.n, dtype=bool)
        self.metered[self.meter_rows] = True
        self.hh = hh
        self.profiles = make_profiles(scenario, hh)
        self.schedule: EvSchedule = draw_ev_schedule(
            hh,
            self.stamps[:: sim.intervals_per_day].dayofweek.to_numpy(),
            sim.intervals_per_day,
            sim.interval_hours,
            sim.seed,
        )
        self._block: Block | None = None

    def block(self, first_day: int, n_days: int) -> Block:
        """Inputs of days ``first_day … first_day + n_days − 1``."""
        sc = self.scenario
        ipd = sc.simulation.intervals_per_day
        window = self.profiles.window(first_day, n_days)
        gen, demand = window.generation_kwh, window.demand_kwh
        bids, asks = draw_limit_prices(
            sc.community.strategy, self.band, demand.shape, sc.simulation.seed, first_day
        )
        for m in sc.live.meters:
            if m.strategy != "price_taker" and m.strategy != sc.community.strategy:
                col = self.hh.agent_id.tolist().index(m.household)
                own_bid, own_ask = draw_limit_prices(
                    m.strategy, self.band, demand.shape, sc.simulation.seed, first_day
                )
                bids[:, col], asks[:, col] = own_bid[:, col], own_ask[:, col]
        if self.metered.any():
            rows = self.meter_rows
            gen, demand = gen.copy(), demand.copy()
            gen[:, rows], demand[:, rows] = as_metered(gen[:, rows], demand[:, rows])
            bids[:, self.price_takers] = self.band.high
            asks[:, self.price_takers] = self.band.low
        return Block(
            first_day,
            first_day * ipd,
            gen,
            demand,
            bids,
            asks,
            self.schedule.window(first_day, n_days),
        )

    def at(self, t: int) -> Block:
        """The block holding interval ``t`` (cached: live callers walk forward)."""
        sim = self.scenario.simulation
        blk = self._block
        if blk is None or not (blk.t0 <= t < blk.t0 + blk.n):
            first_day = (t // sim.intervals_per_day) // BLOCK_DAYS * BLOCK_DAYS
            blk = self.block(first_day, min(BLOCK_DAYS, sim.days - first_day))
            self._block = blk
        return blk


@dataclass(frozen=True, slots=True)
class Cleared:
    """One interval's clearing: the matching, fills per order, trades and quality."""

    match: Matching
    filled_kwh: np.ndarray
    pairing: Pairing
    welfare: float
    optimal_welfare: float


def clear_plan(
    plan: Plan, core: ArrayMechanism, rng: np.random.Generator, optimal: bool
) -> Cleared:
    """Clear the plan's orders with the mechanism's array core.

    ``optimal`` says that the mechanism's matching is the welfare optimum (uniform), so
    the optimum need not be computed again.
    """
    buy = np.flatnonzero(plan.is_buy)
    sell = np.flatnonzero(~plan.is_buy)
    bq, bp = plan.energy_kwh[buy], plan.price_per_kwh[buy]
    sq, sp = plan.energy_kwh[sell], plan.price_per_kwh[sell]
    owners = plan.household[buy], plan.household[sell]
    match = core(bq, bp, sq, sp, rng, buy_owner=owners[0], sell_owner=owners[1])
    filled = np.zeros(len(plan.energy_kwh))
    filled[buy] = match.buy_filled_kwh
    filled[sell] = match.sell_filled_kwh
    pairing = Pairing(
        buyer=owners[0][match.trade_buy],
        seller=owners[1][match.trade_sell],
        energy_kwh=match.trade_kwh,
        price_per_kwh=match.buyer_price_per_kwh,
        seller_price_per_kwh=match.seller_price_per_kwh,
        buy_kind=plan.kind[buy][match.trade_buy],
        sell_kind=plan.kind[sell][match.trade_sell],
    )
    got = welfare(bp, sp, match)
    best = got if optimal else welfare(bp, sp, clear_uniform(bq, bp, sq, sp))
    return Cleared(match, filled, pairing, got, best)


class GridFees:
    """Grid fee per P2P trade [currency], flat or by electrical distance."""

    def __init__(self, scenario: Scenario, grid: GridStage | None) -> None:
        mk = scenario.market
        self.flat_per_kwh = mk.grid_fee_per_kwh
        self.by_bus: np.ndarray | None = None
        self.household_bus: np.ndarray | None = None
        if mk.grid_fee_model == "distance":
            if grid is None:  # the schema forbids it; keep the message if called directly
                raise ValueError("market.grid_fee_model = 'distance' needs grid.check != 'off'")
            self.by_bus = distance_fee_per_kwh(
                electrical_distance_pu(grid.feeder),
                grid.feeder.household_buses,
                mk.grid_fee_per_kwh,
                mk.grid_fee_distance_per_kwh,
            )
            self.household_bus = grid.bus

    def per_trade(self, pairing: Pairing) -> np.ndarray:
        """Fee of each trade [currency], paid by its buyer."""
        if self.by_bus is None or self.household_bus is None:
            return self.flat_per_kwh * pairing.energy_kwh
        rate = self.by_bus[self.household_bus[pairing.buyer], self.household_bus[pairing.seller]]
        return rate * pairing.energy_kwh


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

    def value(self, source: str) -> Any:
        """The value a schema column's ``source`` names: an attribute path
        (``bill.cost``), summed over the households with a ``sum:`` prefix."""
        path, total = _source(source)
        value = path(self)
        return value.sum() if total else value


@functools.cache
def _source(source: str) -> tuple[Callable[[IntervalResult], Any], bool]:
    return operator.attrgetter(source.removeprefix("sum:")), source.startswith("sum:")


def no_market(
    buy_kwh: np.ndarray,
    buy_price: np.ndarray,
    sell_kwh: np.ndarray,
    sell_price: np.ndarray,
    rng: np.random.Generator | None,
    **owners: np.ndarray | None,
) -> Matching:
    """The array core of the no-P2P baseline: nothing is matched."""
    none_i, none_f = np.zeros(0, np.int64), np.zeros(0)
    return make_matching(len(buy_kwh), len(sell_kwh), none_i, none_i, none_f, none_f, none_f)


class MarketStep:
    """Clear → grid check (re-clear) → settle, for one interval at a time.

    With ``p2p=False`` it is the no-P2P baseline's step: no order is matched, neither by
    the mechanism nor by the feeder's re-clearing, so the utility is the only
    counterparty, while the feeder check, curtailment and EV deferral are the same code.
    """

    def __init__(
        self, scenario: Scenario, n_households: int, grid: GridStage | None, p2p: bool = True
    ) -> None:
        mk = scenario.market
        self.n = n_households
        self.grid = grid
        self.p2p = p2p
        self.fees = GridFees(scenario, grid)
        band = price_band(scenario)
        # McAfee closes a book with an exhausted side at the outside prices
        self.core: ArrayMechanism = (
            array_mechanism(
                mk.mechanism, outside_bid_per_kwh=band.low, outside_ask_per_kwh=band.high
            )
            if p2p
            else no_market
        )
        self.optimal = mk.mechanism in SINGLE_PRICE or not p2p
        self.interval_hours = scenario.simulation.interval_hours
        self.rng = np.random.default_rng([scenario.simulation.seed, STREAM_CDA])
        self.tariffs = Tariffs(
            mk.retail_price_per_kwh,
            mk.feed_in_price_per_kwh,
            mk.grid_fee_per_kwh,
            mk.imbalance_shortfall_price_per_kwh,
            mk.imbalance_surplus_price_per_kwh,
        )

    def run(
        self,
        plan: Plan,
        flows_of: FlowsOf,
        bg_p: np.ndarray | None = None,
        bg_q: np.ndarray | None = None,
    ) -> IntervalResult:
        """Clear ``plan``; ``flows_of`` turns fills into what the households did (the
        metered side of the bill: generation − demand − battery − ev); the plan's orders,
        their fills and the feeder's instructions are the committed side
        (:mod:`market.settlement`)."""
        n, grid = self.n, self.grid
        submitted = plan
        cleared = clear_plan(plan, self.core, self.rng, self.optimal)
        match, filled, pairing = cleared.match, cleared.filled_kwh, cleared.pairing
        price, volume = match.price_per_kwh, match.volume_kwh
        order_filled = filled
        deferred: np.ndarray | None = None
        flows = flows_of(plan, filled, None)
        generation = plan.generation_kwh
        curtailed = np.zeros(n)
        net = flows.net_kwh(generation, plan.demand_kwh)
        outcome = None
        before = 0
        if grid is not None:
            assert bg_p is not None and bg_q is not None
            outcome = grid.check(plan, net, bg_p, bg_q, self.tariffs, filled, self.p2p)
            before = outcome.violations_before_reclear
            if outcome.dropped_orders is not None:
                # the limit cannot be restored: clear again without those orders and
                # with the buyers' deferred EV charging taken off their orders
                kept_rows = np.flatnonzero(~outcome.dropped_orders)
                subset = plan.with_orders(~outcome.dropped_orders)
                kept, keep = GridStage.shrink_buy_orders(subset, outcome.ev_deferred_kwh)
                kept_rows = kept_rows[keep]
                cleared = clear_plan(kept, self.core, self.rng, self.optimal)
                match, pairing = cleared.match, cleared.pairing
                deferred = outcome.ev_deferred_kwh
                plan = kept.postpone(deferred)
                filled = cleared.filled_kwh
                order_filled = np.zeros(len(order_filled))
                order_filled[kept_rows] = filled
                flows = flows_of(plan, filled, None)
                net = flows.net_kwh(generation, plan.demand_kwh)
                outcome = grid.recheck(outcome, net, plan.demand_kwh, bg_p, bg_q)
                price, volume = match.price_per_kwh, match.volume_kwh
            elif outcome.recleared:
                deferred = outcome.ev_deferred_kwh
                order_filled = outcome.filled_kwh
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
        trade_fee = self.fees.per_trade(pairing)
        committed = committed_net_kwh(
            n,
            submitted.household,
            submitted.is_buy,
            submitted.kind != KIND_NET,
            submitted.energy_kwh,
            order_filled,
        )
        # the feeder's instructions: curtailed PV not injected, postponed EV charging not drawn
        committed = committed - curtailed + (0.0 if deferred is None else deferred)
        bill = settle(
            net,
            committed,
            flows.bought_kwh,
            flows.sold_kwh,
            paid,
            received,
            self.tariffs,
            np.bincount(pairing.buyer, trade_fee, n),
        )
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
        )
