"""Durability: the market SIGKILLed and restarted resumes from its ledger without settling
an interval twice; the broker killed and restarted mid-run loses no accepted order."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from live.ledger import read_ledger
from live.market import MarketService
from scenarios.config.schema import Scenario

INTERVALS = 30


def _ledger_len(state: Path) -> int:
    try:
        return len(read_ledger(state))
    except FileNotFoundError:
        return 0


def test_market_killed_with_sigkill_resumes_without_double_settlement(
    mosquitto,
    live_cli: Any,
    live_clients: Any,
    e2e_file: Path,
    e2e_scenario: Scenario,
    tmp_path: Path,
    equal_to_batch: Any,
) -> None:
    state = tmp_path / "state"
    args = (e2e_file, mosquitto.port, state, INTERVALS, "--no-agents")
    with live_clients(e2e_scenario, mosquitto.config) as (fleet, _meters):
        proc = live_cli(*args)
        deadline = time.monotonic() + 60
        while _ledger_len(state) < 10 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
        killed_at = _ledger_len(state)
        assert 10 <= killed_at < INTERVALS
        proc = live_cli(*args)
        rc = proc.wait(120)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert rc == 0, err
        assert fleet.wait(20)
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(INTERVALS)), "an interval twice or missing"
    assert fleet.stats.intervals == INTERVALS
    # the meters' state is restored from the ledger and the emulator answers the repeated
    # clock of the interval the killed market was on: no interval lacks a meter reading
    results = [r["result"] for r in ledger]
    assert sum(r["counts"]["missing_agents"] for r in results) == 0
    assert sum(r["counts"]["meters_incomplete"] for r in results) == 0
    equal_to_batch(results, e2e_scenario, tmp_path / "batch", books=[r["book"] for r in ledger])
    # reliability across the kill: households that deliver what they order (the fleet's
    # and the meters' orders are their readings), no late meter, nothing rejected: every
    # score exactly as a batch run's households.parquet has it
    scores = ("delivery_ratio", "take_ratio", "estimated_share", "rejected_per_interval")
    for r in ledger:
        got = {tuple(s[k] for k in scores) for s in r["settlements"].values()}
        assert got == {(1.0, 1.0, 0.0, 0.0)}, r["t"]


def test_broker_killed_and_restarted_loses_no_accepted_order(
    mosquitto, live_clients: Any, e2e_scenario: Scenario, tmp_path: Path, equal_to_batch: Any
) -> None:
    config = mosquitto.config
    state = tmp_path / "state"
    market = MarketService(e2e_scenario, config, state, speed=0, intervals=INTERVALS)

    def chaos() -> None:
        while _ledger_len(state) < 8:
            time.sleep(0.01)
        mosquitto.stop(kill=True)
        time.sleep(1.5)
        mosquitto.start()

    saboteur = threading.Thread(target=chaos, daemon=True)
    saboteur.start()
    with live_clients(e2e_scenario, config) as (fleet, _meters):
        market.run()
        assert fleet.wait(30)
    saboteur.join(5)
    assert market.bus.connects >= 2 and fleet.bus.connects >= 2
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(INTERVALS))
    assert sum(r["result"]["counts"]["missing_agents"] for r in ledger) == 0
    equal_to_batch(
        [r["result"] for r in ledger],
        e2e_scenario,
        tmp_path / "batch",
        books=[r["book"] for r in ledger],
    )
