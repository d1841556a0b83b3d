"""Replaying a batch ledger gives the run's results to the cent, for every mechanism and
on a feeder at its limits, where the network re-clears the market."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanism_names import MECHANISM_NAMES
from scenarios import load_scenario, read_results, run
from scenarios.audit.ledger import read_chain
from scenarios.audit.verify import verify

from ..conftest import feeder_scenario
from .conftest import RESTART_AT, write_signed_ledger

# 30 households, all with 8-10 kWp of PV, on a feeder sized for the community: the noon
# export overloads it and the feeder re-clears (tests/scenarios/test_grid_run.py).
STRESSED = feeder_scenario(
    "2026-06-20", 30, name="stressed",
    pv_share=1.0, pv_kwp=[8.0, 10.0], battery_share=0.3, ev_share=0.6, v2g_share=0.5,
)  # fmt: skip
# Every EV on a 22 kW charger on a January evening: the feeder defers charging.
EVENING_EVS = feeder_scenario(
    "2026-01-13", 36, name="evening", feeder="radial:30",
    pv_share=0.2, battery_share=0.2, ev_share=1.0, v2g_share=0.3, ev_charger_kw=22.0,
)  # fmt: skip


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
    price = [e["clearing"]["price_per_kwh"] for e in entries]
    recorded = np.array([np.nan if p is None else p for p in price])
    np.testing.assert_allclose(recorded, iv.clearing_price_per_kwh.to_numpy(), atol=1e-9)
    return {"entries": entries, "intervals": iv}


# every mechanism the market has (energy sharing too, issue 16)
MECHANISMS = list(MECHANISM_NAMES)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_replay_is_the_run_for_every_mechanism_with_reclearing(tmp_path, mechanism) -> None:
    data = {**STRESSED, "market": {"mechanism": mechanism}}
    found = _run_and_verify(data, tmp_path)
    recleared = [e["clearing"]["grid"]["recleared"] for e in found["entries"]]
    if mechanism == "sharing":  # sharing moves no energy: the feeder only curtails
        assert found["intervals"].curtailed_kwh.sum() > 0
        return
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


def test_replay_with_dimmed_wallboxes(tmp_path) -> None:
    """§14a: the registered wallboxes are dimmed before anything else (the market then
    clears the dimmed plan twice: the random state is the one before the first)."""
    data = {**EVENING_EVS, "grid": {**EVENING_EVS["grid"], "controllable_share": 1.0}}
    data["market"] = {"mechanism": "cda"}
    found = _run_and_verify(data, tmp_path)
    assert (found["intervals"].dimmed_kwh > 0).sum() >= 4


def test_replay_with_heat_pumps(tmp_path) -> None:
    data = {
        "name": "heat",
        "simulation": {"start": "2026-01-13", "days": 1, "seed": 4},
        "community": {"households": 20, "heat_pump_share": 0.6, "pv_share": 0.3},
        "grid": {"feeder": "radial:20", "check": "pyomo"},
    }
    found = _run_and_verify(data, tmp_path)
    heat = sum(
        leaf["settlement"]["heat_pump_kwh"] for e in found["entries"] for leaf in e["settlements"]
    )
    assert heat > 10.0


def test_live_ledger_on_a_stressed_feeder_across_a_restart(tmp_path) -> None:
    """Written as the live market writes (a feeder stage per process, solved once before
    its first gate; background per interval), killed before noon and resumed: the replay
    rebuilds the stage at the new session and re-clears the noon intervals as the
    restarted market did."""
    found = write_signed_ledger(tmp_path / "ledger", {**STRESSED, "market": {"mechanism": "cda"}})
    report = verify(tmp_path / "ledger")
    assert report.ok, [p.line() for p in report.problems[:5]]
    entries = [e for e in read_chain(tmp_path / "ledger") if e["header"]["kind"] == "interval"]
    recleared = [e["header"]["t"] for e in entries if e["clearing"]["grid"]["recleared"]]
    assert recleared and min(recleared) > RESTART_AT  # after the restart
    assert {e["header"]["session"] for e in entries} == {0, 1}
    assert report.signatures == 96 * len(found["ids"]) + 1
