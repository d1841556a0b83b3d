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
from scenarios.engine.batch import IntervalObserver, ProgressCallback, simulate
from scenarios.errors import ScenarioError
from scenarios.kpis.compute import compute_kpis
from scenarios.kpis.member_types import member_type_kpis
from scenarios.results.files import (
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    KPIS_FILE,
    MANIFEST_FILE,
    REPORT_FILE,
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
    if report:  # the report's modules (plotly, igraph) only for a report
        from scenarios.reports.run_page import write_run_report

        write_run_report(scenario, output, kpis, intervals, out)
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
