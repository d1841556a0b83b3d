"""Floods over the wire: one client replaying an agent's orders a thousand times, and a
stream of junk from an unknown sender. The market keeps its clock, drops the flood with
one report when it starts and one with the count when the gate closes, reports junk
one by one only up to its budget, and every result equals the batch run."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.schema import Scenario

REPLAYS, JUNK, BUDGET, LIMIT = 1_000, 400, 40, 12
FLOODED = (2, 3)  # intervals whose h0001 orders are replayed
JUNK_T = 4  # interval of the junk stream
INTERVALS = 7


def test_flood_from_one_client_is_dropped_counted_and_reported_once(
    mosquitto, live_clients: Any, e2e_scenario: Scenario, tmp_path: Path, equal_to_batch: Any
) -> None:
    live = e2e_scenario.live.model_copy(
        update={
            "close_when_complete": False,
            "max_messages_per_interval": LIMIT,
            "max_error_reports_per_interval": BUDGET,
        }
    )
    scenario = e2e_scenario.model_copy(update={"live": live})
    config = mosquitto.config
    root = topics_for(scenario).root
    errors: list[dict[str, Any]] = []
    lock = threading.Lock()
    done: set[int] = set()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/errors"):
            with lock:
                errors.append(json.loads(msg.payload))
            return
        t = json.loads(msg.payload)["t"]
        if t in done:
            return
        done.add(t)
        if t in FLOODED:  # the agent's own message, replayed: content never changes
            for _ in range(REPLAYS):
                client.publish(msg.topic, msg.payload, qos=0)
        if t == JUNK_T:
            for i in range(JUNK):
                client.publish(f"{root}/agents/mallory/orders", b'{"v":1,"t":%d}' % i, qos=0)

    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flooder")
    attacker.on_message = on_message
    attacker.on_connect = lambda c, *_: c.subscribe(
        [(f"{root}/agents/h0001/orders", 1), (f"{root}/errors", 1)]
    )
    attacker.connect(config.host, config.port)
    attacker.loop_start()
    # one 30-min interval in 1.5 s: the gate closes on the clock, so a flood is over
    # (a few hundred milliseconds) well inside the interval it belongs to
    market = MarketService(scenario, config, tmp_path / "state", speed=1_200.0, intervals=INTERVALS)
    try:
        with live_clients(scenario, config) as (fleet, _meters):
            stats = market.run()
            fleet.wait(20)
    finally:
        attacker.loop_stop()
        attacker.disconnect()

    # the market kept its clock and every interval equals the batch run
    assert stats.intervals == INTERVALS and stats.behind == 0
    assert all(r["counts"]["missing_agents"] == 0 for r in market.results)
    equal_to_batch(market.results, scenario, tmp_path / "batch", books=market.books)

    # the flood: everything beyond the limit dropped; two reports per flooded interval
    started = [e for e in errors if e["reason"].startswith("flood: more than")]
    summaries = [e for e in errors if e["reason"].startswith("flood:") and "count" in e]
    assert [e["reason"].split()[-1] for e in summaries] == [str(t) for t in FLOODED]
    assert len(started) == len(FLOODED)
    assert all("h0001" in e["reason"] and "/agents/h0001/" in e["topic"] for e in summaries)
    # the replays plus the agent's own two messages, less the limit
    assert [e["count"] for e in summaries] == [REPLAYS + 2 - LIMIT] * len(FLOODED)
    assert stats.rejected["flood"] == sum(e["count"] for e in summaries)

    # the junk: reported one by one up to the budget, then once with the count
    unknown = [e for e in errors if e["reason"].startswith("unknown agent")]
    budget = [e for e in errors if "than reported one by one" in e["reason"]]
    assert len(unknown) == BUDGET
    assert len(budget) == 1 and budget[0]["count"] == JUNK - BUDGET
    assert budget[0]["by_category"] == {"unknown": JUNK - BUDGET}
    assert stats.rejected["unknown"] == JUNK
    # 2,400 bad messages, a few dozen reports, and no other report
    reported = started + summaries + unknown + budget
    assert [e for e in errors if e not in reported] == []
    assert len(errors) == len(started) + len(summaries) + BUDGET + 1
    assert Counter(stats.rejected) == Counter(flood=stats.rejected["flood"], unknown=JUNK)
