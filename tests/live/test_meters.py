"""Meter adapters: native payloads → samples → interval energy."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from agents.meters.formats import (
    MeterPayloadError,
    Sample,
    format_names,
    meter_format,
    read_meter,
)
from agents.meters.tracker import MeterTracker
from live.bus import BrokerConfig, encode
from live.emulator import MeterEmulator
from scenarios.config.loader import load_scenario

FOUR_METERS = (Path(__file__).parent / "four_meters.toml").read_text(encoding="utf-8")

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, tzinfo=TZ).timestamp()


def _encoded(fmt: str, sample: Sample) -> dict[str, str]:
    """What the emulator sends for ``sample`` in format ``fmt``: suffix -> JSON (or the
    text of a format that is not JSON: OCMF)."""
    sent = meter_format(fmt).encode(sample, TZ).items()
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in sent}


def test_each_format_round_trips_through_its_adapter() -> None:
    (sensor,) = _encoded("tasmota", Sample(T0 + 900, 12.5, 3.25, -1.2)).values()
    s = read_meter("tasmota", "tele/SENSOR", sensor, TZ)
    assert (s.time_s, s.import_kwh, s.export_kwh, s.power_kw) == (T0 + 900, 12.5, 3.25, -1.2)
    shelly = _encoded("shelly", Sample(T0 + 900, 12.5, 3.25, 2.0))
    s = read_meter("shelly", "status/emdata:0", shelly["status/emdata:0"], TZ)
    assert s.import_kwh == pytest.approx(12.5) and s.export_kwh == pytest.approx(3.25)
    s = read_meter("shelly", "status/em:0", shelly["status/em:0"], TZ)
    assert s.power_kw == pytest.approx(2.0) and s.import_kwh is None
    (telegram,) = _encoded("dsmr", Sample(T0 + 900, 12.5, 3.25, -0.5)).values()
    s = read_meter("dsmr", "json", telegram, TZ)
    assert (s.time_s, s.import_kwh, s.export_kwh, s.power_kw) == (T0 + 900, 12.5, 3.25, -0.5)
    (reading,) = _encoded("generic", Sample(T0, power_kw=1.0)).values()
    s = read_meter("generic", "reading", reading, TZ)
    assert s.power_kw == 1.0 and s.import_kwh is None


def test_each_format_sends_its_native_payload() -> None:
    """The wire as the emulator writes it, key for key in the devices' order (compared
    as JSON text): 12.5 kWh imported, 3.25 exported, 1.2 kW exported (−1200 W; 5.22 A at
    230 V; −400 W a phase) at 00:15 local time (UTC+2) on 2026-06-01."""
    ts = T0 + 900
    sent = {f: meter_format(f).encode(Sample(ts, 12.5, 3.25, -1.2), TZ) for f in format_names()}
    energy = {"TotalStartTime": "2024-01-01T00:00:00", "Total": 12.5, "ExportActive": 3.25}
    energy |= {"Power": -1200.0, "Voltage": 230, "Current": 1200 / 230, "Factor": 1.0}
    em = {"id": 0, "ts": ts, "a_act_power": -400.0, "b_act_power": -400.0}
    em |= {"c_act_power": -400.0, "total_act_power": -1200.0}
    dsmr = {"timestamp": "2026-06-01T00:15:00+02:00", "electricity_delivered_1": 12.5}
    dsmr |= {"electricity_delivered_2": 0.0, "electricity_returned_1": 3.25}
    dsmr |= {"electricity_returned_2": 0.0, "electricity_currently_delivered": 0.0}
    dsmr |= {"electricity_currently_returned": 1.2}
    want = {
        "tasmota": {"tele/SENSOR": {"Time": "2026-06-01T00:15:00", "ENERGY": energy}},
        "shelly": {
            "status/emdata:0": {"id": 0, "ts": ts, "total_act": 12500.0, "total_act_ret": 3250.0},
            "status/em:0": em,
        },
        "dsmr": {"json": dsmr},
        "generic": {
            "reading": {"ts": ts, "import_kwh": 12.5, "export_kwh": 3.25, "power_kw": -1.2}
        },
        # the registers only (OCMF has no power), unsigned until the emulator signs it;
        # the export reading carries TM, ST and RU over from the import reading
        "ocmf": {
            "record": f'OCMF|{{"FV":"1.0","GI":"p2pgrid emulator","PG":"F{ts:.0f}",'
            '"MS":"emulated","RD":[{"TM":"2026-06-01T00:15:00,000+0200 S","ST":"G",'
            '"RU":"kWh","RV":12.5,"RI":"1-b:1.8.0"},{"RV":3.25,"RI":"1-b:2.8.0"}]}|'
            '{"SA": "ECDSA-secp256r1-SHA256", "SD": ""}'
        },
    }
    assert json.dumps(sent) == json.dumps(want)


@pytest.mark.parametrize("fmt", format_names())
@pytest.mark.parametrize(
    "sample",
    [
        Sample(T0 + 900, 12.5, 3.25, -1.2),
        Sample(T0 + 600, 7.0, 0.5),  # counters only
        Sample(None, power_kw=0.8),  # power only, without a time (stamped on arrival)
    ],
)
def test_every_registered_format_decodes_what_it_encodes(fmt: str, sample: Sample) -> None:
    """What the emulator sends in each format reads back as the sample (Shelly's two
    messages together): every field that is not None, and only those."""
    got = [read_meter(fmt, k, v, TZ) for k, v in _encoded(fmt, sample).items()]
    fields = ("time_s", "import_kwh", "export_kwh", "power_kw")
    if fmt == "ocmf":  # signed registers only: no power, nothing without a register
        sample = replace(sample, power_kw=None)
        if sample.import_kwh is None and sample.export_kwh is None:
            assert got == []
            return
    for name in fields:
        values = [v for s in got if (v := getattr(s, name)) is not None]
        want = getattr(sample, name)
        assert values == ([] if want is None else [pytest.approx(want)] * len(values)), name
        assert want is None or values, name


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
    assert tr.settle(0) == pytest.approx((1.0, 0.0, False))
    for t in (1, 2, 3):
        assert tr.covers(t)
        assert tr.settle(t) == pytest.approx((1.0, 0.2, False))
    assert tr.settle(4) == pytest.approx((0.5, 0.0, False))
    assert not tr.covers(5)
    with pytest.raises(MeterPayloadError, match="older"):
        tr.add(Sample(T0, 1.0))


def test_power_over_time_is_integrated_per_reporting_period() -> None:
    tr = MeterTracker(T0, 900.0)
    tr.add(Sample(T0, power_kw=9.0))
    tr.add(Sample(T0 + 450, power_kw=2.0))  # 2 kW for 450 s = 0.25 kWh import
    tr.add(Sample(T0 + 900, power_kw=-4.0))  # -4 kW for 450 s = 0.5 kWh export
    assert tr.settle(0) == pytest.approx((0.25, 0.5, False))


def test_a_repeated_sample_is_ignored_not_counted_twice() -> None:
    samples = [
        Sample(T0, 100.0, 5.0),
        Sample(T0 + 300, 100.4, 5.1),
        Sample(T0 + 300, power_kw=4.8),  # Shelly's em:0 companion
        Sample(T0 + 900, 101.0, 5.3),
    ]
    tr = MeterTracker(T0, 900.0)
    for s in samples:
        tr.add(s)
    for s in samples:  # the whole interval again (a meter re-sending it), the last included
        tr.add(s)
    tr.add(samples[-1])
    assert tr.duplicates == len(samples) + 1
    assert (tr.gaps, tr.resets) == (0, 0)
    assert tr.last == samples[-1] and tr.covers(0)
    assert tr.settle(0) == pytest.approx((1.0, 0.3, False))
    # an old time with other readings is still stale, the same time with other counters
    # is still not newer
    with pytest.raises(MeterPayloadError, match="older"):
        tr.add(Sample(T0 + 300, 100.5, 5.1))
    with pytest.raises(MeterPayloadError, match="not newer"):
        tr.add(Sample(T0 + 900, 101.5, 5.3))


def test_a_restored_tracker_ignores_its_last_sample_again() -> None:
    """After a restart only ``last`` is restored: a repeat of it is still a repeat."""
    tr = MeterTracker(T0, 900.0, last=Sample(T0 + 900, 101.0, 5.3))
    tr.add(Sample(T0 + 900, 101.0, 5.3))
    tr.add(Sample(T0 + 1800, 101.5, 5.3))
    assert tr.duplicates == 1 and tr.settle(1) == pytest.approx((0.5, 0.0, False))


def test_recent_samples_are_bounded_to_two_intervals() -> None:
    tr = MeterTracker(T0, 900.0)
    for k in range(40):
        tr.add(Sample(T0 + 90 * k, 100.0 + k, 5.0))
    assert len(tr._recent) <= 21
    with pytest.raises(MeterPayloadError, match="older"):
        tr.add(Sample(T0, 100.0, 5.0))  # beyond what is remembered: stale


EMULATED = (
    """
