"""The live market with ``market.mechanism = "sharing"`` over a real Mosquitto: every
member's ``agents/<id>/settlement`` carries its allocation (its shared energy, each share
as a trade with the member whose surplus it is, at the internal price with the charges),
computed from what the agents and a smart meter sent, and equal to a batch run."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
import pytest

from live.bus import BrokerConfig
from live.contract import contract
from live.market import MarketService
from live.protocol import topics_for
from scenarios import load_scenario, run
from scenarios.results.schema import QUANTUM

INTERVALS = 16  # 00:00 to 16:00 at one hour: the morning without and the midday with PV
SCENARIO = """
name = "live-sharing"
[simulation]
start = "2026-06-22"
days = 1
interval_minutes = 60
seed = 11
[community]
households = 8
pv_share = 0.5
[market]
mechanism = "sharing:equal"
grid_fee_per_kwh = 0.05
[market.sharing]
jurisdiction = "at_eeg"
[grid]
check = "off"
[live]
close_when_complete = true
reconnect_grace_s = 1.0
[[live.meters]]
id = "tas-8"
format = "tasmota"
household = "h0008"
"""


class Settlements:
    """Records every ``agents/<id>/settlement`` the market publishes."""

    def __init__(self, config: BrokerConfig, root: str) -> None:
        self.got: dict[tuple[int, str], dict[str, Any]] = {}
        self.raw: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer-sharing")
        c.on_message = self._on_message
        c.on_connect = lambda cl, *_: cl.subscribe(f"{root}/agents/+/settlement", 1)
        c.connect(config.host, config.port)
        c.loop_start()
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        agent = msg.topic.split("/")[-2]
        data = json.loads(msg.payload)
        with self.lock:
            self.got[(data["t"], agent)] = data
            self.raw.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_settlements_carry_the_allocation(
    mosquitto: Any, live_clients: Any, tmp_path: Path, waiting: Any
) -> None:
    path = tmp_path / "live-sharing.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    observer = Settlements(mosquitto.config, topics_for(scenario).root)
    market = MarketService(
        scenario, mosquitto.config, tmp_path / "state", speed=0, intervals=INTERVALS
    )
    try:
        with live_clients(scenario, mosquitto.config) as (fleet, _meters):
            market.run()
            assert fleet.wait(20), "the agents never saw the end of the run"
        waiting(lambda: len(observer.got) >= INTERVALS * 8, "every settlement", 20)
    finally:
        observer.close()
    assert market.stats.intervals == INTERVALS

    run(scenario, tmp_path / "batch")
    a = pd.read_parquet(tmp_path / "batch" / "agents.parquet")
    a = a[a.t < INTERVALS].set_index(["t", "agent_id"])
    price = 0.08 + 0.5 * (0.32 - 0.05 * 0.43 - 0.08)  # at_eeg local: 57 % off the fee
    shared = 0.0
    for topic, payload in observer.raw:
        assert contract().check(topic, payload) == []
    for (t, agent), s in observer.got.items():
        row = a.loc[(t, agent)]
        # the member's allocation (bought) and shared surplus (sold) equal the batch run's
        # (agents.parquet in steps of QUANTUM, the settlement unrounded)
        assert s["bought_kwh"] == pytest.approx(row.bought_p2p_kwh, abs=QUANTUM), (t, agent)
        assert s["sold_kwh"] == pytest.approx(row.sold_p2p_kwh, abs=QUANTUM), (t, agent)
        buys = [x for x in s["trades"] if x["side"] == "buy"]
        assert sum(x["energy_kwh"] for x in buys) == pytest.approx(s["bought_kwh"], abs=1e-9)
        for x in s["trades"]:
            assert x["price_per_kwh"] == pytest.approx(price)
            assert x["counterparty"] != agent
        for x in buys:
            assert x["grid_fee"] == pytest.approx(0.05 * 0.43 * x["energy_kwh"])
        shared += s["bought_kwh"]
    assert shared > 1.0, "nothing shared: a weak test"
    # the meter-backed member takes part in the allocation like the others
    meter = [s for (t, agent), s in observer.got.items() if agent == "h0008"]
    assert any(s["bought_kwh"] > 0 or s["sold_kwh"] > 0 for s in meter)
    # equal key: in every interval the members not fully served got the same energy
    for t in range(INTERVALS):
        rows = a.loc[t]
        net = rows.generation_kwh - rows.demand_kwh - rows.battery_kwh - rows.ev_kwh
        short = (net < 0) & (rows.grid_import_kwh > 1e-9) & (rows.bought_p2p_kwh > 0)
        if short.sum() > 1:
            assert np.ptp(rows.bought_p2p_kwh[short]) < 1e-9, t
