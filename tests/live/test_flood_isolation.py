"""Flood budgets without an ACL: junk on another household's topic cannot silence it;
``v`` is the integer 1; ordinary rejections are never "internal"; what is dropped while
the gate is closed is reported when the next clock opens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from live.bus import BrokerConfig
from live.market import MarketService
from live.protocol import Order, Reading, topics_for
from scenarios.config.schema import Scenario

T, LIMIT = 2, 12


@pytest.fixture
def market(e2e_scenario: Scenario, tmp_path: Path):
    live = e2e_scenario.live.model_copy(update={"max_messages_per_interval": LIMIT})
    scenario = e2e_scenario.model_copy(update={"live": live})
    m = MarketService(scenario, BrokerConfig(port=1), tmp_path / "state", speed=0)
    m.reports = []
    m.ingest.report = lambda topic, reason, **extra: m.reports.append(  # type: ignore[method-assign]
        {"topic": topic, "reason": reason, **extra}
    )
    m.ingest.open(T)
    yield m
    m.ledger.close()


def _send(market: MarketService, agent: str, kind: str, payload: dict[str, Any]) -> None:
    root = topics_for(market.scenario).root
    market.ingest.on_agent(f"{root}/agents/{agent}/{kind}", json.dumps(payload).encode())


READING = {"v": 1, "t": T, "generation_kwh": 1.5, "demand_kwh": 0.25}
ORDERS = {"v": 1, "t": T, "orders": [{"side": "sell", "energy_kwh": 1.25, "price_per_kwh": 0.2}]}


def test_junk_on_another_households_topic_does_not_silence_it(market: MarketService) -> None:
    for i in range(3 * LIMIT):  # an attacker's junk on h0002's topic, before h0002 speaks
        _send(market, "h0002", "orders", {"v": 1, "t": T, "junk": i})
    _send(market, "h0002", "reading", READING)
    _send(market, "h0002", "orders", ORDERS)
    book = market.ingest.book
    assert book.readings[1] == Reading(1.5, 0.25, None, 0.0)
    assert book.orders[1] == [Order(False, 1.25, 0.2, 0)]
    assert not book.flooded  # parsed and rejected one by one, nothing dropped unread
    assert market.stats.rejected["unknown"] == 3 * LIMIT
    # once h0002 is complete, a replay beyond its budget is dropped unparsed
    for _ in range(10):
        _send(market, "h0002", "orders", ORDERS)
    assert book.flooded["h0002"] == 10  # 36 + 2 + 10 messages, all beyond the 12 counted
    assert market.stats.rejected["flood"] == 10


def test_flood_after_gate_closure_is_reported_at_the_next_clock(market: MarketService) -> None:
    _send(market, "h0003", "reading", READING)
    for _ in range(LIMIT + 4):  # 1 + 16 messages: 5 beyond the limit
        _send(market, "h0003", "orders", ORDERS)
    book = market.ingest.book
    book.closed = True
    market.ingest.report_dropped(book)
    assert [r["count"] for r in market.reports if "count" in r] == [5]
    for _ in range(3):  # copies of what the closed gate took: duplicates, not a flood
        _send(market, "h0003", "orders", ORDERS)
    assert market.stats.duplicates == 3
    changed = {**ORDERS, "orders": [{**ORDERS["orders"][0], "price_per_kwh": 0.21}]}
    for _ in range(7):  # between gate closure and the next clock
        _send(market, "h0003", "orders", changed)
    market.ingest.report_dropped(book)
    late = [r for r in market.reports if "count" in r][1:]
    assert [r["count"] for r in late] == [7]
    assert "after the gate closed, interval 2" in late[0]["reason"]
    assert market.stats.rejected["flood"] == 12
    market.ingest.report_dropped(book)  # nothing new: nothing reported twice
    assert len([r for r in market.reports if "count" in r]) == 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**READING, "v": True}, "unsupported version v=True"),
        ({**READING, "v": 1.0}, "unsupported version v=1.0"),
        ({**READING, "generation_kwh": 10**400}, "generation_kwh must be finite"),
        (
            {
                "v": 1,
                "t": T,
                "orders": [{"side": "buy", "energy_kwh": 1, "price_per_kwh": -(10**400)}],
            },
            "orders[0].price_per_kwh must be a finite number",
        ),
    ],
)
def test_ordinary_rejections_are_named(
    market: MarketService, payload: dict[str, Any], reason: str
) -> None:
    kind = "orders" if "orders" in payload else "reading"
    _send(market, "h0004", kind, payload)
    assert len(market.reports) == 1 and market.reports[0]["reason"].startswith(reason)
    assert "internal" not in market.stats.rejected
    assert 3 not in market.ingest.book.readings and 3 not in market.ingest.book.orders


def test_an_integer_of_5000_digits_is_invalid_json_not_an_internal_error(
    market: MarketService,
) -> None:
    root = topics_for(market.scenario).root
    body = b'{"v": 1, "t": 2, "generation_kwh": ' + b"9" * 5000 + b', "demand_kwh": 0}'
    market.ingest.on_agent(f"{root}/agents/h0004/reading", body)
    assert market.reports[0]["reason"].startswith("invalid JSON: Exceeds the limit")
    assert dict(market.stats.rejected) == {"invalid": 1}


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (
            "tasmota/tas-1/tele/SENSOR",
            b'{"Time": "2026-06-01T00:00:00", "ENERGY": {"Total": ' + b"9" * 400 + b"}}",
            "meter: ENERGY.Total must be finite",
        ),
        (
            "shelly/shelly-1/status/emdata:0",
            b'{"total_act": ' + b"9" * 5000 + b"}",
            "meter: invalid JSON: Exceeds the limit",
        ),
        ("generic/gen-1/reading", b"[" * 10_000, "meter: invalid JSON: maximum recursion"),
    ],
    ids=["tasmota-400-digits", "shelly-5000-digits", "generic-deep-nesting"],
)
def test_meter_payload_rejections_are_named(
    market: MarketService, topic: str, payload: bytes, reason: str
) -> None:
    root = topics_for(market.scenario).root
    market.ingest.on_meter(f"{root}/meters/{topic}", payload)
    assert len(market.reports) == 1 and market.reports[0]["reason"].startswith(reason)
    assert dict(market.stats.rejected) == {"meter": 1}
