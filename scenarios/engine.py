"""The interval engine: one scenario, interval by interval, results streamed to disk.

Per interval (DESIGN.md "One interval"), for all households at once:
observe (profiles) → plan (net own PV, load and storage; orders) → clear → settle →
apply (states of charge) → record. A no-P2P baseline community (same households,
self-consumption only, the utility as the only counterparty, the same feeder check,
curtailment and EV deferral: :mod:`scenarios.baseline`) runs alongside so that savings
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

import numpy as np
import pandas as pd

from agents.community import Community, Flows
from agents.strategy import PriceAwareStorage
from scenarios.baseline import Baseline
from scenarios.grid_stage import GridOutcome, GridStage
from scenarios.households_table import households_frame
from scenarios.interval import BLOCK_DAYS, CommunityInputs, MarketStep, timeline
from scenarios.results import AGENT_VALUE_COLUMNS, AgentsWriter, BooksWriter, TradesWriter
from scenarios.schema import Scenario

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
    end_stored_delta_kwh: np.ndarray
    showcase: Showcase
    trade_rows: int


INTERVAL_SERIES = (
    "clearing_price_per_kwh", "seller_price_per_kwh", "p2p_kwh", "grid_import_kwh",
    "grid_export_kwh", "imbalance_kwh", "imbalance_cost", "generation_kwh", "demand_kwh",
    "battery_kwh", "ev_kwh", "battery_soc_kwh", "ev_soc_kwh", "cost", "baseline_cost",
    "grid_fees", "market_surplus", "welfare", "optimal_welfare", "curtailed_kwh",
    "baseline_curtailed_kwh",
)
GRID_SERIES = (
    "losses_kwh", "v_min_pu", "v_max_pu", "max_line_loading_frac", "violations",
    "violations_before_reclear", "violations_background", "recleared", "solved_with_pyomo",
    "baseline_violations",
)
AC_SERIES = ("ac_v_min_pu", "ac_v_max_pu", "ac_max_v_error_pu", "ac_max_line_loading_frac")
BASELINE_AC_SERIES = tuple(f"baseline_{name}" for name in AC_SERIES)


def simulate(
    scenario: Scenario,
    out_dir: Path,
    progress: ProgressCallback | None = None,
) -> EngineOutput:
    """Run the interval loop, streaming agents, trades and grid tables to ``out_dir``."""
    sim = scenario.simulation
    ipd, dt_h = sim.intervals_per_day, sim.interval_hours
    n_t = sim.n_intervals
    stamps = timeline(scenario)

    inputs = CommunityInputs(scenario)
    hh = inputs.hh
    n = hh.n
    grid = GridStage(scenario, n, out_dir) if scenario.grid.check != "off" else None
    storage = None
    if scenario.community.storage_strategy == "price_aware":
        storage = PriceAwareStorage(inputs.band, ipd)
    community = Community(hh, dt_h, storage)
    baseline = Baseline(scenario, hh, grid)
    step = MarketStep(scenario, n, grid)

    buses = None if grid is None else grid.bus_labels[grid.bus]
    agents_out = AgentsWriter(out_dir, hh.agent_id, buses=buses)
    trades_out = TradesWriter(out_dir, hh.agent_id)
    books_out = BooksWriter(out_dir, hh.agent_id) if scenario.output.order_books else None
    names = INTERVAL_SERIES + (GRID_SERIES if grid else ()) + (
        AC_SERIES + BASELINE_AC_SERIES if grid and grid.ac else ())
    rows = {name: np.full(n_t, np.nan) for name in names}
    cost_total = np.zeros(n)
    baseline_total = np.zeros(n)
    showcase = Showcase()

    try:
        for first_day in range(0, sim.days, BLOCK_DAYS):
            n_days = min(BLOCK_DAYS, sim.days - first_day)
            t0 = first_day * ipd
            n_block = n_days * ipd
            blk = inputs.block(first_day, n_days)
            if grid is not None:
                bg_p, bg_q = grid.background(stamps[t0 : t0 + n_block])
                rows["violations_background"][t0 : t0 + n_block] = (
                    grid.background_violations(bg_p, bg_q))
            block = {name: np.empty((n_block, n)) for name in AGENT_VALUE_COLUMNS}
            trade_parts: list[tuple[np.ndarray, ...]] = []
            book_parts: list[tuple[np.ndarray, ...]] = []
            outcomes: list[GridOutcome] = []
            for i in range(n_block):
                t = t0 + i
                slot = t % ipd
                if storage is not None and slot == 0:
                    storage.new_day()
                observed = blk.observed(t, ipd)
                plan = community.plan(*observed)
                if books_out is not None:
                    book_parts.append((np.full(len(plan.household), t), plan.household,
                                       plan.is_buy, plan.kind, plan.energy_kwh,
                                       plan.price_per_kwh))
                bg = (bg_p[i], bg_q[i]) if grid is not None else ()
                res = step.run(plan, community.outcome, *bg)
                base = baseline.run(observed, *bg)
                cleared, match, pairing = res.cleared, res.match, res.pairing
                price, volume, flows, plan = (res.price_per_kwh, res.volume_kwh, res.flows,
                                              res.plan)
                generation, curtailed, bill = res.generation_kwh, res.curtailed_kwh, res.bill
                trade_fee = res.trade_fee
                if grid is not None:
                    outcome = res.outcome
                    assert outcome is not None
                    rows["violations_before_reclear"][t] = res.violations_before_reclear
                    _record_grid(rows, t, outcome, dt_h)
                    assert base.outcome is not None
                    rows["baseline_violations"][t] = base.outcome.check.violations
                    if grid.ac is not None:
                        for name, value in zip(AC_SERIES, grid.ac_check(outcome), strict=True):
                            rows[name][t] = value
                        for name, value in zip(BASELINE_AC_SERIES, grid.ac_check(base.outcome),
                                               strict=True):
                            rows[name][t] = value
                    outcomes.append(outcome)
                community.commit(flows)
                if storage is not None:
                    storage.observe(slot, price)
                base_cost = base.bill.cost
                rows["baseline_curtailed_kwh"][t] = base.curtailed_kwh.sum()

                _record_agents(block, i, generation, plan.demand_kwh, curtailed, flows,
                               bill.grid_import_kwh, bill.grid_export_kwh, bill.cost, base_cost,
                               baseline.community.stored_kwh)
                block["imbalance_kwh"][i] = bill.imbalance_kwh
                block["imbalance_cost"][i] = bill.imbalance_cost
                rows["clearing_price_per_kwh"][t] = price
                rows["p2p_kwh"][t] = volume
                rows["grid_import_kwh"][t] = bill.grid_import_kwh.sum()
                rows["grid_export_kwh"][t] = bill.grid_export_kwh.sum()
                rows["imbalance_kwh"][t] = bill.imbalance_kwh.sum()
                rows["imbalance_cost"][t] = bill.imbalance_cost.sum()
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
                        trade_fee, pairing.buy_kind, pairing.sell_kind,
                    ))
                if match.volume_kwh > showcase.volume_kwh:
                    buy = plan.is_buy
                    showcase = Showcase(
                        t, match.volume_kwh, plan.energy_kwh[buy], plan.price_per_kwh[buy],
                        plan.energy_kwh[~buy], plan.price_per_kwh[~buy], match.price_per_kwh,
                    )
            agents_out.write_block(t0, block)
            _write_trades(trades_out, trade_parts)
            if books_out is not None and book_parts:
                books_out.write_block(*(np.concatenate(c) for c in zip(*book_parts, strict=True)))
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
        if books_out is not None:
            books_out.close()
        if grid is not None:
            grid.close()

    intervals = pd.DataFrame({"t": np.arange(n_t, dtype=np.int32), "timestamp": stamps})
    for name, values in rows.items():
        intervals[name] = values
    for name in ("violations", "violations_before_reclear", "violations_background",
                 "baseline_violations"):
        if name in intervals:
            intervals[name] = intervals[name].astype("int64")
    for name in ("recleared", "solved_with_pyomo"):
        if name in intervals:
            intervals[name] = intervals[name].astype(bool)
    return EngineOutput(
        intervals=intervals,
        households=households_frame(hh, buses),
        cost_total=cost_total,
        baseline_cost_total=baseline_total,
        end_stored_delta_kwh=community.stored_kwh - baseline.community.stored_kwh,
        showcase=showcase,
        trade_rows=trades_out.rows,
    )


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
    baseline_stored_kwh: np.ndarray,
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
    block["baseline_stored_kwh"][i] = baseline_stored_kwh


def _write_trades(writer: TradesWriter, parts: list[tuple[np.ndarray, ...]]) -> None:
    if not parts:
        return
    t, buyer, seller, energy, price, seller_price, fee, buy_kind, sell_kind = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    writer.write_block(t, buyer, seller, energy, price, seller_price, fee, buy_kind, sell_kind)
