"""The interval engine: one scenario, interval by interval, results streamed to disk.

Per interval (DESIGN.md "One interval"), for all households at once:
observe (profiles) → plan (net own PV, load and storage; orders) → clear → settle →
apply (states of charge) → record. A no-P2P baseline community (same households,
self-consumption only, everything with the utility) runs alongside so that savings
can be reported. The loop over intervals is Python; everything inside it is arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agents.community import Community, Flows, Plan
from agents.ev import EvSchedule, draw_ev_schedule
from agents.households import Households, HouseholdSpec, sample_households
from agents.profiles import ProfileSource, Site
from agents.strategy import PriceAwareStorage, PriceBand, draw_limit_prices
from market.settlement import Tariffs, settle, settle_with_utility, trade_payments
from market.uniform import Matching, clear_uniform
from scenarios.results import AGENT_VALUE_COLUMNS, AgentsWriter, TradesWriter
from scenarios.schema import Scenario

BLOCK_DAYS = 7
"""Days of intervals simulated and written per block (bounds memory)."""

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


def _clear(plan: Plan) -> tuple[Matching, np.ndarray, np.ndarray, np.ndarray]:
    """Clear the plan's orders; fills per order and the buy/sell order positions."""
    buy = np.flatnonzero(plan.is_buy)
    sell = np.flatnonzero(~plan.is_buy)
    match = clear_uniform(
        plan.energy_kwh[buy], plan.price_per_kwh[buy],
        plan.energy_kwh[sell], plan.price_per_kwh[sell],
    )
    filled = np.zeros(len(plan.energy_kwh))
    filled[buy] = match.buy_filled_kwh
    filled[sell] = match.sell_filled_kwh
    return match, filled, buy, sell


