"""A community on a SimBench LV grid with SimBench profiles, end to end."""

import numpy as np
import pytest

from scenarios import load_scenario, read_results, run

pytest.importorskip("simbench")


def test_simbench_profiles_on_a_simbench_grid(tmp_path) -> None:
    scenario = load_scenario(
        {
            "simulation": {"start": "2026-05-04", "days": 1, "seed": 2},
            "community": {"households": 12, "profiles": "simbench"},
            "grid": {"feeder": "simbench:1-LV-rural1--0-sw"},
        }
    )
    run(scenario, tmp_path)
    t = read_results(tmp_path)
    a, b, hh = t["agents"], t["buses"], t["households"]
    assert len(a) == 96 * 12
    # households sit on the grid's load buses, and the bus table covers the whole grid
    assert set(hh.bus) <= set(b.bus)
    assert b.bus.nunique() > hh.bus.nunique()
    pv = hh.pv_kwp > 0
    gen = a.groupby("agent_id", observed=True).generation_kwh.sum()
    assert (gen[hh.agent_id[pv]] > 0).all() and (gen[hh.agent_id[~pv]] == 0).all()
    # a May day: a rooftop yields roughly 1-8 kWh per kWp
    per_kwp = gen[hh.agent_id[pv]].to_numpy() / hh.pv_kwp[pv].to_numpy()
    assert ((per_kwp > 0.5) & (per_kwp < 8)).all()
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
