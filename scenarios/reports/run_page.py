"""A run's ``report.html`` from the engine's output: its figures gathered (the feeder
maps, the grid and sharing figures of a checked feeder, the member types, the heat pumps)
and the page written.

:func:`scenarios.engine.runner.run` imports this module only when it writes the report,
so the engine starts without plotly, igraph and the report modules loaded
(``tests/test_imports.py``; issue 18 item 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.engine.batch import EngineOutput
from scenarios.kpis.compute import household_savings
from scenarios.reports.feeder_report import feeder_map_figures, map_intervals
from scenarios.reports.feeder_sharing import feeder_sharing_figures, shared_flows_between_buses
from scenarios.reports.grid_tables import grid_tables
from scenarios.reports.heat import heat_figures
from scenarios.reports.html_page import write_page
from scenarios.reports.member_types import member_type_figures
from scenarios.reports.run import grid_figures, report_body
from scenarios.results.files import BUSES_FILE, LINES_FILE, REPORT_FILE, TRADES_FILE


def _grid_figures(
    scenario: Scenario, output: EngineOutput, intervals: pd.DataFrame, out: Path
) -> list[Any]:
    """The feeder maps, the grid figures and the sharing between buses of a run whose
    feeder was checked (none when ``grid.check = "off"``)."""
    if scenario.grid.check == "off":
        return []
    limits = (scenario.grid.v_min_pu, scenario.grid.v_max_pu)
    currency = scenario.market.currency
    picks = map_intervals(intervals, limits) if output.feeder is not None else []
    grid = grid_tables(out / BUSES_FILE, out / LINES_FILE, intervals["timestamp"], picks)
    figures: list[Any] = []
    if output.feeder is not None:
        figures = feeder_map_figures(
            output.feeder, output.households, intervals, grid, limits, currency
        )
    figures += grid_figures(intervals, grid, *limits, currency)
    flows = shared_flows_between_buses(out / TRADES_FILE, output.households, grid.buses.order)
    what = "shared" if scenario.market.is_sharing else "traded P2P"
    return figures + feeder_sharing_figures(flows, what)


def write_run_report(
    scenario: Scenario,
    output: EngineOutput,
    kpis: dict[str, Any],
    intervals: pd.DataFrame,
    out: Path,
) -> None:
    """Write ``out/report.html`` of a run: ``kpis`` and ``intervals`` as the run wrote
    them, ``output`` the engine's (its feeder, households, totals and showcase)."""
    sim = scenario.simulation
    retail = scenario.market.retail_price_per_kwh
    extra = _grid_figures(scenario, output, intervals, out)
    extra += member_type_figures(kpis, scenario.market.currency)
    band = (scenario.community.indoor_temp_min_c, scenario.community.indoor_temp_max_c)
    extra += heat_figures(intervals, output.fleet_heat, output.households, band, sim.interval_hours)
    body = report_body(
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
    write_page(out / REPORT_FILE, scenario.name, body)
