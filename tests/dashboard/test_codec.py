"""The live dashboard has no protocol of its own: its broker URL, topics and payload
names are live's codec (live.bus, live.protocol, live.payloads), and what it draws of a
live interval is intervals.parquet's columns, read back through the results schema."""

from __future__ import annotations

import time
from typing import Any

import pytest

from live.bus import BrokerConfig, BrokerUrlError, Bus
from live.dashboard.market_source import MarketSource
from live.dashboard.mqtt_source import MqttSource, wait_connected
from live.payloads import (
    COMMUNITY_SUMS,
    RESULT_FIELDS,
    SETTLEMENT_FIELDS,
    decode_result,
    decode_settlement,
)
from live.protocol import Topics
from scenarios.results.schema import AGENTS_FILE, INTERVALS_FILE, names

TARIFFS = {"retail_price_per_kwh": 0.30, "feed_in_price_per_kwh": 0.10}


def test_broker_url_and_topics_are_the_transports() -> None:
    source = MqttSource("mqtt://u:p%40ss@broker.local:1884", "c")
    assert source.config == BrokerConfig("broker.local", 1884, "u", "p@ss")
    assert source.meta()["broker"] == "broker.local:1884"
    secure = MqttSource("mqtts://h", "c").config
    assert secure.tls and secure.port == 8883
    with pytest.raises(BrokerUrlError, match="scheme"):
        MqttSource("http://h:1", "c")
    t = Topics("c")
    assert set(source.bus._subs) == {
        t.clock,
        t.result,
        t.book,
        t.errors,
        "p2pgrid/c/agents/+/settlement",
        "p2pgrid/c/agents/+/reading",
    }
    assert Topics.agent_of(t.settlement("h0007")) == "h0007"


def _retained(port: int, pattern: str) -> list[str]:
    """The topics of the retained messages a fresh subscriber to ``pattern`` receives."""
    got: list[str] = []
    bus = Bus(BrokerConfig("127.0.0.1", port), "probe", "p2pgrid/probe", announce=False)
    bus.subscribe(
        pattern, lambda topic, _payload, retained: retained and got.append(topic), 1, True
    )
    bus.start()
    time.sleep(0.5)
    bus.stop()
    return got


def test_the_mqtt_source_is_a_silent_observer(mosquitto: Any) -> None:
    """Watching a broker, the dashboard publishes nothing: no retained online/offline
    status left behind (a client that announces itself does leave one)."""
    source = MqttSource(mosquitto.url, "c")
    source.start()
    try:
        assert wait_connected(source)
    finally:
        source.stop()
    assert _retained(mosquitto.port, "p2pgrid/c/#") == []
    Bus(BrokerConfig("127.0.0.1", mosquitto.port), "fleet", "p2pgrid/c").start().stop()
    assert len(_retained(mosquitto.port, "p2pgrid/c/#")) == 1  # its status/<id>


def test_decoders_invert_the_encoders_field_tables() -> None:
    """Each published field is read back under its results column's name."""
    settlement = {c.live: float(i) + 0.5 for i, c in enumerate(SETTLEMENT_FIELDS)}
    got = decode_settlement({**settlement, "bought_p2p_kwh": 99.0, "cost": float("nan")})
    want = {c.name: float(i) + 0.5 for i, c in enumerate(SETTLEMENT_FIELDS) if c.live != "cost"}
    assert got == want  # a column's own name is not the contract's; NaN is left out
    assert got["bought_p2p_kwh"] == settlement["bought_kwh"]
    result: dict[str, Any] = {"grid": {}}
    for i, c in enumerate(RESULT_FIELDS):
        value = True if c.dtype == "bool" else i if c.dtype.startswith("int") else i + 0.25
        if c.live.startswith("grid."):
            result["grid"][c.live.removeprefix("grid.")] = value
        else:
            result[c.live] = value
    decoded = decode_result(result)
    assert list(decoded) == [c.name for c in RESULT_FIELDS]
    assert decoded["clearing_price_per_kwh"] == result["price_per_kwh"]
    assert decoded["p2p_kwh"] == result["volume_kwh"]
    assert decoded["violations"] == result["grid"]["violations"]
    assert decoded["recleared"] is True
    assert decode_result({"grid": None, "volume_kwh": "1"})["p2p_kwh"] is None
    # every community sum is an intervals column of a household column
    assert set(COMMUNITY_SUMS) <= set(names(INTERVALS_FILE))
    assert COMMUNITY_SUMS["battery_soc_kwh"] == "soc_kwh" and COMMUNITY_SUMS["grid_fees"] == "fees"
    assert set(COMMUNITY_SUMS.values()) - {"fees"} <= set(names(AGENTS_FILE))


