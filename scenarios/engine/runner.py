"""Run a scenario end to end: engine, results files, KPIs, manifest, report."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grid.district_networks import is_district
from grid.feeders import Feeder
from scenarios.config.schema import Scenario
from scenarios.engine.batch import EngineOutput, IntervalObserver, ProgressCallback, simulate
from scenarios.errors import ScenarioError
from scenarios.kpis.compute import compute_kpis, household_savings
from scenarios.kpis.member_types import member_type_kpis
from scenarios.reports.feeder_report import feeder_map_figures, map_intervals
from scenarios.reports.feeder_sharing import feeder_sharing_figures, shared_flows_between_buses
from scenarios.reports.grid_tables import grid_tables
from scenarios.reports.heat import heat_figures
from scenarios.reports.member_types import member_type_figures
from scenarios.reports.run import grid_figures, render_report
from scenarios.results.files import (
    BUSES_FILE,
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    KPIS_FILE,
    LINES_FILE,
    MANIFEST_FILE,
    REPORT_FILE,
    TRADES_FILE,
    write_json,
    write_table,
)
from scenarios.results.member_totals import member_totals
from scenarios.results.out_dir import make_out_dir
from scenarios.results.schema import columns

_VERSIONED = (
    "p2pgrid",
    "numpy",
    "pandas",
    "pyarrow",
    "pvlib",
    "demandlib",
    "pyomo",
    "highspy",
    "pandapower",
    "simbench",
    "plotly",
    "pydantic",
)


@dataclass(frozen=True)
class RunResult:
    """Where a run's files are, and its KPIs."""

    out_dir: Path
    kpis: dict[str, Any]
    report_path: Path
    wall_time_s: float


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _grid_columns(intervals: pd.DataFrame) -> pd.DataFrame:
    """The grid columns when the feeder is not checked: not computed (null)."""
    for c in columns(INTERVALS_FILE):
        if c.when == "grid_or_null":
            intervals[c.name] = (
                np.nan
                if c.dtype == "float64"
                else pd.array([pd.NA] * len(intervals), dtype=c.dtype.capitalize())
            )
    return intervals


def run(
    scenario: Scenario,
    out_dir: str | Path,
    progress: ProgressCallback | None = None,
    ledger: bool = False,
    *,
    feeder: Feeder | None = None,
    observer: IntervalObserver | None = None,
    report: bool = True,
) -> RunResult:
    """Run ``scenario`` and write every results file into ``out_dir``.

    Files (DESIGN.md): intervals.parquet, agents.parquet, trades.parquet,
    households.parquet (the sampled static table and the reliability scores), kpis.json,
    manifest.json, report.html; with ``ledger``, the audit ledger ``ledger/``
    (:mod:`scenarios.engine.audit_batch`). ``feeder`` and ``observer`` go to
    :func:`scenarios.engine.batch.simulate`; without ``report`` no report.html is written.
    A district (``grid.feeder = "district:..."``) is run by :func:`scenarios.engine.district.
    run_district` (``p2pgrid run`` calls it).
    """
    if feeder is None and is_district(scenario.grid.feeder):
        raise ScenarioError(
            [
                f"grid.feeder: {scenario.grid.feeder!r} is a district: run it with "
                "scenarios.engine.district.run_district (p2pgrid run does)"
            ]
        )
    started = time.perf_counter()
    out = make_out_dir(out_dir)
    sim = scenario.simulation
    output = simulate(scenario, out, progress, ledger, feeder=feeder, observer=observer)
    intervals = output.intervals
    if scenario.grid.check == "off":
        intervals = _grid_columns(intervals)
    write_table(intervals, out / INTERVALS_FILE)
    write_table(output.households, out / HOUSEHOLDS_FILE)

    retail = scenario.market.retail_price_per_kwh
    kpis = compute_kpis(
        intervals,
        output.cost_total,
        output.baseline_cost_total,
        output.end_stored_delta_kwh,
        retail,
        sim.interval_hours,
        scenario.market.currency,
        (scenario.grid.v_min_pu, scenario.grid.v_max_pu),
    )
    members = member_totals(out, output.agent_totals)
    kpis.update(
        member_type_kpis(members, output.households, retail, scenario.market.feed_in_price_per_kwh)
    )
    kpis["grid_check"] = scenario.grid.check
    write_json(kpis, out / KPIS_FILE)
    extra = []
    if report and scenario.grid.check != "off":
        limits = (scenario.grid.v_min_pu, scenario.grid.v_max_pu)
        picks = map_intervals(intervals, limits) if output.feeder is not None else []
        grid = grid_tables(out / BUSES_FILE, out / LINES_FILE, intervals["timestamp"], picks)
        if output.feeder is not None:
            extra = feeder_map_figures(
                output.feeder,
                output.households,
                intervals,
                grid,
                limits,
                scenario.market.currency,
            )
        extra += grid_figures(intervals, grid, *limits, scenario.market.currency)
        flows = shared_flows_between_buses(out / TRADES_FILE, output.households, grid.buses.order)
        what = "shared" if scenario.market.is_sharing else "traded P2P"
        extra += feeder_sharing_figures(flows, what)
    if report:
        _write_report(scenario, output, kpis, intervals, extra, out)
    wall = time.perf_counter() - started
    write_json(
        {
            "scenario": scenario.model_dump(mode="json"),
            "seed": sim.seed,
            "households": len(output.households),
            "intervals": len(intervals),
            "trades": output.trade_rows,
            "versions": _versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "wall_time_s": wall,
        },
        out / MANIFEST_FILE,
    )
    return RunResult(out, kpis, out / REPORT_FILE, wall)


def _write_report(
    scenario: Scenario,
    output: EngineOutput,
    kpis: dict[str, Any],
    intervals: pd.DataFrame,
    extra: list[Any],
    out: Path,
) -> None:
    sim = scenario.simulation
    retail = scenario.market.retail_price_per_kwh
    extra += member_type_figures(kpis, scenario.market.currency)
    band = (scenario.community.indoor_temp_min_c, scenario.community.indoor_temp_max_c)
    extra += heat_figures(intervals, output.fleet_heat, output.households, band, sim.interval_hours)
    page = render_report(
        scenario.name,
        kpis,
        intervals,
        household_savings(
            output.cost_total, output.baseline_cost_total, output.end_stored_delta_kwh, retail
        ),
        output.showcase,
        scenario.market.model_dump(),
        sim.interval_hours,
        extra,
    )
    (out / REPORT_FILE).write_text(page, encoding="utf-8")
