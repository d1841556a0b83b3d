"""The codec writes what it reads: a household's reading and orders as the fleet
publishes them (:func:`live.protocol.reading_payload`, :func:`~live.protocol.orders_payload`)
decode to the same values through the market's checks, and the topic parsers invert the
topic builders."""

from __future__ import annotations

import json

from live.clock import clock_payload, done_payload, read_clock
from live.protocol import (
    Order,
    Reading,
    Topics,
    encode,
    orders_payload,
    read_orders,
    read_reading,
    reading_payload,
)
from live.runfilter import RunFilter

T, MAX_KWH = 7, 50.0


def test_reading_round_trip_with_and_without_states_of_charge() -> None:
    full = Reading(1.5, 0.25, 4.0, 0.5, -0.75, 1.25, 30.0)
    data = json.loads(encode(reading_payload(T, full)))
    assert data == {
        "v": 1,
        "t": 7,
        "generation_kwh": 1.5,
        "demand_kwh": 0.25,
        "soc_kwh": 4.0,
        "ev_deferrable_kwh": 0.5,
        "battery_kwh": -0.75,
        "ev_kwh": 1.25,
        "ev_soc_kwh": 30.0,
    }
    assert read_reading(data, "h0001", T, MAX_KWH) == full
    bare = Reading(2.0, 1.0, None, 0.0)  # no battery, no car: no states of charge sent
    data = json.loads(encode(reading_payload(T, bare)))
    assert "soc_kwh" not in data and "ev_soc_kwh" not in data
    assert read_reading(data, "h0001", T, MAX_KWH) == bare


def test_orders_round_trip_every_kind() -> None:
    orders = [Order(True, 0.5, 0.25, 0), Order(False, 1.25, 0.125, 1), Order(True, 2.0, 0.3, 2)]
    data = json.loads(encode(orders_payload(T, orders)))
    assert [o.get("kind") for o in data["orders"]] == [None, "battery", "ev"]  # net: default
    assert [o["side"] for o in data["orders"]] == ["buy", "sell", "buy"]
    assert read_orders(data, "h0002", T, MAX_KWH, 10.0, 50) == orders


def test_topic_parsers_invert_the_builders() -> None:
    topics = Topics("demo")
    assert Topics.agent_of(topics.reading("h0042")) == "h0042"
    assert Topics.agent_of(topics.settlement("h0042")) == "h0042"
    assert topics.meter_of(topics.meter("shelly", "sh-1", "status/emdata:0")) == (
        "shelly",
        "sh-1",
        "status/emdata:0",
    )
    assert topics.meter_of(f"{topics.root}/meters/tasmota") == ("tasmota", "", "")
    assert topics.meters == "p2pgrid/demo/meters/#"


def test_clock_round_trip_drives_a_client_of_its_run() -> None:
    clock = clock_payload("run-a", 3, "2026-06-01T00:45:00+02:00", 15, None)
    got = read_clock(encode(clock))
    assert got == clock and got["gate_closes_at"] is None
    assert RunFilter("run-a").accept(got, retained=False)
    assert read_clock(encode(done_payload("run-a", 4))) == {
        "v": 1,
        "run": "run-a",
        "t": 4,
        "done": True,
    }
    assert read_clock(b"not json") is None and read_clock(b"[1, 2]") is None