def _row(src: MarketSource, t: int) -> dict[str, Any]:
    return src.interval_rows(t, t)[0]


def test_interval_row_is_the_result_then_the_settlements_sums() -> None:
    """Hand-made interval: the row carries the result's columns; the settlements' sums
    replace them where households report; a correction (version 2) revises the row and
    a late copy of version 1 does not undo it."""
    src = MarketSource("c", market=TARIFFS)
    result = {"t": 0, "price_per_kwh": 0.2, "volume_kwh": 1.0, "grid_import_kwh": 3.0}
    result |= {"cost": 0.9, "market_surplus": 0.01, "welfare": 0.5, "optimal_welfare": 0.5}
    src.interval(result, {}, {})
    row = _row(src, 0)
    assert row["grid_import_kwh"] == 3.0 and row["cost"] == 0.9 and row["market_surplus"] == 0.01
    assert row["households_reported"] == 0 and row["demand_kwh"] is None
    s = {"v": 1, "t": 0, "version": 1, "bought_kwh": 1.0, "grid_import_kwh": 1.0, "cost": 0.5}
    src.interval(result, {"a": s, "b": {**s, "bought_kwh": 0.0, "cost": 0.4}}, {})
    row = _row(src, 0)
    assert row["grid_import_kwh"] == 2.0 and row["cost"] == pytest.approx(0.9)
    assert row["households_reported"] == 2
    src.on_settlement("a", {**s, "version": 2, "grid_import_kwh": 2.0, "cost": 0.8})
    deadline = time.monotonic() + 5
    while _row(src, 0)["grid_import_kwh"] != 3.0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _row(src, 0)["grid_import_kwh"] == 3.0 and _row(src, 0)["cost"] == pytest.approx(1.2)
    src.on_settlement("a", s)  # version 1 again: older than what is held
    time.sleep(0.4)
    assert _row(src, 0)["cost"] == pytest.approx(1.2)
    # the KPIs read the market's columns too: 0.01 kept by the operator, 0.5 of 0.5
    k = src.kpis(0)
    assert k["market_surplus"] == pytest.approx(0.01) and k["efficiency"] == 1.0
    assert k["grid_import_kwh"] == 3.0 and k["community_cost"] == pytest.approx(1.2)
    src.stop()


def test_only_the_runs_clock_drives_the_mqtt_source() -> None:
    """A retained clock an earlier run left (done) is ignored; the live one is taken."""
    source = MqttSource("mqtt://127.0.0.1:1", "c", interval_minutes=15)
    old = b'{"v": 1, "run": "old", "t": 95, "done": true, "interval_minutes": 60}'
    source._on_clock("p2pgrid/c/clock", old, True)
    assert source.interval_minutes == 15 and source.status()["clock_t"] is None
    new = b'{"v": 1, "run": "new", "t": 3, "interval_start": "2026-06-01T00:45:00+00:00",'
    source._on_clock("p2pgrid/c/clock", new + b' "interval_minutes": 30}', False)
    assert source.interval_minutes == 30 and source.status()["clock_t"] == 3
    source._on_clock("p2pgrid/c/clock", old.replace(b"true", b"false"), False)
    assert source.status()["clock_t"] == 3  # another run's clock, after this one's