def simulate(
    scenario: Scenario,
    out_dir: Path,
    progress: ProgressCallback | None = None,
) -> EngineOutput:
    """Run the interval loop, streaming agents and trades to ``out_dir``."""
    sim, mk = scenario.simulation, scenario.market
    seed, ipd, dt_h = sim.seed, sim.intervals_per_day, sim.interval_hours
    n_t = sim.n_intervals
    stamps = timeline(scenario)

    hh = sample_households(household_spec(scenario), seed)
    n = hh.n
    profiles = make_profiles(scenario, hh)
    day_starts = stamps[::ipd]
    schedule: EvSchedule = draw_ev_schedule(hh, day_starts.dayofweek.to_numpy(), ipd, dt_h, seed)
    band = PriceBand(mk.feed_in_price_per_kwh, mk.retail_price_per_kwh, mk.grid_fee_per_kwh)
    tariffs = Tariffs(mk.retail_price_per_kwh, mk.feed_in_price_per_kwh, mk.grid_fee_per_kwh)
    storage = None
    if scenario.community.storage_strategy == "price_aware":
        storage = PriceAwareStorage(band, ipd, scenario.community.battery_round_trip_efficiency)
    community = Community(hh, dt_h, storage)
    baseline = Community(hh, dt_h, None)

    agents_out = AgentsWriter(out_dir, hh.agent_id, buses=None)
    trades_out = TradesWriter(out_dir, hh.agent_id)
    rows: dict[str, np.ndarray] = {
        name: np.full(n_t, np.nan)
        for name in (
            "clearing_price_per_kwh", "p2p_kwh", "grid_import_kwh", "grid_export_kwh",
            "generation_kwh", "demand_kwh", "battery_kwh", "ev_kwh", "battery_soc_kwh",
            "ev_soc_kwh", "cost", "baseline_cost", "grid_fees",
        )
    }
    cost_total = np.zeros(n)
    baseline_total = np.zeros(n)
    showcase = Showcase()

    try:
        for first_day in range(0, sim.days, BLOCK_DAYS):
            n_days = min(BLOCK_DAYS, sim.days - first_day)
            window = profiles.window(first_day, n_days)
            evw = schedule.window(first_day, n_days)
            bids, asks = draw_limit_prices(
                scenario.community.strategy, band, window.demand_kwh.shape, seed, first_day
            )
            block = {name: np.empty((n_days * ipd, n)) for name in AGENT_VALUE_COLUMNS}
            trade_parts: list[tuple[np.ndarray, ...]] = []
            t0 = first_day * ipd
            for i in range(n_days * ipd):
                t = t0 + i
                slot = t % ipd
                if storage is not None and slot == 0:
                    storage.new_day()
                observed = (
                    slot, window.generation_kwh[i], window.demand_kwh[i], bids[i], asks[i],
                    evw.present[i], evw.drive_kwh[i], evw.intervals_to_departure[i],
                )
                plan = community.plan(*observed)
                match, filled, buy, sell = _clear(plan)
                flows = community.apply(plan, filled)
                price = match.price_per_kwh
                if storage is not None:
                    storage.observe(slot, price)

                buyer = plan.household[buy][match.trade_buy]
                seller = plan.household[sell][match.trade_sell]
                trade_price = np.full(len(match.trade_kwh), price)
                paid, received = trade_payments(
                    n, buyer, seller, match.trade_kwh, trade_price, trade_price
                )
                net = plan.generation_kwh - plan.demand_kwh - flows.battery_kwh - flows.ev_kwh
                bill = settle(net, flows.bought_kwh, flows.sold_kwh, paid, received, tariffs)

                base_plan = baseline.plan(*observed)
                base_flows = baseline.apply(base_plan, np.zeros(len(base_plan.energy_kwh)))
                base_net = (
                    base_plan.generation_kwh - base_plan.demand_kwh
                    - base_flows.battery_kwh - base_flows.ev_kwh
                )
                base_cost = settle_with_utility(base_net, tariffs)

                _record_agents(block, i, plan, flows, bill.grid_import_kwh,
                               bill.grid_export_kwh, bill.cost, base_cost)
                rows["clearing_price_per_kwh"][t] = price
                rows["p2p_kwh"][t] = match.volume_kwh
                rows["grid_import_kwh"][t] = bill.grid_import_kwh.sum()
                rows["grid_export_kwh"][t] = bill.grid_export_kwh.sum()
                rows["cost"][t] = bill.cost.sum()
                rows["baseline_cost"][t] = base_cost.sum()
                rows["grid_fees"][t] = bill.fees.sum()
                cost_total += bill.cost
                baseline_total += base_cost
                if len(match.trade_kwh):
                    trade_parts.append((np.full(len(buyer), t), buyer, seller,
                                        match.trade_kwh, trade_price))
                if match.volume_kwh > showcase.volume_kwh:
                    showcase = Showcase(
                        t, match.volume_kwh, plan.energy_kwh[buy], plan.price_per_kwh[buy],
                        plan.energy_kwh[sell], plan.price_per_kwh[sell], price,
                    )
            agents_out.write_block(t0, block)
            _write_trades(trades_out, trade_parts, mk.grid_fee_per_kwh)
            sl = slice(t0, t0 + n_days * ipd)
            for name, col in (
                ("generation_kwh", "generation_kwh"), ("demand_kwh", "demand_kwh"),
                ("battery_kwh", "battery_kwh"), ("ev_kwh", "ev_kwh"),
                ("battery_soc_kwh", "soc_kwh"), ("ev_soc_kwh", "ev_soc_kwh"),
            ):
                rows[name][sl] = block[col].sum(axis=1)
            if progress is not None:
                progress(t0 + n_days * ipd, n_t)
    finally:
        agents_out.close()
        trades_out.close()

    intervals = pd.DataFrame({"t": np.arange(n_t, dtype=np.int32), "timestamp": stamps})
    for name, values in rows.items():
        intervals[name] = values
    return EngineOutput(
        intervals=intervals,
        households=hh.to_frame().reset_index(),
        cost_total=cost_total,
        baseline_cost_total=baseline_total,
        showcase=showcase,
        trade_rows=trades_out.rows,
    )


def _record_agents(
    block: dict[str, np.ndarray],
    i: int,
    plan: Plan,
    flows: Flows,
    grid_import: np.ndarray,
    grid_export: np.ndarray,
    cost: np.ndarray,
    baseline_cost: np.ndarray,
) -> None:
    block["generation_kwh"][i] = plan.generation_kwh
    block["demand_kwh"][i] = plan.demand_kwh
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


def _write_trades(
    writer: TradesWriter, parts: list[tuple[np.ndarray, ...]], fee_per_kwh: float
) -> None:
    if not parts:
        return
    t, buyer, seller, energy, price = (np.concatenate(c) for c in zip(*parts, strict=True))
    writer.write_block(t, buyer, seller, energy, price, price, fee_per_kwh * energy)
