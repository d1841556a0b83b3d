"""Reliability scores in the live market over a real Mosquitto (hand-solved): a household
that sells more than its reading shows, its delivery ratio in its settlement, its asks
derated by it (``[market] derate_unreliable``), a rejected message counted against the
household whose topic it came on, and a restarted market that keeps the window."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from live.contract import contract
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.loader import load_scenario

WINDOW = 4
SCENARIO = {
    "name": "reliability",
    "simulation": {"days": 1, "interval_minutes": 60},
    "community": {"households": 3},
    "market": {"reliability_window": WINDOW, "derate_unreliable": True},
    "grid": {"check": "off"},
    "live": {"close_when_complete": True, "complete_timeout_s": 10.0},
}


def sent(t: int) -> dict[str, tuple[dict[str, float], list[dict[str, Any]]]]:
    """What each household sends for ``t``: h0001 offers 5 kWh at 0.10 and generates 3
    kWh in t = 0, 1 (then 5); h0002 bids 4 kWh at 0.30, h0003 4 kWh at 0.25, each using
    what it bids."""
    return {
        "h0001": (
            {"generation_kwh": 3.0 if t < 2 else 5.0, "demand_kwh": 0.0},
            [{"side": "sell", "energy_kwh": 5.0, "price_per_kwh": 0.10}],
        ),
        "h0002": (
            {"generation_kwh": 0.0, "demand_kwh": 4.0},
            [{"side": "buy", "energy_kwh": 4.0, "price_per_kwh": 0.30}],
        ),
        "h0003": (
            {"generation_kwh": 0.0, "demand_kwh": 4.0},
            [{"side": "buy", "energy_kwh": 4.0, "price_per_kwh": 0.25}],
        ),
    }


class Households:
    """A paho client that answers every clock with :func:`sent` (in t = 0 h0003 first
    sends a reading with negative demand, which the market rejects) and keeps what the
    market publishes."""

    def __init__(self, config: Any, topics: Any) -> None:
        self.topics = topics
        self.settlements: dict[tuple[str, int], dict[str, Any]] = {}
        self.results: dict[int, dict[str, Any]] = {}
        self.errors: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rel-households")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(
            [
                (topics.clock, 1),
                (topics.result, 1),
                (topics.errors, 1),
                (f"{topics.root}/agents/+/settlement", 1),
            ]
        )
        self.client.connect(config.host, config.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        topics = self.topics
        with self.lock:
            if msg.topic == topics.clock:
                t = data.get("t")
                if data.get("done") or not isinstance(t, int):
                    return
                if t == 0:
                    bad = {"v": 1, "t": 0, "generation_kwh": 0.0, "demand_kwh": -1.0}
                    client.publish(topics.reading("h0003"), json.dumps(bad), qos=1)
                for agent, (reading, orders) in sent(t).items():
                    client.publish(
                        topics.reading(agent), json.dumps({"v": 1, "t": t, **reading}), qos=1
                    )
                    client.publish(
                        topics.orders(agent), json.dumps({"v": 1, "t": t, "orders": orders}), qos=1
                    )
            elif msg.topic == topics.result:
                self.results[data["t"]] = data
            elif msg.topic == topics.errors:
                self.errors.append(data)
            else:
                self.settlements[(msg.topic.split("/")[-2], data["t"])] = data

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_scores_reach_the_settlements_and_survive_a_restart(
    mosquitto, tmp_path: Path, waiting: Callable[..., None]
) -> None:
    scenario = load_scenario(SCENARIO)
    topics = topics_for(scenario)
    state = tmp_path / "state"
    households = Households(mosquitto.config, topics)
    try:
        MarketService(scenario, mosquitto.config, state, speed=0, intervals=2).run()
        # a new process: the window comes back from the ledger records
        MarketService(scenario, mosquitto.config, state, speed=0, intervals=4).run()
        waiting(lambda: len(households.settlements) >= 12, "every settlement of t = 0..3")
    finally:
        households.stop()
    s = households.settlements
    volume = {t: households.results[t]["volume_kwh"] for t in range(4)}
    ratio = {t: s[("h0001", t)]["delivery_ratio"] for t in range(4)}
    # t0: no history, the 5 kWh ask trades in full; 3 delivered → 3/5 = 0.6
    assert volume[0] == pytest.approx(5.0)
    assert ratio[0] == pytest.approx(0.6)
    # t1: the ask derated to 0.6 × 5 = 3 kWh (the volume), delivered in full: 6/8
    assert volume[1] == pytest.approx(3.0)
    assert s[("h0001", 1)]["committed_net_kwh"] == pytest.approx(3.0)
    assert ratio[1] == pytest.approx(6 / 8)
    # restart. t2: the ask 0.75 × 5 = 3.75 kWh (a market that forgot would trade 5),
    # 5 generated: 3.75 delivered → 9.75 / 11.75
    assert volume[2] == pytest.approx(3.75)
    assert ratio[2] == pytest.approx(9.75 / 11.75)
    # t3: the ask 5 × 9.75 / 11.75, delivered in full; the window is t0..t3
    ask3 = 5 * 9.75 / 11.75
    assert volume[3] == pytest.approx(ask3)
    assert ratio[3] == pytest.approx((9.75 + ask3) / (11.75 + ask3))
    # the buyers took what they bought; no reading was late
    for t in range(4):
        for agent in ("h0002", "h0003"):
            assert s[(agent, t)]["take_ratio"] == 1.0
            assert s[(agent, t)]["estimated_share"] == 0.0
    # h0003's rejected reading of t0, per interval of the window (1, 2, 3, 4 intervals)
    assert [s[("h0003", t)]["rejected_per_interval"] for t in range(4)] == pytest.approx(
        [1.0, 0.5, 1 / 3, 0.25]
    )
    assert [e["topic"] for e in households.errors] == [topics.reading("h0003")]
    assert s[("h0002", 3)]["rejected_per_interval"] == 0.0
    # every settlement follows the contract, and what was published was committed first
    for (agent, _t), payload in s.items():
        assert contract().check(topics.settlement(agent), json.dumps(payload)) == []
    records = read_ledger(state)
    assert [r["t"] for r in records] == [0, 1, 2, 3]
    for r in records:
        for agent, payload in r["settlements"].items():
            assert payload == s[(agent, r["t"])]
        assert set(r["reliability"]) >= {"committed_export", "delivered", "rejected"}


def test_rejections_and_flood_drops_are_counted_against_the_household(
    e2e_scenario: Any, tmp_path: Path
) -> None:
    """In-process (no broker): what :meth:`Ingest.rejected_rows` counts per row."""
    from live.bus import BrokerConfig

    market = MarketService(e2e_scenario, BrokerConfig(port=1), tmp_path / "state", speed=0)
    ingest = market.ingest
    ingest.reject = lambda *args: None  # type: ignore[method-assign]  # no broker to report on
    root, t = topics_for(e2e_scenario).root, 0
    ingest.open(t)
    reading = json.dumps({"v": 1, "t": t, "generation_kwh": 0.0, "demand_kwh": 1.0}).encode()
    orders = json.dumps(
        {"v": 1, "t": t, "orders": [{"side": "buy", "energy_kwh": 1.0, "price_per_kwh": 0.2}]}
    ).encode()
    # h0001: two bad messages (negative demand, not JSON)
    ingest.on_agent(f"{root}/agents/h0001/reading", b'{"v": 1, "t": 0, "demand_kwh": -1}')
    ingest.on_agent(f"{root}/agents/h0001/orders", b"{not json")
    # h0002: complete, then 12 + 5 messages more: the 5 beyond the limit of 12 are dropped
    for _ in range(12 + 5):
        ingest.on_agent(f"{root}/agents/h0002/reading", reading)
    ingest.on_agent(f"{root}/agents/h0002/orders", orders)
    for _ in range(5):
        ingest.on_agent(f"{root}/agents/h0002/orders", orders)
    # h0021 is backed by meter tas-1: its own topic is refused, and so is a bad sample
    ingest.on_agent(f"{root}/agents/h0021/reading", reading)
    ingest.on_meter(f"{root}/meters/tasmota/tas-1/tele/SENSOR", b"{not json")
    # an unknown agent is nobody's
    ingest.on_agent(f"{root}/agents/h9999/reading", reading)
    with ingest.lock:
        counted = ingest.rejected_rows(ingest.book)
    market.ledger.close()
    assert counted == {0: 2, 1: 5, 20: 2}
