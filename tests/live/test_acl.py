"""The ACL written by ``p2pgrid acl`` makes Mosquitto refuse a publish to another agent's
topic."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from typer.testing import CliRunner

from live.protocol import topics_for
from p2pgrid.cli import app
from scenarios.config.schema import Scenario


def _client(port: int, user: str, password: str, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.username_pw_set(user, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_acl_lets_each_agent_write_only_its_own_topics(
    e2e_file: Path, e2e_scenario: Scenario, tmp_path: Path, acl_broker
) -> None:
    out = tmp_path / "acl"
    result = CliRunner().invoke(app, ["acl", str(e2e_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    creds = json.loads((out / "credentials.json").read_text())
    broker = acl_broker(out)
    root = topics_for(e2e_scenario).root
    got: list[str] = []
    market = _client(broker.port, "market", creds["market"], "acl-market")
    market.on_message = lambda c, u, m: got.append(m.topic)
    subscribed = threading.Event()
    market.on_subscribe = lambda *_: subscribed.set()
    deadline = time.monotonic() + 10
    while not market.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    market.subscribe(f"{root}/agents/#", 1)
    assert subscribed.wait(10), "the market's subscription was not acknowledged"
    h1 = _client(broker.port, "h0001", creds["h0001"], "acl-h0001")
    while not h1.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    h1.publish(f"{root}/agents/h0002/orders", b'{"t":0,"orders":[]}', qos=1).wait_for_publish(5)
    # Mosquitto may drop the connection of a client that publishes where it may not:
    # publish the allowed message from a fresh connection of the same account
    h1b = _client(broker.port, "h0001", creds["h0001"], "acl-h0001-b")
    while not h1b.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    h1b.publish(f"{root}/agents/h0001/orders", b'{"t":0,"orders":[]}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for c in (market, h1, h1b):
        c.loop_stop()
        c.disconnect()
    assert got == [f"{root}/agents/h0001/orders"]
    assert (out / "passwd").read_text().startswith("market:$7$101$")


def _connected(c: mqtt.Client) -> mqtt.Client:
    deadline = time.monotonic() + 10
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.is_connected()
    return c


def test_acl_lets_a_household_read_its_own_bill_and_everyone_the_checkpoint(
    e2e_file: Path, e2e_scenario: Scenario, tmp_path: Path, acl_broker
) -> None:
    """The market publishes the retained checkpoint and two households' bills; h0001,
    subscribed to every bill and the checkpoint, gets its own bill and the checkpoint
    only; its forged checkpoint never replaces the market's (nor reaches anyone)."""
    out = tmp_path / "acl"
    result = CliRunner().invoke(app, ["acl", str(e2e_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    creds = json.loads((out / "credentials.json").read_text())
    broker = acl_broker(out)
    topics = topics_for(e2e_scenario)
    market = _connected(_client(broker.port, "market", creds["market"], "acl-market"))
    market.publish(topics.checkpoint, b'{"v":1,"seq":0}', qos=1, retain=True).wait_for_publish(5)
    forger = _connected(_client(broker.port, "h0002", creds["h0002"], "acl-h0002"))
    forger.publish(topics.checkpoint, b'{"v":1,"seq":9}', qos=1, retain=True).wait_for_publish(5)
    got: list[tuple[str, bytes]] = []
    h1 = _client(broker.port, "h0001", creds["h0001"], "acl-h0001")
    h1.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload)))
    subscribed = threading.Event()
    h1.on_subscribe = lambda *_: subscribed.set()
    _connected(h1).subscribe([(topics.bill("+"), 1), (topics.checkpoint, 1)])
    assert subscribed.wait(10)
    for agent in ("h0001", "h0002"):
        market.publish(topics.bill(agent), f'{{"agent":"{agent}"}}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for c in (market, forger, h1):
        c.loop_stop()
        c.disconnect()
    assert sorted(got) == [
        (topics.bill("h0001"), b'{"agent":"h0001"}'),
        (topics.checkpoint, b'{"v":1,"seq":0}'),
    ]
