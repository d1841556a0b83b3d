"""End to end: 20 simulated households and meters in all four formats, 30 intervals at
full speed over a real Mosquitto and over the embedded broker; every reading and order
accounted for, and the results on the wire equal to a batch run of the same scenario."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from live.broker import EmbeddedBroker
from live.bus import BrokerConfig
from live.emulator import MeterEmulator
from live.fleet import AgentFleet
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.schema import Scenario

INTERVALS = 30


class Observer:
    """A plain paho client that records what the market publishes."""

    def __init__(self, config: BrokerConfig, scenario: Scenario) -> None:
        self.topics = topics_for(scenario)
        self.results: dict[int, dict] = {}
        self.errors: list[dict] = []
        self.settlements = 0
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer-e2e")
        c.on_message = self._on_message
        c.on_connect = lambda cl, *_: cl.subscribe(
            [
                (self.topics.result, 1),
                (self.topics.errors, 1),
                (f"{self.topics.root}/agents/+/settlement", 1),
            ]
        )
        c.connect(config.host, config.port)
        c.loop_start()
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        with self.lock:
            if msg.topic == self.topics.result:
                self.results[data["t"]] = data
            elif msg.topic == self.topics.errors:
                self.errors.append(data)
            else:
                self.settlements += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_stack(
    clients: Any, scenario: Scenario, config: BrokerConfig, state: Path
) -> tuple[MarketService, AgentFleet, MeterEmulator, Observer]:
    observer = Observer(config, scenario)
    market = MarketService(scenario, config, state, speed=0, intervals=INTERVALS)
    try:
        with clients(scenario, config) as (fleet, meters):
            market.run()
            assert fleet.wait(20), "the agents never saw the end of the run"
    finally:
        observer.close()
    return market, fleet, meters, observer


def check_run(
    market: MarketService,
    fleet: AgentFleet,
    meters: MeterEmulator,
    observer: Observer,
    scenario: Scenario,
    tmp_path: Path,
    equal_to_batch: Any,
) -> None:
    stats = market.stats
    n_sim = 20
    assert stats.intervals == INTERVALS
    assert sum(stats.rejected.values()) == 0, stats.rejected
    # every reading and order the agents sent was accepted into its interval's book
    assert stats.readings == fleet.stats.readings_sent == n_sim * INTERVALS
    assert stats.order_messages == fleet.stats.order_messages_sent == n_sim * INTERVALS
    assert stats.orders == fleet.stats.orders_sent > 0
    assert stats.meter_samples == meters.published
    assert fleet.stats.missing_settlements == 0
    for r in market.results:
        assert r["counts"]["missing_agents"] == 0
        assert r["counts"]["meters_incomplete"] == 0
        assert r["counts"]["meter_readings"] == 5
    # what went over the wire is what the market committed, and equals the batch run
    wire = [observer.results[t] for t in sorted(observer.results)]
    assert len(wire) == INTERVALS
    ledger = read_ledger(tmp_path / "state")
    assert [rec["t"] for rec in ledger] == list(range(INTERVALS))
    assert [rec["result"] for rec in ledger] == wire
    # the simulated households and the meters order exactly what they meter: no imbalance
    worst = max(abs(s["imbalance_kwh"]) for rec in ledger for s in rec["settlements"].values())
    assert worst < 1e-8  # orders below TINY_KWH are not placed
    assert observer.settlements == INTERVALS * scenario.community.households
    assert sum(r["volume_kwh"] for r in wire) > 0, "nothing traded: a weak test"
    equal_to_batch(wire, scenario, tmp_path / "batch", books=[rec["book"] for rec in ledger])


def test_end_to_end_over_mosquitto(
    mosquitto, live_clients: Any, e2e_scenario: Scenario, tmp_path: Path, equal_to_batch: Any
) -> None:
    run = run_stack(live_clients, e2e_scenario, mosquitto.config, tmp_path / "state")
    check_run(*run, e2e_scenario, tmp_path, equal_to_batch)


def test_end_to_end_over_the_embedded_broker(
    live_clients: Any, e2e_scenario: Scenario, tmp_path: Path, equal_to_batch: Any
) -> None:
    broker = EmbeddedBroker().start()
    try:
        config = BrokerConfig(broker.host, broker.port)
        run = run_stack(live_clients, e2e_scenario, config, tmp_path / "state")
    finally:
        broker.stop()
    check_run(*run, e2e_scenario, tmp_path, equal_to_batch)


@pytest.mark.parametrize("n", [1])
def test_batch_models_meter_households_as_price_takers(e2e_scenario: Scenario, n: int) -> None:
    from scenarios.engine.inputs import CommunityInputs

    inputs = CommunityInputs(e2e_scenario)
    rows = inputs.meter_rows
    hh = inputs.hh
    assert (hh.battery_capacity_kwh[rows] == 0).all() and (hh.ev_capacity_kwh[rows] == 0).all()
    blk = inputs.at(0)
    assert (blk.bids[:, rows] == inputs.band.high).all()
    assert (blk.asks[:, rows] == inputs.band.low).all()
    # a meter sees export or import, never both, in an interval
    assert ((blk.generation_kwh[:, rows] == 0) | (blk.demand_kwh[:, rows] == 0)).all()
