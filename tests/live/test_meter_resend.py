"""Meters at ``--speed 0``: a market SIGKILLed while collecting an interval gets that
interval's meter samples again after its restart (the emulator answers the repeated
clock with the same samples, the market ignores the ones it already has), and a meter
that never reports cannot stall the market (``[live] complete_timeout_s``)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService
from scenarios.config.loader import load_scenario
from scenarios.errors import ScenarioError

FOUR_METERS = (Path(__file__).parent / "four_meters.toml").read_text(encoding="utf-8")

KILLED_AT, TOTAL = 3, 6
METERED = (
    """
name = "live-meters-resend"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 11
[community]
households = 4
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
complete_timeout_s = 20
reconnect_grace_s = 0.5
"""
    + FOUR_METERS
)


class HeldEmulator(MeterEmulator):
    """Holds its samples from interval ``hold_at`` on until :attr:`release` is set (a
    slow meter: the market keeps collecting that interval meanwhile)."""

    def __init__(self, *args: Any, hold_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold_at = hold_at
        self.holding = threading.Event()
        self.release = threading.Event()

    def publish_interval(self, t: int) -> None:
        if t >= self.hold_at and not self.release.is_set():
            self.holding.set()
            self.release.wait(30)
        super().publish_interval(t)


def test_market_killed_while_collecting_gets_the_meters_samples_again(
    mosquitto, live_cli: Any, tmp_path: Path, equal_to_batch: Any, waiting: Any, market_thread: Any
) -> None:
    path = tmp_path / "metered.toml"
    path.write_text(METERED, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"
    fast = MeterEmulator(scenario, config, formats=("tasmota", "shelly", "dsmr")).start()
    slow = HeldEmulator(scenario, config, formats=("generic",), hold_at=KILLED_AT).start()
    proc = None
    try:
        proc = live_cli(path, mosquitto.port, state, TOTAL, "--no-agents")
        # the market collects KILLED_AT: the fast meters have published it, the slow
        # one not yet
        waiting(lambda: slow.holding.is_set() or proc.poll() is not None, "the gate of t=3")
        assert proc.poll() is None, proc.stderr.read().decode()
        waiting(lambda: fast.last_t == KILLED_AT, "the fast meters' samples of t=3")
        assert fast.bus.drain(10)
        time.sleep(0.3)  # delivered to the market, which took them into its trackers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(read_ledger(state)) == KILLED_AT

        market = MarketService(scenario, config, state, speed=0, intervals=TOTAL)
        running = market_thread(market)
        running.wait_collecting(KILLED_AT)
        slow.release.set()  # the slow meter answers both clocks of t=3: one is a repeat
        running.finish(30, "the restarted market did not finish")
    finally:
        slow.release.set()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            assert proc.stderr is not None
            proc.stderr.close()
        fast.stop()
        slow.stop()
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(TOTAL)), "an interval twice or missing"
    results = [r["result"] for r in ledger]
    assert [r["counts"]["meters_incomplete"] for r in results] == [0] * TOTAL
    assert all(r["counts"]["meter_readings"] == 4 for r in results)
    assert fast.resent >= 1 and slow.resent >= 1
    # the repeats were ignored as duplicates: nothing rejected, no gap, no reset
    assert sum(market.stats.rejected.values()) == 0
    assert sum(tr.duplicates for tr in market.trackers.values()) > 0
    assert all(tr.gaps == 0 and tr.resets == 0 for tr in market.trackers.values())
    equal_to_batch(results, scenario, tmp_path / "batch", books=[r["book"] for r in ledger])


def test_a_meter_that_never_reports_closes_the_gate_after_the_timeout(
    mosquitto, tmp_path: Path, market_thread: Any, two_meters: Any
) -> None:
    """``gen-1`` never reports: each gate closes after ``complete_timeout_s`` (0.5 s)."""
    scenario = load_scenario(two_meters(0.5))
    config = mosquitto.config
    logged: list[str] = []
    meters = MeterEmulator(scenario, config, formats=("tasmota",)).start()
    market = MarketService(
        scenario, config, tmp_path / "state", speed=0, intervals=3, log=logged.append
    )
    began = time.monotonic()
    try:
        market_thread(market).finish(
            15, "the market waited for the silent meter beyond the timeout"
        )
    finally:
        meters.stop()
    assert time.monotonic() - began < 10
    results = market.results
    assert [r["t"] for r in results] == [0, 1, 2]
    assert [r["counts"]["meters_incomplete"] for r in results] == [1, 1, 1]
    assert [r["counts"]["meter_readings"] for r in results] == [1, 1, 1]
    assert all(w.closed_at - w.opened_at >= 0.45 for w in market.stats.ingest)
    assert sum("gate closed after 0.5 s" in line for line in logged) == 3
    # the emulated meter's energy is in, the silent one's household has none
    assert market.trackers["tas-1"].last is not None
    assert market.trackers["gen-1"].last is None


@pytest.mark.parametrize("value", [0, -1])
def test_complete_timeout_must_be_positive(two_meters: Any, value: float) -> None:
    with pytest.raises(ScenarioError, match="complete_timeout_s"):
        load_scenario(two_meters(value))
