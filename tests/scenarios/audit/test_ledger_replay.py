"""Replaying a batch ledger gives the run's results to the cent, for every mechanism and
on a feeder at its limits, where the network re-clears the market."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import load_scenario, read_results, run
from scenarios.audit.ledger import read_chain
from scenarios.audit.verify import verify

# 30 households, all with 8-10 kWp of PV, on a feeder sized for the community: the noon
# export overloads it and the feeder re-clears (tests/scenarios/test_grid_run.py).
STRESSED = {
    "name": "stressed",
    "simulation": {"start": "2026-06-20", "days": 1, "seed": 3},
    "community": {
        "households": 30,
        "pv_share": 1.0,
        "pv_kwp": [8.0, 10.0],
        "battery_share": 0.3,
        "ev_share": 0.6,
        "v2g_share": 0.5,
    },
    "grid": {"feeder": "radial:30", "check": "pyomo"},
}
# Every EV on a 22 kW charger on a January evening: the feeder defers charging.
EVENING_EVS = {
    "name": "evening",
    "simulation": {"start": "2026-01-13", "days": 1, "seed": 3},
    "community": {
        "households": 36,
        "pv_share": 0.2,
        "battery_share": 0.2,
        "ev_share": 1.0,
        "v2g_share": 0.3,
        "ev_charger_kw": 22.0,
    },
    "grid": {"feeder": "radial:30", "check": "pyomo"},
}


def _run_and_verify(data: dict, out) -> dict:
    scenario = load_scenario(data)
    run(scenario, out, ledger=True)
    report = verify(out)
    assert report.ok, [p.line() for p in report.problems[:5]]
    assert report.intervals == scenario.simulation.n_intervals
    tables = read_results(out)
    entries = [e for e in read_chain(out / "ledger") if e["header"]["kind"] == "interval"]
    # the ledger is the run: every settlement's cost is agents.parquet's, to the cent
    cost = tables["agents"].pivot(index="t", columns="agent_id", values="cost")
    ledger_cost = np.array(
        [[leaf["settlement"]["cost"] for leaf in e["settlements"]] for e in entries]
    )
    assert np.abs(ledger_cost - cost.to_numpy()).max() < 0.005
    iv = tables["intervals"]
    price = [e["header"]["clearing"]["price_per_kwh"] for e in entries]
    recorded = np.array([np.nan if p is None else p for p in price])
    np.testing.assert_allclose(recorded, iv.clearing_price_per_kwh.to_numpy(), atol=1e-9)
    return {"entries": entries, "intervals": iv}


@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid", "mcafee", "cda", "p2p"])
def test_replay_is_the_run_for_every_mechanism_with_reclearing(tmp_path, mechanism) -> None:
    data = {**STRESSED, "market": {"mechanism": mechanism}}
    found = _run_and_verify(data, tmp_path)
    recleared = [e["header"]["clearing"]["grid"]["recleared"] for e in found["entries"]]
    assert sum(recleared) >= 5  # the noon intervals are re-cleared with the feeder
    assert found["intervals"].recleared.sum() == sum(recleared)
    assert found["intervals"].curtailed_kwh.sum() > 0


def test_replay_with_deferred_ev_charging(tmp_path) -> None:
    found = _run_and_verify(EVENING_EVS, tmp_path)
    iv = found["intervals"]
    assert (iv.violations_before_reclear > 0).sum() >= 2 and iv.recleared.any()
    deferred = sum(
        leaf["settlement"]["ev_deferred_kwh"] for e in found["entries"] for leaf in e["settlements"]
    )
    assert deferred > 0
