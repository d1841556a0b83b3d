"""The interval engine: one scenario, interval by interval, results streamed to disk.

Per interval (DESIGN.md "One interval"), for all households at once:
observe (profiles) → plan (net own PV, load and storage; orders) → clear → settle →
apply (states of charge) → record. A no-P2P baseline community (same households,
self-consumption only, everything with the utility) runs alongside so that savings
can be reported. The loop over intervals is Python; everything inside it is arrays.

Market. The mechanism ``market.mechanism`` clears each interval through its array core
(:data:`market.mechanisms.ARRAY_MECHANISMS`); the continuous double auction draws its
arrival order from one generator seeded by ``(simulation.seed, STREAM_CDA)``. Each
trade carries the price its buyer pays and the price its seller receives; the
difference (pay-as-bid, McAfee after a trade reduction) is the market operator's
``market_surplus``. Per interval the engine also records the quality of the
mechanism's clearing of the book, before any network re-clearing: ``welfare`` at the
declared limit prices and ``optimal_welfare``, the LP welfare optimum of the same book
(the uniform auction's welfare, :mod:`market.quality`). Intervals re-cleared with the
feeder keep the re-clearing's pricing (``grid_stage.pair_fills``: one price per trade
for buyer and seller, whatever the mechanism), so their market surplus is 0.

Grid fees (``market.grid_fee_model``): ``flat`` charges ``grid_fee_per_kwh`` per kWh;
``distance`` charges by the electrical distance between the buyer's and the seller's
bus (:mod:`market.fees`). Each trade's fee is written to trades.parquet (``grid_fee``)
and billed to its buyer. Bids are capped at retail minus the largest fee a kWh can
carry, so that no buyer pays more than the utility would charge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from agents.community import Community, Flows, Plan
from agents.ev import EvSchedule, draw_ev_schedule
from agents.households import Households, HouseholdSpec, sample_households
from agents.profiles import ProfileSource, Site
from agents.strategy import PriceAwareStorage, PriceBand, draw_limit_prices
from grid import electrical_distance_pu
from market.fees import distance_fee_per_kwh
from market.mechanisms import ARRAY_MECHANISMS, SINGLE_PRICE, ArrayMechanism
from market.quality import welfare
from market.settlement import Tariffs, settle, settle_with_utility, trade_payments
from market.uniform import Matching, clear_uniform
from scenarios.grid_stage import GridOutcome, GridStage, Pairing
from scenarios.results import AGENT_VALUE_COLUMNS, AgentsWriter, TradesWriter
from scenarios.schema import Scenario

BLOCK_DAYS = 7
"""Days of intervals simulated and written per block (bounds memory)."""

STREAM_CDA = 303
"""Random stream of the continuous double auction's arrival order."""

ProgressCallback = Callable[[int, int], None]


@dataclass
class Showcase:
    """The order book of the interval with the largest P2P volume (for the report)."""

    t: int = -1
    volume_kwh: float = -1.0
    buy_kwh: np.ndarray = field(default_factory=lambda: np.empty(0))
    buy_price_per_kwh: np.ndarray = field(default_factory=lambda: np.empty(0))
    sell_kwh: np.ndarray = field(default_factory=lambda: np.empty(0))
    sell_price_per_kwh: np.ndarray = field(default_factory=lambda: np.empty(0))
    price_per_kwh: float = float("nan")


@dataclass
class EngineOutput:
    """What the engine hands to the KPI and report stage (files are already written)."""

    intervals: pd.DataFrame
    households: pd.DataFrame
    cost_total: np.ndarray
    baseline_cost_total: np.ndarray
    showcase: Showcase
    trade_rows: int


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
        from agents.simbench_profiles import SimbenchProfiles

        return SimbenchProfiles(
            start, sim.days, sim.interval_minutes, site, hh.annual_kwh, hh.pv_kwp,
            sim.seed, grid_code=c.simbench_code,
        )
    from agents.profiles import SyntheticProfiles

    return SyntheticProfiles(
        start, sim.days, sim.interval_minutes, site, hh.annual_kwh, hh.pv_kwp,
        hh.pv_tilt_deg, hh.pv_azimuth_deg, sim.seed,
    )


