"""Client-id takeover under the Mosquitto configuration ``p2pgrid acl`` writes: a household
that keeps connecting with the market's client id (and its own credentials) does not
disconnect the market, which settles every interval with every household; the full book
reaches only the operator account."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from typer.testing import CliRunner

from live.broker import free_port
from live.bus import BrokerConfig
from live.market import MarketService, market_client_id
from live.protocol import topics_for
from p2pgrid.cli import app
from scenarios.config.schema import Scenario

from .conftest import Mosquitto

INTERVALS = 10


def _generated_broker(e2e_file: Path, tmp_path: Path) -> tuple[Mosquitto, dict[str, str]]:
    out = tmp_path / "acl"
    port = free_port()
    res = CliRunner().invoke(
        app, ["acl", str(e2e_file), "--out", str(out), "--listen", f"127.0.0.1:{port}"]
    )
    assert res.exit_code == 0, res.output
    conf = (out / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in conf and "allow_anonymous false" in conf
    # the generated file as it is; as root, Mosquitto would drop to a user who cannot
    # read the 0600 password file
    wrapper = tmp_path / "run.conf"
    wrapper.write_text(
        ("user root\n" if os.geteuid() == 0 else "") + f"include_dir {out}\n", encoding="utf-8"
    )
    broker = Mosquitto(port, wrapper)
    broker.start()
    return broker, json.loads((out / "credentials.json").read_text())


def test_household_taking_the_market_client_id_does_not_stop_it(
    e2e_file: Path, e2e_scenario: Scenario, tmp_path: Path, live_clients: Any
) -> None:
    broker, creds = _generated_broker(e2e_file, tmp_path)
    topics = topics_for(e2e_scenario)
    cfg = lambda user: BrokerConfig("127.0.0.1", broker.port, user, creds[user])  # noqa: E731
    stop = threading.Event()
    took: list[int] = []

    def thief() -> None:  # h0001 connects again and again as "p2pgrid-market-live-e2e"
        while not stop.is_set():
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=market_client_id(topics))
            c.username_pw_set("h0001", creds["h0001"])
            c.on_connect = lambda cl, u, f, rc, p: took.append(int(rc.value))
            try:
                c.connect("127.0.0.1", broker.port)
                c.loop_start()
                time.sleep(0.3)
                c.loop_stop()
                c.disconnect()
            except OSError:
                time.sleep(0.1)

    # 30-minute intervals at --speed 3600: one every 0.5 s, the gate closing on the clock
    market = MarketService(e2e_scenario, cfg("market"), tmp_path / "state", 3600, INTERVALS)
    books: list[dict[str, Any]] = []
    stolen: list[str] = []
    operator = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dashboard")
    operator.username_pw_set("operator", creds["operator"])
    operator.on_message = lambda c, u, m: books.append(json.loads(m.payload))
    operator.on_connect = lambda c, *_: c.subscribe(f"{topics.root}/market/book", 1)
    household = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="h2")
    household.username_pw_set("h0002", creds["h0002"])
    household.on_message = lambda c, u, m: stolen.append(m.topic)
    household.on_connect = lambda c, *_: c.subscribe(f"{topics.root}/market/book", 1)
    for c in (operator, household):
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
    t = threading.Thread(target=thief, daemon=True)
    try:
        fleet_cfg, meters_cfg = cfg("fleet"), cfg("meters")
        from live.emulator import MeterEmulator
        from live.fleet import AgentFleet

        fleet = AgentFleet(e2e_scenario, fleet_cfg).start()
        meters = MeterEmulator(e2e_scenario, meters_cfg, power_only=("gen-power",)).start()
        t.start()
        began = time.monotonic()
        stats = market.run()
        wall = time.monotonic() - began
        fleet.wait(20)
        fleet.stop()
        meters.stop()
    finally:
        stop.set()
        t.join(5)
        for c in (operator, household):
            c.loop_stop()
            c.disconnect()
        broker.stop()
    assert len(took) >= 3 and all(rc == 0 for rc in took), took  # the thief got in, as h0001
    assert market.bus.connects == 1, "the market was disconnected"
    assert stats.intervals == INTERVALS
    assert [r["t"] for r in market.results] == list(range(INTERVALS))
    assert all(r["counts"]["missing_agents"] == 0 for r in market.results)
    assert all(r["counts"]["meters_incomplete"] == 0 for r in market.results)
    assert fleet.stats.intervals == INTERVALS
    # its normal rate: never behind the clock, 10 intervals of 0.5 s
    assert stats.behind == 0 and 4.4 <= wall < 8, (stats.behind, wall)
    # the full book (household ids) reached the operator and no household
    assert [b["t"] for b in books] == list(range(INTERVALS))
    assert stolen == []


def test_p2pgrid_live_with_market_credentials_under_the_generated_config(
    e2e_file: Path, e2e_scenario: Scenario, tmp_path: Path
) -> None:
    """The deployment: ``p2pgrid live --broker mqtt://market:…`` with its households and
    meters in its own process (through its one connection), a thief as above."""
    import subprocess

    from live.ledger import read_ledger

    from .conftest import start_live

    broker, creds = _generated_broker(e2e_file, tmp_path)
    topics = topics_for(e2e_scenario)
    stop = threading.Event()
    took: list[int] = []

    def thief() -> None:
        while not stop.is_set():
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=market_client_id(topics))
            c.username_pw_set("h0003", creds["h0003"])
            c.on_connect = lambda cl, u, f, rc, p: took.append(int(rc.value))
            try:
                c.connect("127.0.0.1", broker.port)
                c.loop_start()
                time.sleep(0.3)
                c.loop_stop()
                c.disconnect()
            except OSError:
                time.sleep(0.1)

    t = threading.Thread(target=thief, daemon=True)
    t.start()
    state = tmp_path / "state"
    try:
        proc = start_live(
            e2e_file,
            broker.port,
            state,
            8,
            "--broker",
            f"mqtt://market:{creds['market']}@127.0.0.1:{broker.port}",
            "--speed",
            "3600",
            "--emulate-meters",
            stdout=subprocess.PIPE,
        )
        out, err = proc.communicate(timeout=120)
    finally:
        stop.set()
        t.join(5)
        broker.stop()
    assert proc.returncode == 0, err.decode()
    assert len(took) >= 3 and all(rc == 0 for rc in took), took
    assert "behind the clock 0×" in out.decode(), out.decode()
    ledger = read_ledger(state)
    assert [r["t"] for r in ledger] == list(range(8))
    for r in ledger:
        assert r["result"]["counts"]["missing_agents"] == 0
        # the power-only meter is not emulated as such here: all five meters report
        assert r["result"]["counts"]["meters_incomplete"] == 0
