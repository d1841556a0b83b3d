"""Meters on their own clocks across a market killed with SIGKILL and restarted.

Two generic meters, played by this test's own paho 2.x client as real devices would
behave, on the fixture's Mosquitto (persistent, the clock retained):

- ``gen-a`` (h0001) imports 1.2 kWh an hour and its clock is 150 s slow; it reports
  three samples an interval (split), the one at the interval's end only with the next
  clock (late: every gate closes on an estimate that a correction replaces);
- ``gen-b`` (h0002) exports 0.6 kWh an hour; its first sample comes from a clock not yet
  set (1970, rejected and reported), then its clock runs 30 s fast and gains 1 % (36 s an
  hour); two samples an interval.

The market (``p2pgrid live --state``, its own process) is killed with SIGKILL after
three intervals and restarted on the same state. The meters' energy is the truth: what
the ledger settles (the last version of every interval) is what their counters counted
over the run, and the bills follow it (no orders: all of it with the utility).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from live.ledger import read_ledger
from live.protocol import topics_for
from scenarios.config.loader import load_scenario

INTERVALS, INTERVAL_S = 6, 3600.0
SCENARIO = """
name = "devices-clocks"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 60
[community]
households = 2
[market]
retail_price_per_kwh = 0.32
feed_in_price_per_kwh = 0.08
[grid]
check = "off"
[live]
close_when_complete = true
complete_timeout_s = 1.0
[[live.meters]]
id = "gen-a"
format = "generic"
household = "h0001"
[[live.meters]]
id = "gen-b"
format = "generic"
household = "h0002"
"""
A_RATE, A_OFFSET_S, A_FIRST = 1.2, -150.0, 100.0  # kWh/h, s, kWh
B_RATE, B_OFFSET_S, B_DRIFT, B_FIRST = 0.6, 30.0, 0.01, 50.0


class Devices:
    """The two meters, answering every clock (a repeated one too, after the restart)."""

    def __init__(self, root: str, start_s: float) -> None:
        self.root, self.start_s = root, start_s
        self.held: list[tuple[str, dict[str, float]]] = []
        self.sent_1970 = False
        self.lock = threading.Lock()
        self.clocks: list[int] = []

    def a_sample(self, true_s: float) -> dict[str, float]:
        hours = (true_s - self.start_s) / 3600.0
        return {"ts": true_s + A_OFFSET_S, "import_kwh": A_FIRST + A_RATE * hours}

    def b_sample(self, true_s: float) -> dict[str, float]:
        hours = (true_s - self.start_s) / 3600.0
        stamp = self.start_s + B_OFFSET_S + (true_s - self.start_s) * (1 + B_DRIFT)
        return {"ts": stamp, "export_kwh": B_FIRST + B_RATE * hours}

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        clock = json.loads(msg.payload)
        if "interval_start" not in clock:
            return
        start = dt.datetime.fromisoformat(clock["interval_start"]).timestamp()
        a, b = (
            f"{self.root}/meters/generic/gen-a/reading",
            f"{self.root}/meters/generic/gen-b/reading",
        )
        with self.lock:
            t = int(clock["t"])
            repeated = bool(self.clocks) and t <= self.clocks[-1] and not clock.get("done")
            self.clocks.append(t)
            if repeated:  # a restarted market asks again: what was sent stays sent
                return
            out: list[tuple[str, dict[str, float]]] = []
            if not self.sent_1970:
                out.append((b, {"ts": 10.0, "export_kwh": 0.0}))
                self.sent_1970 = True
            # the end of the last interval comes now, late, and at t = 0 the start
            out += self.held or [(a, self.a_sample(start))]
            out += [(a, self.a_sample(start + k * 1200.0)) for k in (1, 2)]
            self.held = [(a, self.a_sample(start + INTERVAL_S))]
            if clock.get("done"):
                out += self.held
            out += [(b, self.b_sample(start + k * 1800.0)) for k in (0, 1, 2)]
        for topic, body in out:
            client.publish(topic, json.dumps(body), qos=1)


def _final(state: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for record in read_ledger(state):
        issued = list(record.get("settlements", {}).items())
        issued += [(c["agent"], c["settlement"]) for c in record.get("corrections", [])]
        for agent, s in issued:
            key = (agent, s["t"])
            if key not in out or s["version"] >= out[key]["version"]:
                out[key] = s
    return out


def test_meters_on_their_own_clocks_survive_a_sigkilled_market(
    mosquitto, live_cli: Any, mqtt_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "clocks.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    topics = topics_for(scenario)
    state = tmp_path / "state"
    start_s = dt.datetime.fromisoformat("2026-06-01T00:00:00+02:00").timestamp()
    devices = Devices(topics.root, start_s)
    errors: list[dict[str, Any]] = []

    def on_error(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        errors.append(json.loads(msg.payload))

    args = (path, mosquitto.port, state, INTERVALS, "--no-agents")
    with (
        mqtt_client(mosquitto.config, "devices", [(topics.clock, 1)], devices.on_message),
        mqtt_client(mosquitto.config, "errors", [(topics.errors, 1)], on_error),
    ):
        proc = live_cli(*args)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(read_ledger(state)) >= 3:
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
        killed_at = len(read_ledger(state))
        assert 3 <= killed_at < INTERVALS
        proc = live_cli(*args)
        rc = proc.wait(120)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert rc == 0, err
        time.sleep(0.5)

    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(INTERVALS)), "an interval twice or missing"
    reasons = [e["reason"] for e in errors]
    assert len(reasons) == 1 and "pre-NTP" in reasons[0], reasons
    final = _final(state)
    a = [final[("h0001", t)] for t in range(INTERVALS)]
    b = [final[("h0002", t)] for t in range(INTERVALS)]
    # gen-a: 1.2 kWh in every interval, across the kill; its slow clock only shifts which
    # samples an interval's counters come from (the first, stamped 150 s before the
    # run, is spread in proportion to time)
    assert [s["demand_kwh"] for s in a] == pytest.approx([A_RATE] * INTERVALS, abs=1e-6)
    # each gate closed on an estimate, and a correction replaced it, across the kill too;
    # the last interval's end sample comes after the run: its (flagged) estimate stands
    assert [(s["version"], s["estimated"]) for s in a] == [(2, False)] * (INTERVALS - 1) + [
        (1, True)
    ]
    # gen-b: its stamps run 1 % fast, so an interval of its stamps holds 1/1.01 of an
    # hour's 0.6 kWh; the first interval starts with its first sample, 30 s in
    per_interval = B_RATE / (1 + B_DRIFT)
    want_b = [per_interval * (INTERVAL_S - B_OFFSET_S) / INTERVAL_S] + [per_interval] * (
        INTERVALS - 1
    )
    assert [s["generation_kwh"] for s in b] == pytest.approx(want_b, abs=1e-6)
    # the settled energy is the counters' difference between the samples the run holds
    last_b = devices.b_sample(start_s + INTERVALS * INTERVAL_S)
    first_b = devices.b_sample(start_s)
    counted = (
        (start_s + INTERVALS * INTERVAL_S - first_b["ts"])
        / (last_b["ts"] - first_b["ts"])
        * (last_b["export_kwh"] - first_b["export_kwh"])
    )
    assert sum(s["generation_kwh"] for s in b) == pytest.approx(counted, abs=1e-6)
    # the market bids for a meter household as a price taker from what it metered: gen-b's
    # export goes to gen-a at one price, the rest with the utility; the bills follow the
    # meters (energy identity with metered values, money to 1e-9)
    for sa, sb in zip(a, b, strict=True):
        assert sa["bought_kwh"] == pytest.approx(sb["sold_kwh"], abs=1e-9)
        assert sb["sold_kwh"] == pytest.approx(sb["generation_kwh"], abs=1e-9)
        for s in (sa, sb):
            net = s["generation_kwh"] - s["demand_kwh"]
            exchange = s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"]
            assert net == pytest.approx(exchange - s["grid_import_kwh"], abs=1e-9)
            utility = 0.32 * s["grid_import_kwh"] - 0.08 * s["grid_export_kwh"]
            bill = utility + s["paid"] - s["received"] + s["fees"]
            assert s["cost"] == pytest.approx(bill, abs=1e-9)
            assert abs(s["imbalance_kwh"]) < 1e-9
        price = sa["price_per_kwh"]
        assert sa["paid"] == pytest.approx(price * sa["bought_kwh"], abs=1e-9)
        assert sb["received"] == pytest.approx(price * sb["sold_kwh"], abs=1e-9)
    # the rejected 1970 sample counts against gen-b's reliability in its first interval
    assert b[0]["rejected_per_interval"] == 1.0
