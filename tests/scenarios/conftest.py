"""Shared runs: small scenarios run once per test session."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.devices.ev_trips import NO_TRIP, draw_ev_schedule
from agents.households.table import sample_households
from scenarios import load_scenario, read_results, run
from scenarios.engine.inputs import household_spec, timeline


def feeder_scenario(
    start: str,
    households: int,
    *,
    name: str | None = None,
    days: int = 1,
    seed: int = 3,
    interval_minutes: int | None = None,
    feeder: str | None = None,
    check: str = "pyomo",
    **community: Any,
) -> dict[str, Any]:
    """A scenario as a plain dict: ``households`` homes (``community``: their shares,
    ``pv_kwp``, chargers) for ``days`` from ``start``, on a generated radial feeder
    (``radial:<households>`` unless ``feeder`` names another) checked by ``check``."""
    simulation: dict[str, Any] = {"start": start, "days": days, "seed": seed}
    if interval_minutes is not None:
        simulation["interval_minutes"] = interval_minutes
    data: dict[str, Any] = {} if name is None else {"name": name}
    return {
        **data,
        "simulation": simulation,
        "community": {"households": households, **community},
        "grid": {"feeder": feeder or f"radial:{households}", "check": check},
    }


# A small, busy community: many batteries, EVs and V2G, so every path is exercised.
BUSY = feeder_scenario(
    "2026-06-19", 24, name="busy", days=3, seed=5,
    pv_share=0.6, battery_share=0.5, ev_share=0.5, v2g_share=0.6,
)  # fmt: skip


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


# A small community with every member type, one June day on its own feeder: the fairness
# KPIs, the meter exports and the report's feeder view (issue 16) read its files.
SMALL = feeder_scenario(
    "2026-06-15", 12, name="small-community", pv_share=0.5, battery_share=0.25, ev_share=0.25
)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results directory of the SMALL scenario's run."""
    out = tmp_path_factory.mktemp("small-community")
    run(load_scenario(SMALL), out)
    return Path(out)


@pytest.fixture(scope="session")
def small_sharing_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SMALL community sharing its surplus by the proportional key instead of trading."""
    out = tmp_path_factory.mktemp("small-sharing")
    data = {**SMALL, "market": {"mechanism": "sharing", "sharing": {"key": "proportional"}}}
    run(load_scenario(data), out)
    return Path(out)


def departures_met(scenario, agents) -> int:
    """Assert every EV leaves with its departure SoC; return how many departures there were."""
    sim = scenario.simulation
    hh = sample_households(household_spec(scenario), sim.seed)
    stamps = timeline(scenario)
    ipd = sim.intervals_per_day
    sched = draw_ev_schedule(
        hh, stamps[::ipd].dayofweek.to_numpy(), ipd, sim.interval_hours, sim.seed
    )
    ev_soc = agents.pivot(index="t", columns="agent_id", values="ev_soc_kwh")
    ev_soc = ev_soc[hh.agent_id].to_numpy()
    count = 0
    for d, h in zip(*np.nonzero(sched.depart_t < NO_TRIP), strict=True):
        t_dep = sched.depart_t[d, h]
        # state of charge at the end of the last parked interval
        assert ev_soc[t_dep - 1, h] >= hh.ev_departure_soc_kwh[h] - 1e-6, (d, h)
        count += 1
    return count


@pytest.fixture(scope="session")
def check_departures():
    """The departure check as a fixture, for the tests that run scenarios."""
    return departures_met


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster of 2 single-threaded worker processes, one per test module."""
    from scenarios.studies.dask_cluster import local_cluster_client

    c = local_cluster_client(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()
