"""§14a dimming in the live market (issue 14): the market dims by the batch engine's own
step, each household's settlement carries its ``dimmed_kwh`` and its devices' energies as
dimmed, the agents follow them, and the whole run equals the batch run of the same seed.

The stressed case is tests/scenarios/test_dimming.py's: 36 households with an EV on a
22 kW charger each on a feeder generated for 30, a January evening, all registered:
batch dims 12 intervals (16:30 to 19:15) and needs no curtailment or deferral."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from live.ledger import read_ledger
from live.market import MarketService
from scenarios import load_scenario

STRESSED = {
    "name": "live-dimming",
    "simulation": {"start": "2026-01-13", "days": 1, "seed": 3},
    "community": {
        "households": 36,
        "pv_share": 0.2,
        "battery_share": 0.2,
        "ev_share": 1.0,
        "v2g_share": 0.3,
        "ev_charger_kw": 22.0,
    },
    "grid": {"feeder": "radial:30", "check": "pyomo", "controllable_share": 1.0},
}


def test_dimming_in_the_live_market_equals_the_batch_run(
    mosquitto: Any, live_clients: Any, tmp_path: Path, equal_to_batch: Any
) -> None:
    scenario = load_scenario(STRESSED)
    n_t = scenario.simulation.n_intervals
    state = tmp_path / "state"
    market = MarketService(scenario, mosquitto.config, state, speed=0)
    with live_clients(scenario, mosquitto.config) as (fleet, _meters):
        market.run()
        assert fleet.wait(30)
    assert sum(market.stats.rejected.values()) == 0, market.stats.rejected
    ledger = read_ledger(state)
    assert len(ledger) == n_t
    results = [rec["result"] for rec in ledger]
    # every interval, the dimmed ones and the evening after them (the cars charge what
    # dimming left): prices, volumes, flows, bills, voltages, violations, trades and
    # the community's dimmed energy equal the batch run's
    out = tmp_path / "batch"
    equal_to_batch(results, scenario, out, books=[rec["book"] for rec in ledger])
    dimmed_t = [r["t"] for r in results if r["dimmed_kwh"] > 0]
    assert len(dimmed_t) >= 4, f"dimmed only in {dimmed_t}: a weak test"
    assert all(r["grid"]["violations"] == 0 for r in results)
    # each household's settlement: its dimmed energy and its EV's energy as batch has them
    agents = pd.read_parquet(out / "agents.parquet").set_index(["t", "agent_id"])
    live = pd.DataFrame(
        [
            {"t": rec["result"]["t"], "agent_id": agent, **s}
            for rec in ledger
            for agent, s in rec["settlements"].items()
        ]
    ).set_index(["t", "agent_id"])
    want = agents.loc[live.index]
    for column in ("dimmed_kwh", "ev_kwh", "battery_kwh", "imbalance_kwh", "cost"):
        np.testing.assert_allclose(live[column], want[column], atol=1e-6, err_msg=column)
    assert live.dimmed_kwh.sum() == pytest.approx(sum(r["dimmed_kwh"] for r in results))
    assert (live.dimmed_kwh > 0).groupby(level="t").any().sum() == len(dimmed_t)
    assert live.imbalance_kwh.abs().max() < 1e-8  # the operator's cut is no imbalance
