"""Meters as real devices behave, over a real Mosquitto.

On their own clock: a sample every 6 simulated minutes whatever the market's gates do.
Each interval's gate closes before the meters reach its end, so it is settled with
flagged estimates, and re-issued (``version`` 2) with the true energy when the counters
come: the settled energy (the last version of every interval) equals the counters'
difference over the run.

Absurd timestamps (a generic ``ts`` of −1e15, a Tasmota in 2100, a pre-NTP Tasmota in
1970, a sample a day ahead) are each reported on ``errors`` and change nothing; a real
Tasmota's ``STATE`` and ``LWT`` are ignored, not reported and not a flood."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from live.bus import BrokerConfig
from live.contract import contract
from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import topics_for
from market.settlement import utility_energy_cost
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.interval import MarketStep

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


Recorded = dict[str, list[Any]]


@pytest.fixture
def recording(mqtt_client: Any) -> Callable[[Any, str], AbstractContextManager[Recorded]]:
    """``with recording(config, root) as got``: every settlement and error the market
    publishes, as received, and what about them breaks ``live/asyncapi.yaml``
    (``got["contract"]``)."""

    @contextmanager
    def record(config: Any, root: str) -> Iterator[Recorded]:
        got: Recorded = {"settlement": [], "errors": [], "contract": []}

        def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            kind = "errors" if msg.topic.endswith("/errors") else "settlement"
            got[kind].append((msg.topic, json.loads(msg.payload)))
            got["contract"].extend(contract().check(msg.topic, msg.payload))

        subscribe = [(f"{root}/agents/+/settlement", 1), (f"{root}/errors", 1)]
        with mqtt_client(config, "recorder", subscribe, on_message):
            yield got

    return record


@dataclass
class Run:
    market: MarketService
    meters: MeterEmulator
    got: Recorded
    first: tuple[np.ndarray, np.ndarray]
    """The meters' counters (import, export) when they started."""


def run_own_clock(
    scenario: Scenario, config: Any, state: Path, recording: Any, **emulator: Any
) -> Run:
    market = MarketService(scenario, config, state, speed=SPEED, intervals=INTERVALS)
    meters = MeterEmulator(scenario, config, own_clock_s=EVERY_S, speed=SPEED, **emulator)
    first = meters.import_kwh.copy(), meters.export_kwh.copy()
    with recording(config, market.topics.root) as got:
        meters.start()
        try:
            market.run()
        finally:
            meters.stop()
    return Run(market, meters, got, first)


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


