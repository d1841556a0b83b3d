"""Heat pumps through the live market (issue 14): a household's reading carries its heat
pump's own energy (``heat_pump_kwh``, optional, 0 when absent), the market meters and
settles it, the settlement and the result carry it, every message follows the contract,
and the live run equals the batch run of the same seed: a January day (flexible heat
pumps holding the lower setpoint: their energy is in the readings), and two April days
(pre-heating on PV as ``heat_pump`` orders, filled through the live market)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from live.contract import contract
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import (
    Reading,
    Rejected,
    encode,
    parse_json,
    read_reading,
    reading_payload,
    topics_for,
)
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.results.schema import QUANTUM

TOPIC = "p2pgrid/x/agents/h0001/reading"


def _scenario(start: str, days: int) -> Scenario:
    return load_scenario(
        {
            "name": f"live-heat-pumps-{start}",
            "simulation": {"start": start, "days": days, "interval_minutes": 60, "seed": 3},
            "grid": {"check": "off"},
            "output": {"order_books": True},
            "community": {
                "households": 10,
                "heat_pump_share": 0.5,
                "pv_share": 0.8,
                "pv_kwp": [8.0, 12.0],
                "battery_share": 0.25,
                "heat_pump_mode": "flexible",
            },
        }
    )


def test_a_reading_without_heat_pump_kwh_is_still_valid_and_a_negative_one_is_not() -> None:
    old = b'{"v": 1, "t": 0, "generation_kwh": 1.0, "demand_kwh": 0.5}'
    assert contract().check(TOPIC, old) == []
    assert read_reading(parse_json(old, 16_384), "h0001", 0, 100.0).heat_pump_kwh == 0.0
    new = reading_payload(0, Reading(1.0, 0.5, None, 0.0, heat_pump_kwh=1.25))
    assert contract().check(TOPIC, encode(new)) == []
    assert read_reading(new, "h0001", 0, 100.0).heat_pump_kwh == 1.25
    bad = {**new, "heat_pump_kwh": -0.5}
    assert contract().check(TOPIC, encode(bad))
    with pytest.raises(Rejected, match=r"heat_pump_kwh must be >= 0"):
        read_reading(bad, "h0001", 0, 100.0)


@pytest.mark.parametrize(("start", "days"), [("2026-01-05", 1), ("2026-04-06", 2)])
def test_heat_pumps_in_the_live_market_equal_the_batch_run(
    start: str,
    days: int,
    mosquitto: Any,
    live_clients: Any,
    mqtt_client: Any,
    tmp_path: Path,
    equal_to_batch: Any,
) -> None:
    scenario = _scenario(start, days)
    intervals = scenario.simulation.n_intervals
    config = mosquitto.config
    root = topics_for(scenario).root
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def record(_client: Any, _userdata: Any, msg: Any) -> None:
        with lock:
            seen.append((msg.topic, msg.payload))

    state = tmp_path / "state"
    market = MarketService(scenario, config, state, speed=0, intervals=intervals)
    with mqtt_client(config, "hp-recorder", [(f"{root}/#", 1)], record):
        with live_clients(scenario, config) as (fleet, _meters):
            market.run()
            assert fleet.wait(20)
    assert sum(market.stats.rejected.values()) == 0, market.stats.rejected
    ledger = read_ledger(state)
    assert len(ledger) == intervals
    results = [rec["result"] for rec in ledger]
    books = [rec["book"] for rec in ledger]
    # prices, volumes, utility flows, imbalance (zero: the heat pump is metered), money
    # and the community's heat-pump energy equal the batch run's, interval by interval
    out = tmp_path / "batch"
    equal_to_batch(results, scenario, out, books=books)
    agents = pd.read_parquet(out / "agents.parquet").set_index(["t", "agent_id"])
    assert agents.heat_pump_kwh.sum() > 10.0 * days, "heat pumps drew little: a weak test"
    preheated = sum(
        f
        for b in books
        for o, f in zip(b["orders"]["kind"], b["orders"]["filled_kwh"], strict=True)
        if o == "heat_pump"
    )
    if start.startswith("2026-04"):  # January: the price-aware rule never pre-heats
        assert preheated > 1.0, "no pre-heating order was filled: a weak test"
    # every household's settlement: its heat pump's energy as batch meters it, and the
    # balance generation - demand - devices = sold - bought + export - import
    for rec in ledger:
        t = rec["result"]["t"]
        for agent, s in rec["settlements"].items():
            want = agents.loc[(t, agent)]
            # agents.parquet in steps of QUANTUM, the live settlement unrounded
            assert s["heat_pump_kwh"] == pytest.approx(want.heat_pump_kwh, abs=QUANTUM), (t, agent)
            own = (
                s["generation_kwh"]
                - s["demand_kwh"]
                - s["battery_kwh"]
                - s["ev_kwh"]
                - s["heat_pump_kwh"]
            )
            flows = s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"]
            assert own == pytest.approx(flows, abs=1e-9), (t, agent)
            assert s["imbalance_kwh"] == pytest.approx(0.0, abs=1e-9), (t, agent)
    total = sum(r["heat_pump_kwh"] for r in results)
    assert total == pytest.approx(agents.heat_pump_kwh.sum(), abs=1e-6)
    # what went over the wire follows the contract, readings with heat_pump_kwh included
    c = contract()
    problems = [p for topic, payload in seen for p in c.check(topic, payload)]
    assert problems == [], "\n".join(problems[:20])
    readings = [parse_json(p, 1 << 20) for topic, p in seen if topic.endswith("/reading")]
    drawn = np.array([r["heat_pump_kwh"] for r in readings])
    assert len(readings) >= intervals * scenario.community.households
    assert (drawn > 0).any() and (drawn >= 0).all()
