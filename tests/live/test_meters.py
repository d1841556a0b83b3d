"""Meter adapters: native payloads → samples → interval energy."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.meters import (
    MeterPayloadError,
    MeterTracker,
    Sample,
    dsmr_payload,
    generic_payload,
    read_meter,
    shelly_payloads,
    tasmota_payload,
)

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, tzinfo=TZ).timestamp()


def test_each_format_round_trips_through_its_adapter() -> None:
    local = datetime.fromtimestamp(T0 + 900, TZ)
    s = read_meter(
        "tasmota", "tele/SENSOR", json.dumps(tasmota_payload(local, 12.5, 3.25, -1.2)), TZ
    )
    assert (s.time_s, s.import_kwh, s.export_kwh, s.power_kw) == (T0 + 900, 12.5, 3.25, -1.2)
    shelly = shelly_payloads(T0 + 900, 12.5, 3.25, 2.0)
    s = read_meter("shelly", "status/emdata:0", json.dumps(shelly["status/emdata:0"]), TZ)
    assert s.import_kwh == pytest.approx(12.5) and s.export_kwh == pytest.approx(3.25)
    s = read_meter("shelly", "status/em:0", json.dumps(shelly["status/em:0"]), TZ)
    assert s.power_kw == pytest.approx(2.0) and s.import_kwh is None
    s = read_meter("dsmr", "json", json.dumps(dsmr_payload(local, 12.5, 3.25, -0.5)), TZ)
    assert (s.time_s, s.import_kwh, s.export_kwh, s.power_kw) == (T0 + 900, 12.5, 3.25, -0.5)
    s = read_meter("generic", "reading", json.dumps(generic_payload(T0, None, None, 1.0)), TZ)
    assert s.power_kw == 1.0 and s.import_kwh is None


@pytest.mark.parametrize(
    ("fmt", "suffix", "payload", "reason"),
    [
        ("tasmota", "tele/SENSOR", b"{", "invalid JSON"),
        ("tasmota", "tele/SENSOR", b'{"Time": "2026-06-01T00:00:00"}', "ENERGY"),
        ("tasmota", "tele/SENSOR", b'{"ENERGY": {"Total": -1}}', "negative"),
        ("shelly", "status/emdata:0", b'{"total_act": NaN}', "finite"),
        ("dsmr", "json", b'{"timestamp": "yesterday", "electricity_delivered_1": 1}', "ISO"),
        ("generic", "reading", b'{"ts": 1, "watts": 3}', "unknown keys"),
        ("generic", "status", b'{"ts": 1, "power_kw": 3}', "not 'status'"),
        ("zigbee", "x", b"{}", "unknown meter format"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(
    fmt: str, suffix: str, payload: bytes, reason: str
) -> None:
    with pytest.raises(MeterPayloadError, match=reason):
        read_meter(fmt, suffix, payload, TZ)


def test_counters_spread_over_a_gap_and_survive_a_reset() -> None:
    tr = MeterTracker(T0, 900.0)
    tr.add(Sample(T0, 100.0, 5.0))
    tr.add(Sample(T0 + 900, 101.0, 5.0))  # 1 kWh in t=0
    tr.add(Sample(T0 + 3600, 104.0, 5.6))  # gap: 3 kWh over t=1..3, export 0.6
    tr.add(Sample(T0 + 4500, 0.5, 5.6))  # counter reset: 0.5 kWh since the reset
    assert tr.gaps == 1 and tr.resets == 1
    assert tr.take(0) == pytest.approx((1.0, 0.0))
    for t in (1, 2, 3):
        assert tr.covers(t)
        assert tr.take(t) == pytest.approx((1.0, 0.2))
    assert tr.take(4) == pytest.approx((0.5, 0.0))
    assert not tr.covers(5)
    with pytest.raises(MeterPayloadError, match="older"):
        tr.add(Sample(T0, 1.0))


def test_power_over_time_is_integrated_per_reporting_period() -> None:
    tr = MeterTracker(T0, 900.0)
    tr.add(Sample(T0, power_kw=9.0))
    tr.add(Sample(T0 + 450, power_kw=2.0))  # 2 kW for 450 s = 0.25 kWh import
    tr.add(Sample(T0 + 900, power_kw=-4.0))  # -4 kW for 450 s = 0.5 kWh export
    assert tr.take(0) == pytest.approx((0.25, 0.5))
