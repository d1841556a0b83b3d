"""Versioned re-settlement in the live market's audit ledger, over a real Mosquitto.

Meters on their own clock (a sample every 6 simulated minutes, as in
test_meters_real.py) leave every gate short of the interval's end: the households are
settled on flagged estimates (version 1) and re-settled with their true energy when the
counters come (version 2, a correction entry naming version 1's leaf), some of them after
the last gate (the close-out). Money and energy balance in both versions, and
``p2pgrid ledger verify`` re-derives both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService
from market.settlement import utility_energy_cost
from scenarios.audit.leaves import leaf_hex
from scenarios.audit.ledger import read_chain
from scenarios.config.loader import load_scenario
from scenarios.engine.interval import MarketStep

FOUR_METERS = (Path(__file__).parent / "four_meters.toml").read_text(encoding="utf-8")
INTERVALS, SPEED, EVERY_S = 8, 3600.0, 360.0
OWN_CLOCK = (
    """
name = "audit-own-clock"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 60
seed = 4
[community]
households = 4
pv_share = 1.0
[grid]
check = "off"
[live]
checkpoint_every = 4
"""
    + FOUR_METERS
)
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


def balanced(t: int, settlements: dict[str, dict[str, Any]], tariffs: Any) -> None:
    """Energy per household (metered net = sold − bought + export − import) and money
    over the community: Σ cost = what the utility is paid (committed exchange at retail /
    feed-in, imbalance at the imbalance prices) + grid fees + the operator's surplus
    (what buyers pay − what sellers receive)."""
    utility = 0.0
    for agent, s in settlements.items():
        where = f"t={t} {agent} v{s['version']}"
        devices = s["battery_kwh"] + s["ev_kwh"] + s.get("heat_pump_kwh", 0.0)
        metered = s["generation_kwh"] - s["demand_kwh"] - devices
        moved = s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"]
        assert metered == pytest.approx(moved, abs=1e-9), where
        imbalance = metered - s["committed_net_kwh"]
        assert s["imbalance_kwh"] == pytest.approx(imbalance, abs=1e-9), where
        committed = s["grid_export_kwh"] - s["grid_import_kwh"] - imbalance
        utility += (
            float(utility_energy_cost(np.array([committed]), tariffs)[0])
            + max(-imbalance, 0.0) * tariffs.shortfall_price_per_kwh
            - max(imbalance, 0.0) * tariffs.surplus_price_per_kwh
        )
    rows = settlements.values()
    fees = sum(s["fees"] for s in rows)
    surplus = sum(s["paid"] for s in rows) - sum(s["received"] for s in rows)
    assert surplus >= -1e-9, f"t={t}: the operator pays out {surplus}"
    assert sum(s["cost"] for s in rows) == pytest.approx(utility + fees + surplus, abs=1e-9)


def test_a_late_meter_is_re_settled_as_version_2_in_the_ledger_and_verifies(
    mosquitto, tmp_path: Path
) -> None:
    path = tmp_path / "own-clock.toml"
    path.write_text(OWN_CLOCK, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"
    market = MarketService(scenario, config, state, speed=SPEED, intervals=INTERVALS)
    meters = MeterEmulator(scenario, config, own_clock_s=EVERY_S, speed=SPEED).start()
    try:
        market.run()
    finally:
        meters.stop()
    assert market.stats.intervals == INTERVALS and market.stats.corrections > 0

    chain = [e for e in read_chain(state / "ledger")]
    entries = {e["header"]["seq"]: e for e in chain}
    first: dict[tuple[str, int], dict[str, Any]] = {}
    for e in chain:
        if e["header"]["kind"] == "interval":
            for leaf in e["settlements"]:
                first[(leaf["agent"], leaf["t"])] = leaf
    corrections = [e for e in chain if e["header"]["kind"] == "correction"]
    assert corrections, "no correction entry"
    corrected: dict[int, dict[str, dict[str, Any]]] = {}
    tariffs = MarketStep(scenario, 4, None).tariffs
    meter_homes = {m.household for m in scenario.live.meters}
    for e in corrections:
        h = e["header"]
        t = h["t"]
        assert h["reason"] == "late meter data"
        assert h["n_settlements"] == len(e["settlements"]) == len(h["supersedes"])
        assert h["n_inputs"] == len(e["inputs"])
        for leaf, sup, inputs in zip(e["settlements"], h["supersedes"], e["inputs"], strict=True):
            agent = leaf["agent"]
            assert agent in meter_homes and inputs["agent"] == agent
            old = first[(agent, t)]
            # version 2, linked to version 1's leaf in the interval's entry, no longer an
            # estimate; the trades and the commitment stand, the metered energy is new
            assert old["version"] == 1 and old["settlement"]["estimated"]
            assert leaf["version"] == 2 and not leaf["settlement"]["estimated"]
            assert sup == {"agent": agent, "version": 1, "leaf": leaf_hex(old)}
            for key in ("trades", "committed_net_kwh", "paid", "received", "fees"):
                assert leaf["settlement"][key] == old["settlement"][key], key
            assert inputs["reading"]["demand_kwh"] == leaf["settlement"]["demand_kwh"]
            assert inputs["reading"]["generation_kwh"] == leaf["settlement"]["generation_kwh"]
            corrected.setdefault(t, {})[agent] = leaf["settlement"]
        assert h["prev"] == entries[h["seq"] - 1]["hash"]
    # some re-settled at a later gate, the last interval's after the last gate
    last_interval = max(s for s, e in entries.items() if e["header"]["kind"] == "interval")
    assert any(e["header"]["seq"] > last_interval for e in corrections)
    assert INTERVALS - 1 in corrected
    # every version balances: version 1 of every interval, and the interval with each
    # household's version 2 in place of its version 1
    for e in chain:
        if e["header"]["kind"] == "interval":
            t = e["header"]["t"]
            v1 = {leaf["agent"]: leaf["settlement"] for leaf in e["settlements"]}
            balanced(t, v1, tariffs)
            if t in corrected:
                balanced(t, {**v1, **corrected[t]}, tariffs)
    # the state ledger commits the last audit entry; the chain's checkpoints cover it
    assert read_ledger(state)[-1]["audit_seq"] == chain[-1]["header"]["seq"]

    verified = subprocess.run(
        [*CLI, "ledger", "verify", str(state)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