def test_own_clock_meters_settle_every_counted_kwh(
    mosquitto, tmp_path: Path, recording: Any
) -> None:
    path = tmp_path / "own-clock.toml"
    path.write_text(OWN_CLOCK, encoding="utf-8")
    scenario = load_scenario(path)
    state = tmp_path / "state"
    run = run_own_clock(scenario, mosquitto.config, state, recording)
    market, meters, got = run.market, run.meters, run.got

    assert market.stats.intervals == INTERVALS
    assert got["errors"] == [] and got["contract"] == []
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
    # counted in the results: late at the gate, corrected at a later one (or after the
    # run, in the ledger's correction record)
    counts = [r["counts"] for r in market.results]
    after_run = len(read_ledger(state)[-1].get("corrections", []))
    assert sum(c["meters_incomplete"] for c in counts) == len(estimated)
    assert sum(c["meter_corrections"] for c in counts) + after_run == len(estimated)
    # a correction keeps the trades and the commitment, the difference is imbalance:
    # the balance and the bill hold in every final version
    tariffs = MarketStep(scenario, 4, None).tariffs
    for s in final.values():
        metered_net = s["generation_kwh"] - s["demand_kwh"] - s["battery_kwh"] - s["ev_kwh"]
        assert metered_net == pytest.approx(
            s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"],
            abs=1e-9,
        )
        imbalance = metered_net - s["committed_net_kwh"]
        assert s["imbalance_kwh"] == pytest.approx(imbalance, abs=1e-9)
        committed = s["grid_export_kwh"] - s["grid_import_kwh"] - imbalance
        cost = (
            float(utility_energy_cost(np.array([committed]), tariffs)[0])
            + max(-imbalance, 0.0) * tariffs.shortfall_price_per_kwh
            - max(imbalance, 0.0) * tariffs.surplus_price_per_kwh
            + s["paid"]
            - s["received"]
            + s["fees"]
        )
        assert s["cost"] == pytest.approx(cost, abs=1e-9)

    # reliability (window 96 > the run): each first version's estimated_share is the
    # household's estimated intervals so far over the intervals so far; a correction
    # keeps the scores of the version it replaces
    for agent in want:
        v1 = {
            s["t"]: s
            for topic, s in got["settlement"]
            if s["version"] == 1 and topic.split("/")[-2] == agent
        }
        for t, s in v1.items():
            late = sum(v1[u]["estimated"] for u in range(t + 1))
            assert s["estimated_share"] == pytest.approx(late / (t + 1)), (agent, t)
            assert final[(agent, t)]["estimated_share"] == s["estimated_share"]
        assert v1[INTERVALS - 1]["estimated_share"] > 0

    # the ledger holds every version the wire carried (a restart re-issues from it)
    ledger = read_ledger(state)
    issued = [(a, s) for r in ledger for a, s in r.get("settlements", {}).items()]
    issued += [(c["agent"], c["settlement"]) for r in ledger for c in r.get("corrections", [])]
    on_disk = final_versions([(f"x/agents/{a}/settlement", s) for a, s in issued])
    assert on_disk == final
    assert "corrects_after" in ledger[-1]  # the last interval's, after its gate