name = "emulated-resend"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 3
[community]
households = 4
"""
    + FOUR_METERS
)


def _recording_emulator(scenario: Any) -> tuple[MeterEmulator, list[tuple[str, bytes]]]:
    em = MeterEmulator(scenario, BrokerConfig("127.0.0.1", 1))  # never connected
    sent: list[tuple[str, bytes]] = []

    def record(topic: str, payload: Any, qos: int = 1, retain: bool = False) -> None:
        sent.append((topic, encode(payload)))

    em.bus.publish = record
    return em, sent


def test_emulator_answers_a_repeated_clock_with_the_same_samples(tmp_path: Path) -> None:
    path = tmp_path / "emulated.toml"
    path.write_text(EMULATED, encoding="utf-8")
    scenario = load_scenario(path)
    em, sent = _recording_emulator(scenario)
    plain, plain_sent = _recording_emulator(scenario)
    for t in range(3):
        plain.publish_interval(t)

    em.publish_interval(0)
    zero = list(sent)
    em.publish_interval(1)
    one = sent[len(zero) :]
    counters = em.import_kwh.copy(), em.export_kwh.copy()
    em.publish_interval(1)  # a restarted market asks again
    assert sent[len(zero) + len(one) :] == one
    em.publish_interval(0)  # the first interval again, with its sample at the start
    assert sent[len(zero) + 2 * len(one) :] == zero
    np.testing.assert_array_equal(em.import_kwh, counters[0])
    np.testing.assert_array_equal(em.export_kwh, counters[1])
    assert em.resent == 2 and em.last_t == 1
    em.publish_interval(2)  # continues as if nothing had been repeated
    assert sent[len(zero) + 2 * len(one) + len(zero) :] == plain_sent[len(zero) + len(one) :]

    # the market's trackers take every repeat as a duplicate: same energy, no error
    topics = em.topics
    trackers = {
        m.id: MeterTracker(em.inputs.stamps[0].timestamp(), em.interval_s) for m in em.meters
    }
    plain_trackers = {
        m.id: MeterTracker(em.inputs.stamps[0].timestamp(), em.interval_s) for m in em.meters
    }
    for stream, trs in ((sent, trackers), (plain_sent, plain_trackers)):
        for topic, payload in stream:
            fmt, meter_id, suffix = topic[len(topics.root) + len("/meters/") :].split("/", 2)
            trs[meter_id].add(read_meter(fmt, suffix, payload, em.tz))
    for meter_id, tr in trackers.items():
        assert tr.duplicates > 0 and (tr.gaps, tr.resets) == (0, 0)
        assert tr.energy == plain_trackers[meter_id].energy
