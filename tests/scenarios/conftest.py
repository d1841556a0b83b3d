"""Shared runs: small scenarios run once per test session."""

from pathlib import Path

import pytest

from scenarios import load_scenario, read_results, run

# A small, busy community: many batteries, EVs and V2G, so every path is exercised.
BUSY = {
    "name": "busy",
    "simulation": {"start": "2026-06-19", "days": 3, "seed": 5},
    "community": {
        "households": 24, "pv_share": 0.6, "battery_share": 0.5, "ev_share": 0.5,
        "v2g_share": 0.6,
    },
    "grid": {"feeder": "radial:24", "check": "pyomo"},
}


@pytest.fixture(scope="session")
def busy_data() -> dict:
    """The busy scenario as a plain dict (copy it before changing it)."""
    return BUSY


@pytest.fixture(scope="session")
def busy_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("busy")
    scenario = load_scenario(BUSY)
    result = run(scenario, out)
    tables = read_results(out)
    tables["scenario"] = scenario
    tables["out"] = Path(out)
    tables["result"] = result
    return tables
