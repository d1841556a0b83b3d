"""Bad input: rejected with a reason, counted, never a crash, never another agent's loss."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.bus import BrokerConfig
from live.market import MarketService
from live.protocol import Order, topics_for
from scenarios.config.schema import Scenario

T = 3
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
near_valid_orders = st.fixed_dictionaries(
    {
        "t": st.sampled_from([T - 1, T, T + 1, "3", None]),
        "orders": st.lists(
            st.fixed_dictionaries(
                {
                    "side": st.sampled_from(["buy", "sell", "hold"]),
                    "energy_kwh": st.floats(allow_nan=True, allow_infinity=True)
                    | st.integers(-5, 10**7),
                    "price_per_kwh": st.floats(allow_nan=True, allow_infinity=True),
                }
            ),
            max_size=20,
        ),
    },
    optional={"agent_id": st.sampled_from(["h0001", "h0002"]), "v": st.integers(0, 2)},
)
payloads = (
    st.binary(max_size=64)
    | json_values.map(lambda v: json.dumps(v).encode())
    | near_valid_orders.map(lambda v: json.dumps(v).encode())
    | st.just(b"x" * 20_000)
)
topics = st.sampled_from(
    [
        "agents/h0002/orders",
        "agents/h0002/reading",
        "agents/nobody/orders",
        "agents/h0021/reading",
        "meters/tasmota/tas-1/tele/SENSOR",
        "meters/shelly/shelly-1/status/emdata:0",
        "meters/dsmr/dsmr-1/json",
        "meters/generic/gen-1/reading",
        "meters/generic/ghost/reading",
        "meters/dsmr/tas-1/json",
    ]
)


def test_fuzz_every_topic_rejects_with_a_reason_and_spares_other_agents(
    e2e_scenario: Scenario, tmp_path: Path
) -> None:
    market = MarketService(e2e_scenario, BrokerConfig(port=1), tmp_path / "state", speed=0)
    reported: list[dict[str, Any]] = []
    market.ingest.reject = lambda topic, reason, cat: (  # type: ignore[method-assign]
        reported.append({"topic": topic, "reason": reason}),
        market.stats.rejected.update([cat]),
    )
    root = topics_for(e2e_scenario).root
    market.ingest.open(T)
    good = json.dumps(
        {"v": 1, "t": T, "orders": [{"side": "buy", "energy_kwh": 0.5, "price_per_kwh": 0.2}]}
    ).encode()
    market.ingest.on_agent(f"{root}/agents/h0001/orders", good)
    before = market.ingest.book.orders[0]
    assert before == [Order(True, 0.5, 0.2, 0)]

    @settings(
        max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(topic=topics, payload=payloads)
    def check(topic: str, payload: bytes) -> None:
        market.ingest.book.messages.clear()
        n_before = len(reported)
        accepted_before = dict(market.ingest.book.orders), dict(market.ingest.book.readings)
        handler = market.ingest.on_meter if topic.startswith("meters/") else market.ingest.on_agent
        handler(f"{root}/{topic}", payload)  # must not raise
        if len(reported) == n_before:
            # accepted: only that topic's own agent (h0002) or meter changed
            if topic.startswith("agents/"):
                assert topic.startswith("agents/h0002/")
                orders, readings = accepted_before
                assert {k: v for k, v in market.ingest.book.orders.items() if k != 1} == {
                    k: v for k, v in orders.items() if k != 1
                }
                assert {k: v for k, v in market.ingest.book.readings.items() if k != 1} == {
                    k: v for k, v in readings.items() if k != 1
                }
                for o in market.ingest.book.orders.get(1, []):
                    assert math.isfinite(o.energy_kwh) and 0 < o.energy_kwh <= market.ingest.max_kwh
        else:
            assert reported[-1]["reason"], "a rejection without a reason"
        assert market.ingest.book.orders[0] == before, "another agent's orders changed"

    check()
    assert sum(market.stats.rejected.values()) == len(reported) > 0
    market.ledger.close()


BAD = [
    ("agents/h0003/orders", b"{not json"),
    (
        "agents/h0003/orders",
        b'{"v": 1, "t": %d, "orders": [{"side": "buy", "energy_kwh": NaN, "price_per_kwh": 0.1}]}',
    ),
    (
        "agents/h0003/orders",
        b'{"v": 1, "t": %d, "orders": [{"side": "sell", "energy_kwh": -1, "price_per_kwh": 0.1}]}',
    ),
    ("agents/h0003/reading", b'{"v": 1, "t": %d, "generation_kwh": 1e9, "demand_kwh": 0}'),
    ("agents/h0003/orders", b'{"v": 1, "t": 9999, "orders": []}'),
    ("agents/h0003/orders", b'{"v": 1, "t": -1, "orders": []}'),
    ("agents/h0003/orders", b'{"v": 1, "t": %d, "agent_id": "h0004", "orders": []}'),
    ("agents/mallory/orders", b'{"v": 1, "t": %d, "orders": []}'),
    ("agents/h0003/reading", b"[" * 30_000),
    ("meters/shelly/shelly-1/status/emdata:0", b'{"total_act": "lots"}'),
    ("meters/generic/ghost/reading", b'{"ts": 1, "power_kw": 1}'),
]


def test_bad_messages_on_the_wire_change_nothing(
    mosquitto,
    live_clients: Any,
    e2e_scenario: Scenario,
    tmp_path: Path,
    equal_to_batch: Any,
) -> None:

    config = mosquitto.config
    root = topics_for(e2e_scenario).root
    errors: list[dict[str, Any]] = []
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    sent = {"n": 0}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/errors"):
            with lock:
                errors.append(json.loads(msg.payload))
            return
        t = json.loads(msg.payload).get("t")
        if not isinstance(t, int) or t >= 6:
            return
        for topic, payload in BAD:
            body = payload % t if b"%d" in payload else payload
            client.publish(f"{root}/{topic}", body, qos=1)
            sent["n"] += 1

    attacker.on_message = on_message
    attacker.on_connect = lambda c, *_: c.subscribe([(f"{root}/clock", 1), (f"{root}/errors", 1)])
    attacker.connect(config.host, config.port)
    attacker.loop_start()
    market = MarketService(e2e_scenario, config, tmp_path / "state", speed=0, intervals=30)
    try:
        with live_clients(e2e_scenario, config) as (fleet, _meters):
            market.run()
            fleet.wait(20)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
    rejected = sum(market.stats.rejected.values())
    assert rejected >= sent["n"] > 0
    assert len(errors) == rejected and all(e["reason"] and e["topic"] for e in errors)
    assert market.stats.readings == fleet.stats.readings_sent
    assert market.stats.orders == fleet.stats.orders_sent
    equal_to_batch(market.results, e2e_scenario, tmp_path / "batch", books=market.books)