ABSURD_AT, TOTAL = 3, 6
METERED = (
    """
name = "meters-absurd"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 12
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
STATE = {
    "Time": "2026-06-01T00:10:00",
    "Uptime": "0T00:10:02",
    "UptimeSec": 602,
    "Heap": 26,
    "SleepMode": "Dynamic",
    "Sleep": 50,
    "LoadAvg": 19,
    "MqttCount": 1,
    "POWER": "ON",
    "Wifi": {"AP": 1, "SSId": "home", "RSSI": 62, "Signal": -69, "Channel": 6},
}


class RealDevices(MeterEmulator):
    """The emulated meters plus what broken clocks and real devices also send: a fresh
    Tasmota's pre-NTP first sample and a generic ``ts`` of −1e15 before the meters' first
    samples; a Tasmota in 2100 and a DSMR sample a day ahead after interval
    :data:`ABSURD_AT`; and every interval Tasmota's ``STATE`` (more than the meter's
    flood budget in interval 2) and ``LWT``."""

    absurd = 4

    def publish_interval(self, t: int) -> None:
        first = t > self.last_t
        topic = self.topics.meter
        if first and t == 0:
            self.bus.publish(topic("generic", "gen-1", "reading"), {"ts": -1e15, "import_kwh": 5.0})
            self.bus.publish(
                topic("tasmota", "tas-1", "tele/SENSOR"),
                {"Time": "1970-01-01T00:00:10", "ENERGY": {"Total": 3.0, "Power": 90}},
            )
        for _ in range(60 if t == 2 else 3):
            self.bus.publish(topic("tasmota", "tas-1", "tele/STATE"), STATE)
        self.bus.publish(topic("tasmota", "tas-1", "tele/LWT"), "Online")
        super().publish_interval(t)
        if first and t == ABSURD_AT:
            self.bus.publish(
                topic("tasmota", "tas-1", "tele/SENSOR"),
                {"Time": "2100-01-01T00:00:00", "ENERGY": {"Total": 1e6, "Power": 90}},
            )
            ahead = self.inputs.stamps[t + 1] + dt.timedelta(days=1)
            self.bus.publish(
                topic("dsmr", "dsmr-1", "json"),
                {"timestamp": ahead.isoformat(), "electricity_delivered_1": 1e5},
            )


@pytest.mark.parametrize("speed", [0.0, 1800.0])
def test_absurd_timestamps_are_reported_and_change_nothing(
    mosquitto, tmp_path: Path, equal_to_batch: Any, recording: Any, market_thread: Any, speed: float
) -> None:
    """Unpaced, and paced at one 30-minute interval a second (where every gate must
    close on time: never behind the clock)."""
    path = tmp_path / "absurd.toml"
    path.write_text(METERED, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"
    market = MarketService(scenario, config, state, speed=speed, intervals=TOTAL)
    meters = RealDevices(scenario, config)
    with recording(config, market.topics.root) as got:
        meters.start()
        began = time.monotonic()
        try:
            market_thread(market).finish(90)
        finally:
            meters.stop()
    took = time.monotonic() - began
    reasons = [e["reason"] for _, e in got["errors"]]
    assert len(reasons) == RealDevices.absurd, reasons
    assert sum("before the open interval" in r for r in reasons) == 2  # -1e15 and 1970
    assert sum("the meter's clock is ahead" in r for r in reasons) == 2  # 2100, a day ahead
    assert market.stats.meter_companions == 3 * (TOTAL - 1) + 60 + TOTAL
    ledger = read_ledger(state)
    results = [r["result"] for r in ledger]
    assert [r["counts"]["meters_incomplete"] for r in results] == [0] * TOTAL
    # bounded: every interval settled in time, nothing spread far, the ledger's lines
    # alike (the tracker state they carry holds the open interval at most)
    assert took < 60 and market.stats.behind == 0
    assert all(len(tr.energy) <= 1 and not tr.pending for tr in market.trackers.values())
    sizes = [len(json.dumps(r)) for r in ledger]
    assert max(sizes) < 1.5 * min(sizes), sizes
    equal_to_batch(results, scenario, tmp_path / "batch", books=[r["book"] for r in ledger])


SHELLY = """
name = "meters-shelly-gen2"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 60
seed = 6
[community]
households = 2
pv_share = 1.0
[grid]
check = "off"
[[live.meters]]
id = "shelly-1"
format = "shelly"
household = "h0001"
[[live.meters]]
id = "shelly-2"
format = "shelly"
household = "h0002"
"""


def test_shelly_gen2_without_ts_keeps_its_counters(
    mosquitto, tmp_path: Path, recording: Any
) -> None:
    """``em:0`` and ``emdata:0`` without ``ts``, stamped on arrival (so at different
    moments): the counters stay the energy, import and export apart. Settled, plus what
    the arrival stamps put past the last interval's end (still in the tracker), is the
    counters' difference to 1e-6 kWh (before: −65 %, import and export netted). Against
    the profiles only the run's edge differs (at an hour a second, 0.1 s on the wire
    stamps the last samples 6 minutes late, past the run's end): more than 70 % each.
    """
    path = tmp_path / "shelly.toml"
    path.write_text(SHELLY, encoding="utf-8")
    scenario = load_scenario(path)
    run = run_own_clock(
        scenario, mosquitto.config, tmp_path / "state", recording, unstamped=("shelly",)
    )
    assert run.market.stats.intervals == INTERVALS
    assert run.got["errors"] == [] and run.got["contract"] == []
    final = final_versions(run.got["settlement"])
    profile = metered(run.meters)
    for i, meter in enumerate(run.meters.meters):
        rows = [final[(meter.household, t)] for t in range(INTERVALS)]
        tr = run.market.trackers[meter.id]
        past_end = tr.energy.get(INTERVALS, [0.0, 0.0])
        assert tr.last is not None and tr.last.import_kwh is not None
        assert tr.last.export_kwh is not None
        imp = sum(r["demand_kwh"] for r in rows)
        exp = sum(r["generation_kwh"] for r in rows)
        assert imp + past_end[0] == pytest.approx(tr.last.import_kwh - run.first[0][i], abs=1e-6)
        assert exp + past_end[1] == pytest.approx(tr.last.export_kwh - run.first[1][i], abs=1e-6)
        want_imp, want_exp = profile[meter.household]
        assert want_exp > 0.1
        assert imp > 0.7 * want_imp and exp > 0.7 * want_exp


LATE = """
name = "meters-late-restart"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 8
[community]
households = 4
[grid]
check = "off"
[live]
close_when_complete = true
complete_timeout_s = 1.0
"""
FIRST_RUN, SECOND_RUN = 3, 6


class LateMeters(MeterEmulator):
    """Each interval's last sample (at its end) comes with the next clock: every gate
    closes (after ``complete_timeout_s``) with the meters short of the interval's end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[tuple[Any, ...]] = []

    def publish_interval(self, t: int) -> None:
        held, self.held = self.held, []
        for sample in held:
            super()._publish(*sample)
        super().publish_interval(t)

    def _publish(self, meter: Any, time_s: float, *rest: Any) -> None:
        if (time_s - self.inputs.stamps[0].timestamp()) % self.interval_s == 0 and time_s > (
            self.inputs.stamps[0].timestamp()
        ):
            self.held.append((meter, time_s, *rest))
        else:
            super()._publish(meter, time_s, *rest)


