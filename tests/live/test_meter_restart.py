"""Meter state in the ledger: a market restarted between intervals continues every
meter's counters from the committed state, so the first interval after the restart is
complete and equal to the batch run (without it, the energy before the first new sample
would be lost)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService
from scenarios.config.loader import load_scenario

FOUR_METERS = (Path(__file__).parent / "four_meters.toml").read_text(encoding="utf-8")

FIRST, TOTAL = 5, 10
METERED = (
    """
name = "live-meters-restart"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 9
[community]
households = 4
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
reconnect_grace_s = 0.5
"""
    + FOUR_METERS
)


def test_restarted_market_continues_the_meters_counters(
    mosquitto, tmp_path: Path, equal_to_batch: Any, market_thread: Any
) -> None:
    path = tmp_path / "metered.toml"
    path.write_text(METERED, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"

    first = MeterEmulator(scenario, config).start()
    try:
        MarketService(scenario, config, state, speed=0, intervals=FIRST).run()
    finally:
        first.stop()
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(FIRST))
    assert set(ledger[-1]["meters"]) == {"tas-1", "shelly-1", "dsmr-1", "gen-1"}

    # the meters kept counting while the market was down (a real meter does): the next
    # samples continue the counters and carry no sample at the start of the interval
    market = MarketService(scenario, config, state, speed=0, intervals=TOTAL)
    running = market_thread(market)
    running.wait_collecting(FIRST)
    second = MeterEmulator(scenario, config)
    second.import_kwh, second.export_kwh = first.import_kwh, first.export_kwh
    second.last_t = first.last_t
    second.start()
    try:
        running.finish(60, "the restarted market did not finish")
    finally:
        second.stop()
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(TOTAL))
    results = [r["result"] for r in ledger]
    assert all(r["counts"]["meters_incomplete"] == 0 for r in results[FIRST:])
    assert sum(market.stats.rejected.values()) == 0
    equal_to_batch(results, scenario, tmp_path / "batch", books=[r["book"] for r in ledger])
