"""A third-party household beside the simulated ones (``[live] external``), written from
the README's integrator guide alone: a plain paho client that waits for the retained clock,
sends its reading and orders for each interval, and reads its own settlement."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from live.bus import BrokerConfig
from live.market import MarketService
from scenarios.config.loader import load_scenario
from scenarios.errors import ScenarioError

INTERVALS = 5
DEMAND_KWH = 0.4


class ThirdPartyHousehold:
    """What an integrator writes: clock in, reading and orders out, settlement in."""

    def __init__(self, config: BrokerConfig, root: str, agent: str) -> None:
        self.root, self.agent = root, agent
        self.settlements: dict[int, dict[str, Any]] = {}
        self.sent: set[int] = set()
        self.done = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"integrator-{agent}")
        c.on_connect = lambda cl, *_: cl.subscribe(
            [(f"{root}/clock", 1), (f"{root}/agents/{agent}/settlement", 1)]
        )
        c.on_message = self._on_message
        c.connect(config.host, config.port)
        c.loop_start()
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        if msg.topic.endswith("/settlement"):
            self.settlements[data["t"]] = data
            return
        if data.get("done"):
            self.done.set()
            return
        t = data["t"]  # a repeated clock asks for the same messages again
        base = f"{self.root}/agents/{self.agent}"
        reading = {"v": 1, "t": t, "generation_kwh": 0.0, "demand_kwh": DEMAND_KWH}
        orders = {
            "v": 1,
            "t": t,
            "orders": [{"side": "buy", "energy_kwh": DEMAND_KWH, "price_per_kwh": 0.25}],
        }
        client.publish(f"{base}/reading", json.dumps(reading), qos=1)
        client.publish(f"{base}/orders", json.dumps(orders), qos=1)
        self.sent.add(t)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _scenario(e2e_file: Path, tmp_path: Path, external: str):
    text = e2e_file.read_text(encoding="utf-8").replace(
        "[live]\n", f"[live]\nexternal = {external}\n", 1
    )
    path = tmp_path / "external.toml"
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


def test_an_external_household_trades_beside_the_simulated_ones(
    mosquitto: Any, live_clients: Any, e2e_file: Path, tmp_path: Path
) -> None:
    scenario = _scenario(e2e_file, tmp_path, '["h0003"]')
    config = mosquitto.config
    market = MarketService(scenario, config, tmp_path / "state", speed=0, intervals=INTERVALS)
    outsider = ThirdPartyHousehold(config, market.topics.root, "h0003")
    try:
        with live_clients(scenario, config) as (fleet, _meters):
            market.run()
            assert fleet.wait(20)
            assert outsider.done.wait(10)
    finally:
        outsider.close()
    assert sorted(outsider.sent) == list(range(INTERVALS))
    assert sorted(outsider.settlements) == list(range(INTERVALS))
    for s in outsider.settlements.values():
        assert s["demand_kwh"] == pytest.approx(DEMAND_KWH)
        # bought P2P or from the utility, the household got what it metered
        assert s["bought_kwh"] + s["grid_import_kwh"] == pytest.approx(DEMAND_KWH)
        assert s["cost"] > 0
    # the fleet did not speak for h0003: of the 25 households 5 are metered, 19 simulated
    # and one external; one reading per interval from each, none rejected, nobody missing
    assert fleet.stats.readings_sent == 19 * INTERVALS
    assert market.stats.readings == 20 * INTERVALS
    assert sum(market.stats.rejected.values()) == 0, market.stats.rejected
    assert all(r["counts"]["missing_agents"] == 0 for r in market.results)


@pytest.mark.parametrize(
    "external, problem",
    [
        ('["h0999"]', "is not one of the 25 households"),
        ('["h0021"]', "is backed by a meter"),
        ('["h0003", "h0003"]', "appears more than once"),
    ],
)
def test_external_households_are_checked(
    e2e_file: Path, tmp_path: Path, external: str, problem: str
) -> None:
    with pytest.raises(ScenarioError, match=problem):
        _scenario(e2e_file, tmp_path, external)
