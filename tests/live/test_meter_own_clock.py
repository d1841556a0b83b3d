"""Meters on their own clock, over a real Mosquitto: a sample every 6 simulated minutes
whatever the market's gates do (as a real meter publishes). Each interval's gate closes
before the meters reach its end, so it is settled with flagged estimates, and re-issued
(``version`` 2) with the true energy when the counters come: the settled energy (the last
version of every interval) equals the counters' difference over the run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService
from scenarios.loader import load_scenario
from scenarios.schema import Scenario

FOUR_METERS = (Path(__file__).parent / "four_meters.toml").read_text(encoding="utf-8")
INTERVALS, SPEED, EVERY_S = 10, 3600.0, 360.0  # an hour a second, from midnight
OWN_CLOCK = (
    """
name = "meters-own-clock"
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
"""
    + FOUR_METERS
)


@contextmanager
def recording(config: Any, root: str) -> Iterator[dict[str, list[tuple[str, dict]]]]:
    """Every settlement and error the market publishes, as received."""
    got: dict[str, list[tuple[str, dict]]] = {"settlement": [], "errors": []}
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recorder")

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        kind = "errors" if msg.topic.endswith("/errors") else "settlement"
        got[kind].append((msg.topic, json.loads(msg.payload)))

    client.on_message = on_message
    client.on_subscribe = lambda *_: ready.set()
    client.on_connect = lambda c, *_: c.subscribe(
        [(f"{root}/agents/+/settlement", 1), (f"{root}/errors", 1)]
    )
    client.connect("127.0.0.1", config.port)
    client.loop_start()
    assert ready.wait(10)
    try:
        yield got
    finally:
        client.loop_stop()
        client.disconnect()


def run_own_clock(
    scenario: Scenario, config: Any, state: Path, **emulator: Any
) -> tuple[MarketService, MeterEmulator, dict[str, list[tuple[str, dict]]]]:
    market = MarketService(scenario, config, state, speed=SPEED, intervals=INTERVALS)
    meters = MeterEmulator(scenario, config, own_clock_s=EVERY_S, speed=SPEED, **emulator)
    with recording(config, market.topics.root) as got:
        meters.start()
        try:
            market.run()
        finally:
            meters.stop()
    return market, meters, got


def final_versions(got: list[tuple[str, dict]]) -> dict[tuple[str, int], dict]:
    out: dict[tuple[str, int], dict] = {}
    for topic, s in got:
        key = (topic.split("/")[-2], s["t"])
        if key not in out or s["version"] > out[key]["version"]:
            out[key] = s
    return out


def metered(meters: MeterEmulator) -> dict[str, tuple[float, float]]:
    """Each meter household's counters' difference over the run: ``(import, export)``."""
    energy = [meters._energy(t) for t in range(INTERVALS)]
    imp = np.sum([e[0] for e in energy], axis=0)
    exp = np.sum([e[1] for e in energy], axis=0)
    return {m.household: (imp[i], exp[i]) for i, m in enumerate(meters.meters)}


def test_own_clock_meters_settle_every_counted_kwh(mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "own-clock.toml"
    path.write_text(OWN_CLOCK, encoding="utf-8")
    scenario = load_scenario(path)
    state = tmp_path / "state"
    market, meters, got = run_own_clock(scenario, mosquitto.config, state)

    assert market.stats.intervals == INTERVALS
    assert got["errors"] == []
    final = final_versions(got["settlement"])
    want = metered(meters)
    for agent, (imp, exp) in want.items():
        rows = [final[(agent, t)] for t in range(INTERVALS)]
        assert sum(r["demand_kwh"] for r in rows) == pytest.approx(imp, abs=1e-6), agent
        assert sum(r["generation_kwh"] for r in rows) == pytest.approx(exp, abs=1e-6), agent
        assert not any(r["estimated"] for r in rows), agent  # every estimate replaced
    assert min(e for _, e in want.values()) > 0.1  # PV in the morning: both ways

    # estimated at the gate, flagged, and each replaced by exactly one version 2
    firsts = [s for _, s in got["settlement"] if s["version"] == 1]
    estimated = [s for s in firsts if s["estimated"]]
    assert len(estimated) >= INTERVALS * len(want) // 2
    seconds = [s for _, s in got["settlement"] if s["version"] == 2]
    assert len(seconds) == len(estimated) == market.stats.corrections
    # a correction keeps the trades and settles the difference with the utility: the
    # balance and the bill hold in every final version
    mk = scenario.market
    for s in final.values():
        balance = s["generation_kwh"] - s["demand_kwh"] - s["battery_kwh"] - s["ev_kwh"]
        assert balance == pytest.approx(
            s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"],
            abs=1e-9,
        )
        cost = (
            s["grid_import_kwh"] * mk.retail_price_per_kwh
            - s["grid_export_kwh"] * mk.feed_in_price_per_kwh
            + s["paid"]
            - s["received"]
            + s["fees"]
        )
        assert s["cost"] == pytest.approx(cost, abs=1e-9)

    # the ledger holds every version the wire carried (a restart re-issues from it)
    ledger = read_ledger(state)
    issued = [(a, s) for r in ledger for a, s in r.get("settlements", {}).items()]
    issued += [(c["agent"], c["settlement"]) for r in ledger for c in r.get("corrections", [])]
    on_disk = final_versions([(f"x/agents/{a}/settlement", s) for a, s in issued])
    assert on_disk == final
    assert "corrects_after" in ledger[-1]  # the last interval's, after its gate