def timeline(scenario: Scenario) -> pd.DatetimeIndex:
    """Tz-aware timestamps of every interval start (elapsed time from the start)."""
    sim = scenario.simulation
    start = sim.start_timestamp()
    utc = pd.date_range(
        start.tz_convert("UTC"), periods=sim.n_intervals, freq=f"{sim.interval_minutes}min"
    )
    return utc.tz_convert(sim.timezone)


@dataclass(frozen=True, slots=True)
class Cleared:
    """One interval's clearing: the matching, fills per order, trades and quality."""

    match: Matching
    filled_kwh: np.ndarray
    pairing: Pairing
    welfare: float
    optimal_welfare: float


def _clear(
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
    match = core(bq, bp, sq, sp, rng)
    filled = np.zeros(len(plan.energy_kwh))
    filled[buy] = match.buy_filled_kwh
    filled[sell] = match.sell_filled_kwh
    pairing = Pairing(
        buyer=plan.household[buy][match.trade_buy],
        seller=plan.household[sell][match.trade_sell],
        energy_kwh=match.trade_kwh,
        price_per_kwh=match.buyer_price_per_kwh,
        seller_price_per_kwh=match.seller_price_per_kwh,
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
                electrical_distance_pu(grid.feeder), grid.feeder.household_buses,
                mk.grid_fee_per_kwh, mk.grid_fee_distance_per_kwh,
            )
            self.household_bus = grid.bus

    def per_trade(self, pairing: Pairing) -> np.ndarray:
        """Fee of each trade [currency], paid by its buyer."""
        if self.by_bus is None or self.household_bus is None:
            return self.flat_per_kwh * pairing.energy_kwh
        rate = self.by_bus[self.household_bus[pairing.buyer], self.household_bus[pairing.seller]]
        return rate * pairing.energy_kwh


INTERVAL_SERIES = (
    "clearing_price_per_kwh", "seller_price_per_kwh", "p2p_kwh", "grid_import_kwh",
    "grid_export_kwh", "generation_kwh", "demand_kwh", "battery_kwh", "ev_kwh",
    "battery_soc_kwh", "ev_soc_kwh", "cost", "baseline_cost", "grid_fees", "market_surplus",
    "welfare", "optimal_welfare", "curtailed_kwh",
)
GRID_SERIES = (
    "losses_kwh", "v_min_pu", "v_max_pu", "max_line_loading_frac", "violations",
    "violations_before_reclear", "violations_background", "recleared", "solved_with_pyomo",
)
AC_SERIES = ("ac_v_min_pu", "ac_v_max_pu", "ac_max_v_error_pu")


def simulate(
    scenario: Scenario,
    out_dir: Path,
    progress: ProgressCallback | None = None,
) -> EngineOutput:
    """Run the interval loop, streaming agents, trades and grid tables to ``out_dir``."""
    sim, mk = scenario.simulation, scenario.market
    seed, ipd, dt_h = sim.seed, sim.intervals_per_day, sim.interval_hours
    n_t = sim.n_intervals
    stamps = timeline(scenario)

    hh = sample_households(household_spec(scenario), seed)
    n = hh.n
    grid = GridStage(scenario, n, out_dir) if scenario.grid.check != "off" else None
    profiles = make_profiles(scenario, hh)
    schedule: EvSchedule = draw_ev_schedule(
        hh, stamps[::ipd].dayofweek.to_numpy(), ipd, dt_h, seed
    )
    band = PriceBand(mk.feed_in_price_per_kwh, mk.retail_price_per_kwh, mk.max_grid_fee_per_kwh)
    tariffs = Tariffs(mk.retail_price_per_kwh, mk.feed_in_price_per_kwh, mk.grid_fee_per_kwh)
    storage = None
    if scenario.community.storage_strategy == "price_aware":
        storage = PriceAwareStorage(band, ipd, scenario.community.battery_round_trip_efficiency)
    community = Community(hh, dt_h, storage)
    baseline = Community(hh, dt_h, None)

    fees = GridFees(scenario, grid)
    core = ARRAY_MECHANISMS[mk.mechanism]
    optimal = mk.mechanism in SINGLE_PRICE
    market_rng = np.random.default_rng([seed, STREAM_CDA])

    buses = None if grid is None else grid.bus_labels[grid.bus]
    agents_out = AgentsWriter(out_dir, hh.agent_id, buses=buses)
    trades_out = TradesWriter(out_dir, hh.agent_id)
    names = INTERVAL_SERIES + (GRID_SERIES if grid else ()) + (
        AC_SERIES if grid and grid.ac else ())
    rows = {name: np.full(n_t, np.nan) for name in names}
    cost_total = np.zeros(n)
    baseline_total = np.zeros(n)
    showcase = Showcase()
    local_hours = (stamps.hour + stamps.minute / 60.0).to_numpy()

    try:
        for first_day in range(0, sim.days, BLOCK_DAYS):
            n_days = min(BLOCK_DAYS, sim.days - first_day)
            t0 = first_day * ipd
            n_block = n_days * ipd
            window = profiles.window(first_day, n_days)
            evw = schedule.window(first_day, n_days)
            bids, asks = draw_limit_prices(
                scenario.community.strategy, band, window.demand_kwh.shape, seed, first_day
            )
            if grid is not None:
                bg_p, bg_q = grid.background(local_hours[t0 : t0 + n_block])
                rows["violations_background"][t0 : t0 + n_block] = (
                    grid.background_violations(bg_p, bg_q))
            block = {name: np.empty((n_block, n)) for name in AGENT_VALUE_COLUMNS}
            trade_parts: list[tuple[np.ndarray, ...]] = []
            outcomes: list[GridOutcome] = []
            for i in range(n_block):
                t = t0 + i
                slot = t % ipd
                if storage is not None and slot == 0:
                    storage.new_day()
                observed = (
                    slot, window.generation_kwh[i], window.demand_kwh[i], bids[i], asks[i],
                    evw.present[i], evw.drive_kwh[i], evw.intervals_to_departure[i],
                )
                plan = community.plan(*observed)
                cleared = _clear(plan, core, market_rng, optimal)
                match, filled, pairing = cleared.match, cleared.filled_kwh, cleared.pairing
                price, volume = match.price_per_kwh, match.volume_kwh
                flows = community.outcome(plan, filled)
                generation = plan.generation_kwh
                curtailed = np.zeros(n)
                net = generation - plan.demand_kwh - flows.battery_kwh - flows.ev_kwh
                if grid is not None:
                    outcome = grid.check(plan, net, bg_p[i], bg_q[i], tariffs, filled)
                    rows["violations_before_reclear"][t] = outcome.check.violations
                    if outcome.dropped_orders is not None:
                        # the limit cannot be restored: clear again without those orders
                        # and with the buyers' deferred EV charging taken off their orders
                        kept = GridStage.shrink_buy_orders(
                            _orders_subset(plan, ~outcome.dropped_orders),
                            outcome.ev_deferred_kwh,
                        )
                        cleared = _clear(kept, core, market_rng, optimal)
                        match, pairing = cleared.match, cleared.pairing
                        plan = replace(kept, ev_self_kwh=kept.ev_self_kwh
                                       - outcome.ev_deferred_kwh)
                        filled = cleared.filled_kwh
                        flows = community.outcome(plan, filled)
                        net = generation - plan.demand_kwh - flows.battery_kwh - flows.ev_kwh
                        outcome = grid.recheck(outcome, net, plan.demand_kwh, bg_p[i], bg_q[i])
                        price, volume = match.price_per_kwh, match.volume_kwh
                    elif outcome.recleared:
                        flows = community.outcome(plan, outcome.filled_kwh,
                                                  outcome.ev_deferred_kwh)
                        curtailed = outcome.curtailed_kwh
                        generation = generation - curtailed
                        net = generation - plan.demand_kwh - flows.battery_kwh - flows.ev_kwh
                        outcome = grid.recheck(outcome, net, plan.demand_kwh, bg_p[i], bg_q[i])
                        pairing = outcome.pairing
                        volume = float(pairing.energy_kwh.sum())
                        price = (
                            float(np.average(pairing.price_per_kwh, weights=pairing.energy_kwh))
                            if volume > 0 else float("nan")
                        )
                    _record_grid(rows, t, outcome, dt_h)
                    if grid.ac is not None:
                        (rows["ac_v_min_pu"][t], rows["ac_v_max_pu"][t],
                         rows["ac_max_v_error_pu"][t]) = grid.ac_check(outcome)
                    outcomes.append(outcome)
                community.commit(flows)
                if storage is not None:
                    storage.observe(slot, price)

                paid, received = trade_payments(
                    n, pairing.buyer, pairing.seller, pairing.energy_kwh,
                    pairing.price_per_kwh, pairing.seller_price_per_kwh,
                )
                trade_fee = fees.per_trade(pairing)
                bill = settle(net, flows.bought_kwh, flows.sold_kwh, paid, received, tariffs,
                              np.bincount(pairing.buyer, trade_fee, n))

                base_plan = baseline.plan(*observed)
                base_flows = baseline.apply(base_plan, np.zeros(len(base_plan.energy_kwh)))
                base_net = (
                    base_plan.generation_kwh - base_plan.demand_kwh
                    - base_flows.battery_kwh - base_flows.ev_kwh
                )
                base_cost = settle_with_utility(base_net, tariffs)

                _record_agents(block, i, generation, plan.demand_kwh, curtailed, flows,
                               bill.grid_import_kwh, bill.grid_export_kwh, bill.cost, base_cost)
                rows["clearing_price_per_kwh"][t] = price
                rows["p2p_kwh"][t] = volume
                rows["grid_import_kwh"][t] = bill.grid_import_kwh.sum()
                rows["grid_export_kwh"][t] = bill.grid_export_kwh.sum()
                rows["cost"][t] = bill.cost.sum()
                rows["baseline_cost"][t] = base_cost.sum()
                rows["grid_fees"][t] = bill.fees.sum()
                rows["market_surplus"][t] = pairing.energy_kwh @ (
                    pairing.price_per_kwh - pairing.seller_price_per_kwh)
                rows["seller_price_per_kwh"][t] = (
                    pairing.energy_kwh @ pairing.seller_price_per_kwh / volume
                    if volume > 0 else np.nan
                )
                rows["welfare"][t] = cleared.welfare
                rows["optimal_welfare"][t] = cleared.optimal_welfare
                cost_total += bill.cost
                baseline_total += base_cost
                if len(pairing.energy_kwh):
                    trade_parts.append((
                        np.full(len(pairing.buyer), t), pairing.buyer, pairing.seller,
                        pairing.energy_kwh, pairing.price_per_kwh, pairing.seller_price_per_kwh,
                        trade_fee,
                    ))
                if match.volume_kwh > showcase.volume_kwh:
                    buy = plan.is_buy
                    showcase = Showcase(
                        t, match.volume_kwh, plan.energy_kwh[buy], plan.price_per_kwh[buy],
                        plan.energy_kwh[~buy], plan.price_per_kwh[~buy], match.price_per_kwh,
                    )
            agents_out.write_block(t0, block)
            _write_trades(trades_out, trade_parts)
            if grid is not None:
                grid.write_block(t0, outcomes)
            sl = slice(t0, t0 + n_block)
            for name, col in (
                ("generation_kwh", "generation_kwh"), ("demand_kwh", "demand_kwh"),
                ("battery_kwh", "battery_kwh"), ("ev_kwh", "ev_kwh"),
                ("battery_soc_kwh", "soc_kwh"), ("ev_soc_kwh", "ev_soc_kwh"),
                ("curtailed_kwh", "curtailed_kwh"),
            ):
                rows[name][sl] = block[col].sum(axis=1)
            if progress is not None:
                progress(t0 + n_block, n_t)
    finally:
        agents_out.close()
        trades_out.close()
        if grid is not None:
            grid.close()

    intervals = pd.DataFrame({"t": np.arange(n_t, dtype=np.int32), "timestamp": stamps})
    for name, values in rows.items():
        intervals[name] = values
    for name in ("violations", "violations_before_reclear", "violations_background"):
        if name in intervals:
            intervals[name] = intervals[name].astype("int64")
    for name in ("recleared", "solved_with_pyomo"):
        if name in intervals:
            intervals[name] = intervals[name].astype(bool)
    return EngineOutput(
        intervals=intervals,
        households=_households_frame(hh, buses),
        cost_total=cost_total,
        baseline_cost_total=baseline_total,
        showcase=showcase,
        trade_rows=trades_out.rows,
    )


def _orders_subset(plan: Plan, keep: np.ndarray) -> Plan:
    """The plan with only the orders in ``keep``."""
    return replace(
        plan,
        household=plan.household[keep],
        is_buy=plan.is_buy[keep],
        energy_kwh=plan.energy_kwh[keep],
        price_per_kwh=plan.price_per_kwh[keep],
        kind=plan.kind[keep],
    )


def _households_frame(hh: Households, buses: np.ndarray | None) -> pd.DataFrame:
    frame = hh.to_frame().reset_index()
    frame.insert(1, "bus", buses if buses is not None else None)
    return frame


def _record_grid(rows: dict[str, np.ndarray], t: int, outcome: GridOutcome, dt_h: float) -> None:
    chk = outcome.check
    rows["losses_kwh"][t] = chk.losses_kw * dt_h
    rows["v_min_pu"][t] = chk.v_min_pu
    rows["v_max_pu"][t] = chk.v_max_pu
    rows["max_line_loading_frac"][t] = chk.max_line_loading_frac
    rows["violations"][t] = chk.violations
    rows["recleared"][t] = outcome.recleared
    rows["solved_with_pyomo"][t] = chk.solved_with == "pyomo"


def _record_agents(
    block: dict[str, np.ndarray],
    i: int,
    generation_kwh: np.ndarray,
    demand_kwh: np.ndarray,
    curtailed_kwh: np.ndarray,
    flows: Flows,
    grid_import: np.ndarray,
    grid_export: np.ndarray,
    cost: np.ndarray,
    baseline_cost: np.ndarray,
) -> None:
    block["generation_kwh"][i] = generation_kwh
    block["demand_kwh"][i] = demand_kwh
    block["curtailed_kwh"][i] = curtailed_kwh
    block["battery_kwh"][i] = flows.battery_kwh
    block["ev_kwh"][i] = flows.ev_kwh
    block["soc_kwh"][i] = flows.battery_soc_kwh
    block["ev_soc_kwh"][i] = flows.ev_soc_kwh
    block["bought_p2p_kwh"][i] = flows.bought_kwh
    block["sold_p2p_kwh"][i] = flows.sold_kwh
    block["grid_import_kwh"][i] = grid_import
    block["grid_export_kwh"][i] = grid_export
    block["cost"][i] = cost
    block["baseline_cost"][i] = baseline_cost


def _write_trades(writer: TradesWriter, parts: list[tuple[np.ndarray, ...]]) -> None:
    if not parts:
        return
    t, buyer, seller, energy, price, seller_price, fee = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    writer.write_block(t, buyer, seller, energy, price, seller_price, fee)
