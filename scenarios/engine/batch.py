"""The interval engine: one scenario, interval by interval, results streamed to disk.

Per interval (DESIGN.md "One interval"), for all households at once:
observe (profiles) → plan (net own PV, load and storage; orders) → clear → settle →
apply (states of charge) → record. A no-P2P baseline community (same households,
self-consumption only, the utility as the only counterparty, the same feeder check,
curtailment and EV deferral: :mod:`scenarios.engine.baseline`) runs alongside so that savings
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
feeder keep the re-clearing's pricing (``grid.pairing.pair_fills``: one price per trade
for buyer and seller, whatever the mechanism), so their market surplus is 0.

Grid fees (``market.grid_fee_model``): ``flat`` charges ``grid_fee_per_kwh`` per kWh;
``distance`` charges by the electrical distance between the buyer's and the seller's
bus (:mod:`market.fees`). Each trade's fee is written to trades.parquet (``grid_fee``)
and billed to its buyer. Bids are capped at retail minus the largest fee a kWh can
carry, so that no buyer pays more than the utility would charge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from agents.households.community import Community, Plan
from agents.strategies.bidding import PriceAwareStorage
from grid.feeders import Feeder
from market.settlement import Tariffs
from scenarios.config.schema import Scenario
from scenarios.engine.baseline import Baseline
from scenarios.engine.grid_stage import GridOutcome, GridStage
from scenarios.engine.inputs import WINDOW_DAYS, CommunityInputs, timeline
from scenarios.engine.interval import IntervalResult, MarketStep
from scenarios.engine.start_trace import mark_first_interval
from scenarios.results.agents_writer import AgentTotals
from scenarios.results.files import AGENT_VALUE_COLUMNS, AgentsWriter, BooksWriter, TradesWriter
from scenarios.results.fleet_heat import FleetHeat, FleetHeatStream, has_heat_pumps
from scenarios.results.households_table import households_frame
from scenarios.results.schema import AGENTS_FILE, HOUSEHOLDS_FILE, INTERVALS_FILE, columns, names

if TYPE_CHECKING:
    from scenarios.engine.audit_batch import BatchLedger

ProgressCallback = Callable[[int, int], None]
IntervalObserver = Callable[[int, Plan, IntervalResult, Tariffs], None]
"""``(t, plan as submitted, the interval's result, its tariffs)``, called every interval
(the district engine collects each feeder's residual orders with it)."""


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
    end_stored_delta_kwh: np.ndarray
    showcase: Showcase
    trade_rows: int
    feeder: Feeder | None = None
    """The feeder the grid check ran on (None when it is off): the report's map."""
    agent_totals: AgentTotals | None = None
    """Each household's totals over the run, whatever ``[output] agents`` wrote."""
    fleet_heat: FleetHeat | None = None
    """The heat-pump fleet per interval (None without heat pumps): the report's figures."""


AC_PREFIX = "ac_"
"""intervals.parquet's AC-check columns of the run (``baseline_ac_*``: of the baseline)."""


def recorded(file: str, whens: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    """``(column, source, of the baseline)`` of every column of ``file`` present under
    ``whens`` that the interval's :class:`~scenarios.engine.interval.IntervalResult` holds."""
    return [
        (c.name, c.source.removeprefix("baseline."), c.source.startswith("baseline."))
        for c in columns(file)
        if c.source and c.when in ("", *whens)
    ]


def simulate(
    scenario: Scenario,
    out_dir: Path,
    progress: ProgressCallback | None = None,
    ledger: bool = False,
    *,
    feeder: Feeder | None = None,
    observer: IntervalObserver | None = None,
) -> EngineOutput:
    """Run the interval loop, streaming agents, trades and grid tables to ``out_dir``;
    with ``ledger``, every interval also into the audit ledger ``out_dir/ledger/``
    (:mod:`scenarios.engine.audit_batch`); ``feeder`` replaces ``grid.feeder``'s (a
    district's LV feeder); ``observer`` sees every interval."""
    sim = scenario.simulation
    ipd, dt_h = sim.intervals_per_day, sim.interval_hours
    n_t = sim.n_intervals
    stamps = timeline(scenario)

    inputs = CommunityInputs(scenario)
    hh = inputs.hh
    n = hh.n
    grid = GridStage(scenario, n, out_dir, feeder) if scenario.grid.check != "off" else None
    storage = None
    if scenario.community.storage_strategy == "price_aware" and not scenario.market.is_sharing:
        storage = PriceAwareStorage(inputs.band, ipd)
    community = Community(hh, dt_h, storage)
    baseline = Baseline(scenario, hh, grid)
    step = MarketStep(scenario, n, grid)
    audit: BatchLedger | None = None
    if ledger:  # the ledger's modules (cryptography's Ed25519 keys) only for a ledger
        from scenarios.engine.audit_batch import BatchLedger

        audit = BatchLedger(scenario, out_dir, stamps, grid)

    buses = None if grid is None else grid.bus_labels[grid.bus]
    agents_out = AgentsWriter(
        out_dir, hh.agent_id, buses=buses, mode=scenario.output.agents, intervals_per_day=ipd
    )
    table = households_frame(hh, buses)
    heat = FleetHeatStream(table, n_t, dt_h) if has_heat_pumps(table) else None
    books_out = BooksWriter(out_dir, hh.agent_id) if scenario.output.order_books else None
    whens = (("grid", "grid_or_null") if grid else ()) + (("ac",) if grid and grid.ac else ())
    whens += ("p2p",) if scenario.market.mechanism == "p2p" else ()
    whens += ("dso",) if step.dso is not None else ()
    trades_out = TradesWriter(out_dir, hh.agent_id, whens)
    rows = {name: np.full(n_t, np.nan) for name in names(INTERVALS_FILE, *whens)[2:]}
    per_interval = recorded(INTERVALS_FILE, whens)
    per_household = recorded(AGENTS_FILE, whens)
    ac_names = [name for name in rows if name.startswith(AC_PREFIX)]
    baseline_ac_names = [name for name in rows if name.startswith("baseline_" + AC_PREFIX)]
    cost_total = np.zeros(n)
    baseline_total = np.zeros(n)
    showcase = Showcase()

    try:
        for first_day in range(0, sim.days, WINDOW_DAYS):
            n_days = min(WINDOW_DAYS, sim.days - first_day)
            t0 = first_day * ipd
            n_window = n_days * ipd
            win = inputs.window(first_day, n_days)
            if grid is not None:
                bg_p, bg_q = grid.background(stamps[t0 : t0 + n_window])
                rows["violations_background"][t0 : t0 + n_window] = grid.background_violations(
                    bg_p, bg_q
                )
            values = {name: np.empty((n_window, n)) for name in AGENT_VALUE_COLUMNS}
            trade_parts: list[tuple[np.ndarray, ...]] = []
            book_parts: list[tuple[np.ndarray, ...]] = []
            outcomes: list[GridOutcome] = []
            if t0 == 0:
                mark_first_interval()  # start-up measured to here ($P2PGRID_TRACE_START)
            for i in range(n_window):
                t = t0 + i
                slot = t % ipd
                if storage is not None and slot == 0:
                    storage.new_day()
                observed = win.observed(t, ipd)
                plan = community.plan(*observed)
                if books_out is not None:
                    book_parts.append(
                        (
                            np.full(len(plan.household), t),
                            plan.household,
                            plan.is_buy,
                            plan.kind,
                            plan.energy_kwh,
                            plan.price_per_kwh,
                        )
                    )
                bg = (bg_p[i], bg_q[i]) if grid is not None else ()
                if audit is not None:
                    rng_before = audit.rng_state(step.rng)
                res = step.run(plan, community.outcome, *bg, t=t)
                if audit is not None:
                    audit.record(t, plan, rng_before, res)
                if observer is not None:
                    observer(t, plan, res, step.fees.tariffs(t))
                base = baseline.run(observed, *bg, t=t)
                match, pairing, flows, plan = res.match, res.pairing, res.flows, res.plan
                if grid is not None:
                    assert res.outcome is not None and base.outcome is not None
                    if grid.ac is not None:
                        for name, value in zip(ac_names, grid.ac_check(res.outcome), strict=True):
                            rows[name][t] = value
                        for name, value in zip(
                            baseline_ac_names, grid.ac_check(base.outcome), strict=True
                        ):
                            rows[name][t] = value
                    outcomes.append(res.outcome)
                community.commit(flows)
                if storage is not None:
                    storage.observe(slot, res.price_per_kwh)
                for name, source, of_baseline in per_interval:
                    rows[name][t] = (base if of_baseline else res).value(source)
                for name, source, of_baseline in per_household:
                    values[name][i] = (base if of_baseline else res).value(source)
                values["baseline_stored_kwh"][i] = baseline.community.stored_kwh
                cost_total += res.bill.cost
                baseline_total += base.bill.cost
                if len(pairing.energy_kwh):
                    trade_parts.append(
                        (
                            np.full(len(pairing.buyer), t),
                            pairing.buyer,
                            pairing.seller,
                            pairing.energy_kwh,
                            pairing.price_per_kwh,
                            pairing.seller_price_per_kwh,
                            res.trade_fee,
                            pairing.buy_kind,
                            pairing.sell_kind,
                            res.network_charge_per_kwh,
                        )
                    )
                if match.volume_kwh > showcase.volume_kwh:
                    buy = plan.is_buy
                    showcase = Showcase(
                        t,
                        match.volume_kwh,
                        plan.energy_kwh[buy],
                        plan.price_per_kwh[buy],
                        plan.energy_kwh[~buy],
                        plan.price_per_kwh[~buy],
                        match.price_per_kwh,
                    )
            agents_out.write_window(t0, values)
            if heat is not None:
                window = np.arange(t0, t0 + n_window)
                outdoor = rows["outdoor_temp_c"][window]
                heat.add(window, values["heat_pump_kwh"], values["indoor_temp_c"], outdoor)
            _write_trades(trades_out, trade_parts)
            if books_out is not None and book_parts:
                books_out.write_orders(*(np.concatenate(c) for c in zip(*book_parts, strict=True)))
            if grid is not None:
                grid.write_window(t0, outcomes)
            if progress is not None:
                progress(t0 + n_window, n_t)
    finally:
        agents_out.close()
        trades_out.close()
        if books_out is not None:
            books_out.close()
        if grid is not None:
            grid.close()
        if audit is not None:
            audit.close()

    intervals = pd.DataFrame({"t": np.arange(n_t, dtype=np.int32), "timestamp": stamps})
    for name, values in rows.items():
        intervals[name] = values
    for c in columns(INTERVALS_FILE)[2:]:
        if c.name in intervals and c.dtype != "float64":
            intervals[c.name] = intervals[c.name].astype(c.dtype)
    # the reliability scores over the run's final window, as the last interval left them
    scores = {c.name: res.value(c.source) for c in columns(HOUSEHOLDS_FILE)}
    return EngineOutput(
        intervals=intervals,
        households=households_frame(hh, buses, scores),
        cost_total=cost_total,
        baseline_cost_total=baseline_total,
        end_stored_delta_kwh=community.stored_kwh - baseline.community.stored_kwh,
        showcase=showcase,
        trade_rows=trades_out.rows,
        feeder=grid.feeder if grid is not None else None,
        agent_totals=agents_out.totals,
        fleet_heat=heat.result() if heat is not None else None,
    )


def _write_trades(writer: TradesWriter, parts: list[tuple[np.ndarray, ...]]) -> None:
    if not parts:
        return
    t, buyer, seller, energy, price, seller_price, fee, buy_kind, sell_kind, charge = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    writer.write_trades(
        t, buyer, seller, energy, price, seller_price, fee, buy_kind, sell_kind, charge
    )
