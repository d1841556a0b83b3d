"""The ACL written by ``p2pgrid acl`` makes Mosquitto refuse a publish to another agent's
topic, and lets a household publish only its own p2p
proposals (``peers/<itself>/+``) and read only those sent to it (``peers/+/<itself>``)."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from live.p2p_topics import peers_topic
from live.protocol import topics_for
from scenarios.config.schema import Scenario

from .conftest import AclBroker


def _client(port: int, user: str, password: str, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.username_pw_set(user, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.is_connected(), f"{user} could not connect"
    return c


def _subscribed(c: mqtt.Client, topic: str) -> None:
    done = threading.Event()
    c.on_subscribe = lambda *_: done.set()
    c.subscribe(topic, 1)
    assert done.wait(10), f"subscription to {topic} was not acknowledged"


def test_acl_lets_each_agent_write_only_its_own_topics(
    e2e_scenario: Scenario, e2e_acl: AclBroker
) -> None:
    creds, port = e2e_acl.creds, e2e_acl.port
    root = topics_for(e2e_scenario).root
    got: list[str] = []
    market = _client(port, "market", creds["market"], "acl-market")
    market.on_message = lambda c, u, m: got.append(m.topic)
    _subscribed(market, f"{root}/agents/#")
    h1 = _client(port, "h0001", creds["h0001"], "acl-h0001")
    h1.publish(f"{root}/agents/h0002/orders", b'{"t":0,"orders":[]}', qos=1).wait_for_publish(5)
    # Mosquitto may drop the connection of a client that publishes where it may not:
    # publish the allowed message from a fresh connection of the same account
    h1b = _client(port, "h0001", creds["h0001"], "acl-h0001-b")
    h1b.publish(f"{root}/agents/h0001/orders", b'{"t":0,"orders":[]}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for c in (market, h1, h1b):
        c.loop_stop()
        c.disconnect()
    assert got == [f"{root}/agents/h0001/orders"]
    assert (e2e_acl.folder / "passwd").read_text().startswith("market:$7$101$")


def test_acl_lets_a_household_read_its_own_bill_and_everyone_the_checkpoint(
    e2e_scenario: Scenario, e2e_acl: AclBroker
) -> None:
    """The market publishes the retained checkpoint and two households' bills; h0001,
    subscribed to every bill and the checkpoint, gets its own bill and the checkpoint
    only; its forged checkpoint never replaces the market's (nor reaches anyone)."""
    creds, port = e2e_acl.creds, e2e_acl.port
    topics = topics_for(e2e_scenario)
    market = _client(port, "market", creds["market"], "acl-market")
    market.publish(topics.checkpoint, b'{"v":1,"seq":0}', qos=1, retain=True).wait_for_publish(5)
    forger = _client(port, "h0002", creds["h0002"], "acl-h0002")
    forger.publish(topics.checkpoint, b'{"v":1,"seq":9}', qos=1, retain=True).wait_for_publish(5)
    got: list[tuple[str, bytes]] = []
    h1 = _client(port, "h0001", creds["h0001"], "acl-h0001")
    h1.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload)))
    subscribed = threading.Event()
    h1.on_subscribe = lambda *_: subscribed.set()
    h1.subscribe([(topics.bill("+"), 1), (topics.checkpoint, 1)])
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


def test_h0002_cannot_publish_into_h0001s_proposals(
    e2e_scenario: Scenario, e2e_acl: AclBroker
) -> None:
    creds, port = e2e_acl.creds, e2e_acl.port
    topics = topics_for(e2e_scenario)
    got: dict[str, list[str]] = {"h0001": [], "h0003": []}
    readers = []
    for h in got:
        c = _client(port, h, creds[h], f"peers-{h}")
        c.on_message = lambda _c, _u, m, h=h: got[h].append(m.topic)
        # every account asks for every proposal; the broker delivers only its own
        _subscribed(c, peers_topic(topics, "+", "+"))
        readers.append(c)
    h2 = _client(port, "h0002", creds["h0002"], "peers-h0002")
    forged = peers_topic(topics, "h0001", "h0003")  # h0002 pretending to be h0001
    h2.publish(forged, b'{"v":1}', qos=1).wait_for_publish(5)
    # the broker may drop a client that publishes where it may not: a fresh connection
    h2b = _client(port, "h0002", creds["h0002"], "peers-h0002-b")
    for to in ("h0001", "h0003"):
        h2b.publish(peers_topic(topics, "h0002", to), b'{"v":1}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not (got["h0001"] and got["h0003"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for c in (*readers, h2, h2b):
        c.loop_stop()
        c.disconnect()
    assert got["h0001"] == [peers_topic(topics, "h0002", "h0001")]
    assert got["h0003"] == [peers_topic(topics, "h0002", "h0003")]