def test_a_restarted_market_still_corrects_its_estimates(
    mosquitto, tmp_path: Path, recording: Any, market_thread: Any
) -> None:
    """The first market stops after interval 2 with interval 2 estimated (its meters'
    last samples come with the next clock); the ledger holds that estimate, and the
    restarted market re-issues it (``version`` 2) with the true energy. Every interval
    but the very last ends with the profile's energy, exactly."""
    path = tmp_path / "late.toml"
    path.write_text(LATE + FOUR_METERS, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"
    with recording(config, topics_for(scenario).root) as got:
        first = LateMeters(scenario, config).start()
        try:
            MarketService(scenario, config, state, speed=0, intervals=FIRST_RUN).run()
        finally:
            first.stop()
        estimates = read_ledger(state)[-1]["estimates"]
        assert {e["settlement"]["t"] for e in estimates} == {FIRST_RUN - 1}
        assert len(estimates) == 4

        market = MarketService(scenario, config, state, speed=0, intervals=SECOND_RUN)
        second = LateMeters(scenario, config)
        second.import_kwh, second.export_kwh = first.import_kwh, first.export_kwh
        second.last_t, second.held = first.last_t, first.held
        running = market_thread(market)
        running.wait_collecting(FIRST_RUN)  # the clock the meters see is t=3's
        second.start()
        try:
            running.finish(60, "the restarted market did not finish")
        finally:
            second.stop()
    assert got["errors"] == [] and got["contract"] == []
    final = final_versions(got["settlement"])
    for i, meter in enumerate(second.meters):
        for t in range(SECOND_RUN):
            s = final[(meter.household, t)]
            imp, exp = (float(x[i]) for x in second._energy(t))
            if t == SECOND_RUN - 1:  # its last sample never came: the estimate stands
                assert s["version"] == 1 and s["estimated"]
                continue
            assert s["version"] == 2 and not s["estimated"], (meter.id, t)
            assert (s["demand_kwh"], s["generation_kwh"]) == pytest.approx((imp, exp), abs=1e-9)
    corrected_after_restart = [
        c["settlement"]["t"]
        for r in read_ledger(state)[FIRST_RUN:]
        for c in r.get("corrections", [])
    ]
    assert corrected_after_restart.count(FIRST_RUN - 1) == 4


def test_meters_emulate_file_publishes_every_meter_the_file_declares(
    mosquitto, tmp_path: Path, mqtt_client: Any, waiting: Any
) -> None:
    """``p2pgrid meters emulate FILE`` (as the README writes it): one clock, then done;
    every declared meter (tasmota, shelly, dsmr, generic) publishes its native topics."""
    path = tmp_path / "late.toml"
    path.write_text(LATE + FOUR_METERS, encoding="utf-8")
    root = topics_for(load_scenario(path)).root
    seen: set[str] = set()
    watch = [(f"{root}/meters/#", 1)]
    with mqtt_client(
        mosquitto.config, "watcher", watch, lambda c, u, msg: seen.add(msg.topic[len(root) + 1 :])
    ) as client:
        gate = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # a run in progress
        clock = {
            "v": 1,
            "run": "r1",
            "t": 0,
            "interval_start": "2026-06-01T00:00:00+02:00",
            "gate_closes_at": gate.isoformat(),
        }
        client.publish(f"{root}/clock", json.dumps(clock), qos=1, retain=True).wait_for_publish(10)
        cli = (sys.executable, "-c", "from p2pgrid.cli import main; main()")
        url = f"mqtt://127.0.0.1:{mosquitto.port}"
        proc = subprocess.Popen(
            [*cli, "meters", "emulate", str(path), "--broker", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            want = {
                "meters/tasmota/tas-1/tele/SENSOR",
                "meters/shelly/shelly-1/status/emdata:0",
                "meters/shelly/shelly-1/status/em:0",
                "meters/dsmr/dsmr-1/json",
                "meters/generic/gen-1/reading",
            }
            waiting(lambda: want <= seen or proc.poll() is not None, "every meter's topics", 60)
            assert proc.poll() is None, seen
            done = {"v": 1, "run": "r1", "t": 1, "done": True}
            client.publish(f"{root}/clock", json.dumps(done), qos=1, retain=True)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"4 meter(s) (dsmr, generic, shelly, tasmota)" in out
    assert seen == want


def test_a_gate_does_not_wait_for_a_tasmota_whose_last_will_says_offline(
    mosquitto, tmp_path: Path, recording: Any, mqtt_client: Any, two_meters: Any
) -> None:
    """A Tasmota's retained ``LWT`` is ``Offline``: each gate closes as soon as the other
    meter is in, not after ``complete_timeout_s`` (8 s); the offline meter counts in
    ``meters_incomplete``, and nothing is reported."""
    scenario = load_scenario(two_meters(8))
    config = mosquitto.config
    topic = topics_for(scenario).meter("tasmota", "tas-1", "tele/LWT")
    market = MarketService(scenario, config, tmp_path / "state", speed=0, intervals=3)
    meters = MeterEmulator(scenario, config, formats=("generic",))
    with mqtt_client(config, "tasmota-off") as device, recording(config, market.topics.root) as got:
        device.publish(topic, b"Offline", qos=1, retain=True).wait_for_publish(10)
        meters.start()
        began = time.monotonic()
        try:
            market.run()
        finally:
            meters.stop()
    assert time.monotonic() - began < 8
    assert got["errors"] == []
    assert [r["counts"]["meters_incomplete"] for r in market.results] == [1, 1, 1]
    assert market.stats.meter_companions == 1


def test_arrival_stamps_never_go_back_when_a_gate_closes_late(tmp_path: Path) -> None:
    """The cause of a CI failure on a loaded machine: paced, a gate that closed 30 % late
    had stamped samples at 1.3 intervals past the interval's start, and the next interval's
    clock began at its own start, so a Shelly's next sample (no ``ts``, stamped on arrival)
    was "older than the previous one" and rejected. The arrival clock never goes back."""
    path = tmp_path / "own-clock.toml"
    path.write_text(OWN_CLOCK, encoding="utf-8")
    market = MarketService(
        load_scenario(path), BrokerConfig("127.0.0.1", 1), tmp_path / "state", speed=SPEED
    )
    clock, wall_len = market.arrival, market.gate.wall_len
    assert wall_len == pytest.approx(market.interval_s / SPEED)
    market.ingest.open(0, time.time() - 1.3 * wall_len, wall_len)  # gate of 0 closes 30 % late
    late = clock.now()
    assert late == pytest.approx(clock.start_s + 1.3 * market.interval_s, rel=1e-6)
    market.ingest.open(1, time.time(), wall_len)  # interval 1 opens
    assert clock.now() >= late
    time.sleep(0.5 * wall_len)  # and runs on with the wall clock once it has caught up
    assert clock.now() == pytest.approx(
        clock.start_s + 1.5 * market.interval_s, abs=0.1 * market.interval_s
    )
    market._close()
