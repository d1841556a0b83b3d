"""Every message of a live run over a real Mosquitto follows ``live/asyncapi.yaml``.

A plain paho client subscribed to the whole topic root records everything: the market's
clock, results, settlements, errors and status, the simulated households' readings and
orders, and the emulated meters' native payloads in all four formats. Each message is
checked against the channel its topic belongs to; a message on no channel is a failure too.
"""

from __future__ import annotations

import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from live.bus import BrokerConfig
from live.contract import contract
from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.schema import Scenario

INTERVALS = 6
BAD = b'{"v": 1, "t": 0}'  # a reading without its energies


class Recorder:
    """Records every message under the community's topic root."""

    def __init__(self, config: BrokerConfig, root: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="contract-recorder")
        c.on_message = self._on_message
        c.on_connect = lambda cl, *_: cl.subscribe(f"{root}/#", qos=1)
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.connect(config.host, config.port)
        c.loop_start()
        assert self.subscribed.wait(10)
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def publish_after(self, seen: str, topic: str, payload: bytes) -> None:
        """Publish once a message on ``seen`` was recorded (waits up to 20 s)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.lock:
                if any(t == seen for t, _ in self.messages):
                    break
            time.sleep(0.005)
        self.publish(topic, payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_contract_document_is_asyncapi_3_with_a_schema_per_channel() -> None:
    c = contract()
    assert c.document["asyncapi"] == "3.0.0"
    names = {ch.name for ch in c.channels}
    assert {
        "clock",
        "reading",
        "orders",
        "settlement",
        "result",
        "book",
        "errors",
        "status",
        "tasmotaSensor",
        "shellyEmdata",
        "dsmr",
        "generic",
    } <= names
    # the schema says what the market rejects
    topic = "p2pgrid/x/agents/h0001/reading"
    assert c.check(topic, b'{"v": 1, "t": 0, "generation_kwh": 0.5, "demand_kwh": 0.1}') == []
    assert c.check(topic, b'{"v": true, "t": 0, "generation_kwh": 0, "demand_kwh": 0}')
    assert c.check(topic, b'{"v": 1, "t": 0, "generation_kwh": -1, "demand_kwh": 0}')
    assert c.check(topic, b'{"v": 1, "t": 0, "generation_kwh": 0, "demand_kwh": 0, "x": 1}')
    assert c.check("p2pgrid/x/agents/h0001/unknown", b"{}")


def test_every_message_of_a_live_run_follows_the_contract(
    mosquitto: Any, live_clients: Any, e2e_scenario: Scenario, tmp_path: Path
) -> None:
    config = mosquitto.config
    topics = topics_for(e2e_scenario)
    recorder = Recorder(config, topics.root)
    market = MarketService(e2e_scenario, config, tmp_path / "state", speed=0, intervals=INTERVALS)
    bad = topics.reading("h0001")
    try:
        with live_clients(e2e_scenario, config) as (fleet, _meters):
            # one message the market must refuse, so that errors carries a report: sent
            # once the market's clock runs (a fixed delay raced a run this short)
            threading.Thread(
                target=recorder.publish_after, args=(topics.clock, bad, BAD), daemon=True
            ).start()
            market.run()
            assert fleet.wait(20)
    finally:
        recorder.close()
    c = contract()
    sent = [(topic, payload) for topic, payload in recorder.messages if payload != BAD]
    assert len(sent) == len(recorder.messages) - 1
    problems = [p for topic, payload in sent for p in c.check(topic, payload)]
    assert problems == [], "\n".join(problems[:20])
    channels = [c.channel(topic) for topic, _ in recorder.messages]
    seen = {ch.name for ch in channels if ch is not None}  # None: checked above
    expected = {
        "clock",
        "reading",
        "orders",
        "settlement",
        "result",
        "checkpoint",
        "bill",
        "errors",
        "status",
        "tasmotaSensor",
        "shellyEmdata",
        "shellyEm",
        "dsmr",
        "generic",
    }
    assert expected <= seen, f"never seen: {sorted(expected - seen)}"
    n = e2e_scenario.community.households
    settlements = [t for t, _ in recorder.messages if t.endswith("/settlement")]
    assert len(settlements) >= INTERVALS * n
    assert market.stats.intervals == INTERVALS
    errors = [payload for topic, payload in sent if topic == topics.errors]
    assert any(bad.encode() in e for e in errors), errors  # the refused message, reported


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v": true, "t": 0, "generation_kwh": 0, "demand_kwh": 0}',
        b'{"v": 1, "t": 0, "generation_kwh": "1", "demand_kwh": 0}',
        b'{"v": 1, "t": 0, "generation_kwh": 0, "demand_kwh": 0, "extra": 1}',
        b'{"v": 1, "generation_kwh": 0, "demand_kwh": 0}',
    ],
)
def test_what_the_contract_forbids_the_market_rejects(payload: bytes) -> None:
    """The schema and the market's own checks agree on malformed readings."""
    from live.protocol import Rejected, parse_json, read_reading

    topic = "p2pgrid/x/agents/h0001/reading"
    assert contract().check(topic, payload)
    with pytest.raises(Rejected):
        read_reading(parse_json(payload, 16_384), "h0001", 0, 100.0)


def test_the_contract_document_names_no_key_twice() -> None:
    """YAML keeps the last of two equal keys silently: two helpers adding a schema of the
    same name would lose one without a word."""

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [loader.construct_object(k) for k, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        assert not twice, f"live/asyncapi.yaml names {twice} twice (line {node.start_mark.line})"
        return yaml.SafeLoader.construct_mapping(loader, node)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    text = resources.files("live").joinpath("asyncapi.yaml").read_text(encoding="utf-8")
    assert yaml.load(text, Loader=Strict)["asyncapi"].startswith("3.")
