"""The meter tracker as real devices feed it: the window around the market's clock, O(1)
spreading, counters and power apart, and late energy settled as corrections (hand-solved
numbers)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.meters.formats import MeterPayloadError, Sample, is_companion, online_state, read_meter
from agents.meters.tracker import (
    AHEAD_INTERVALS,
    PAST_INTERVALS,
    SPREAD_INTERVALS,
    MeterTracker,
    check_window,
)
from market.settlement import Tariffs
from scenarios.audit.rebill import rebill

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, tzinfo=TZ).timestamp()
I = 900.0  # noqa: E741


@pytest.mark.parametrize(
    ("fmt", "suffix", "payload", "reason"),
    [
        ("generic", "reading", {"ts": -1e15, "import_kwh": 1.0}, "before the open interval"),
        (
            "tasmota",
            "tele/SENSOR",
            {"Time": "2100-01-01T00:00:00", "ENERGY": {"Total": 1.0}},
            "the meter's clock is ahead",
        ),
        (
            "tasmota",
            "tele/SENSOR",
            {"Time": "1970-01-01T00:00:10", "ENERGY": {"Total": 1.0}},
            "pre-NTP",
        ),
        ("generic", "reading", {"ts": T0 + 86_400.0, "import_kwh": 1.0}, "ahead"),
    ],
)
def test_absurd_timestamps_are_outside_the_window(
    fmt: str, suffix: str, payload: dict, reason: str
) -> None:
    """The market at interval 4 (its open interval starts at T0 + 4 I)."""
    sample = read_meter(fmt, suffix, json.dumps(payload), TZ)
    assert sample.time_s is not None
    with pytest.raises(MeterPayloadError, match=reason):
        check_window(sample.time_s, T0 + 4 * I, I)


def test_the_window_edges() -> None:
    open_start = T0 + 10 * I
    newest = open_start + (1 + AHEAD_INTERVALS) * I
    check_window(open_start - PAST_INTERVALS * I, open_start, I)
    check_window(newest, open_start, I)
    with pytest.raises(MeterPayloadError):
        check_window(open_start - PAST_INTERVALS * I - 1, open_start, I)
    with pytest.raises(MeterPayloadError):
        check_window(newest + 1, open_start, I)


def test_a_gap_of_thirty_years_costs_what_one_interval_costs() -> None:
    """Counters 100 → 109 kWh over ~1.05 million intervals: spread over the last
    :data:`SPREAD_INTERVALS`, the rest lumped onto the first of them; nothing lost."""
    tr = MeterTracker(T0, I)
    tr.add(Sample(T0, 100.0))
    began = time.perf_counter()
    tr.add(Sample(T0 + 1e9, 109.0))
    assert time.perf_counter() - began < 0.05
    assert len(tr.energy) == SPREAD_INTERVALS and tr.lumped == 1 and tr.gaps == 1
    assert sum(v[0] for v in tr.energy.values()) == pytest.approx(9.0, abs=1e-9)
    last = max(tr.energy)  # 1e9 s = 1,111,111 intervals and 100 s
    assert tr.energy[last][0] == pytest.approx(9.0 * 100 / 1e9, rel=1e-6)
    assert tr.energy[last - 1][0] == pytest.approx(9.0 * I / 1e9, rel=1e-6)


def test_shelly_power_at_other_moments_never_becomes_the_previous_counter() -> None:
    """A real Gen2 Shelly: ``em:0`` (power) one second after ``emdata:0`` (counters),
    neither with ``ts``: import 100 → 101 → 102 kWh, export 5 → 5.3 → 5.3."""
    tr = MeterTracker(T0, I)
    for k, (imp, exp, power) in enumerate(
        ((100.0, 5.0, 2.0), (101.0, 5.3, -1.0), (102.0, 5.3, 4.0))
    ):
        tr.add(Sample(T0 + k * I, imp, exp))
        tr.add(Sample(T0 + k * I + 1, power_kw=power))
    assert tr.settle(0) == pytest.approx((1.0, 0.3, False))
    assert tr.settle(1) == pytest.approx((1.0, 0.0, False))
    # a power sample older than the last counter is not an error either
    tr.add(Sample(T0 + 2 * I - 5, power_kw=3.0))
    assert tr.last == Sample(T0 + 2 * I, 102.0, 5.3)


def test_a_late_meter_is_estimated_then_corrected() -> None:
    """At the gate of t=0 the meter is at T0 + 450 s with 0.5 kWh: estimated 1.0 kWh (the
    last rate for the rest of the interval); its true 0.8 kWh comes as a correction."""
    tr = MeterTracker(T0, I)
    tr.add(Sample(T0, 100.0, 7.0))
    tr.add(Sample(T0 + 450, 100.5, 7.0))
    assert tr.settle(0) == pytest.approx((1.0, 0.0, True))
    assert tr.corrections() == []
    tr.add(Sample(T0 + 900, 100.8, 7.1))
    assert tr.corrections() == [(0, pytest.approx(0.8), pytest.approx(0.1))]
    assert tr.pending == {} and tr.energy == {}
    # no sample since: estimated at the last rate, 0.3 and 0.1 kWh per 450 s
    assert tr.settle(1) == pytest.approx((0.6, 0.2, True))
    assert tr.pending == {1: pytest.approx([0.6, 0.2])}


def test_an_estimate_that_stands_is_settled_with_the_counters_later() -> None:
    """1 kWh in t=0, then silent for t=1..10 (each estimated at the last rate, 1 kWh);
    the estimates of t=1..5 stand (older than PAST_INTERVALS = 4 at the gate of 10). The
    counters come back at the end of t=10 with 8 kWh more (0.8 kWh per interval): t=6
    gets its 0.8 plus the 4.0 true of t=1..5, less their 5.0 estimated: 1.0 more than
    its 4.8, so t=6 is corrected to 0 and t=7 to 0.8 − 0.2 = 0.6; t=8..10 to 0.8.
    Settled in all: 1 + 5 + 0 + 0.6 + 3 × 0.8 = 9 kWh = the counters' difference."""
    assert PAST_INTERVALS == 4
    tr = MeterTracker(T0, I)
    tr.add(Sample(T0, 100.0))
    tr.add(Sample(T0 + I, 101.0))
    settled = {0: tr.settle(0)[0]}
    for t in range(1, 11):
        imp, _exp, estimated = tr.settle(t)
        assert estimated and imp == pytest.approx(1.0)
        settled[t] = imp
    assert sorted(tr.pending) == [6, 7, 8, 9, 10] and tr.debt == pytest.approx([5.0, 0.0])
    tr.add(Sample(T0 + 11 * I, 109.0))
    fixes = {t: imp for t, imp, _ in tr.corrections()}
    assert fixes == pytest.approx({6: 0.0, 7: 0.6, 8: 0.8, 9: 0.8, 10: 0.8})
    settled |= fixes
    assert sum(settled.values()) == pytest.approx(9.0, abs=1e-9)
    assert tr.debt == pytest.approx([0.0, 0.0]) and tr.energy == {}


def test_the_state_round_trips() -> None:
    tr = MeterTracker(T0, I)
    tr.add(Sample(T0, 100.0))
    tr.add(Sample(T0 + 450, 100.5))
    tr.settle(0)
    back = MeterTracker(T0, I)
    back.restore(json.loads(json.dumps(tr.state())))
    assert back.state() == tr.state()
    back.add(Sample(T0 + 900, 100.8))
    assert back.corrections() == [(0, pytest.approx(0.8), 0.0)]


@pytest.mark.parametrize(
    ("fmt", "suffix", "companion"),
    [
        ("tasmota", "tele/STATE", True),
        ("tasmota", "tele/LWT", True),
        ("tasmota", "tele/INFO1", True),
        ("tasmota", "stat/RESULT", True),
        ("tasmota", "tele/SENSOR", False),
        ("tasmota", "tele/SENSORS", False),
        ("shelly", "online", True),
        ("shelly", "status/sys", True),
        ("shelly", "status/temperature:0", True),
        ("shelly", "status/em1:0", False),  # a Pro EM's energy, not read: reported
        ("shelly", "status/em:0", False),
        ("shelly", "status/emdata:0", False),
        ("dsmr", "tele/STATE", False),
    ],
)
def test_companion_messages_of_real_devices(fmt: str, suffix: str, companion: bool) -> None:
    assert is_companion(fmt, suffix) is companion


def test_a_correction_settles_the_difference_as_imbalance() -> None:
    """Estimated 1.0 kWh import: the market bought 0.4 kWh peer to peer at 0.20 (fee
    0.012) and committed the other 0.6 kWh to the utility at 0.32. The meter says 1.5 kWh:
    0.5 kWh of shortfall at the shortfall price (retail by default, 0.32); grid import
    1.1 kWh; cost 0.6 × 0.32 + 0.5 × 0.32 + 0.08 + 0.012 = 0.444."""
    estimated = {
        "t": 3,
        "version": 1,
        "estimated": True,
        "generation_kwh": 0.0,
        "demand_kwh": 1.0,
        "battery_kwh": 0.0,
        "ev_kwh": 0.0,
        "bought_kwh": 0.4,
        "sold_kwh": 0.0,
        "paid": 0.08,
        "received": 0.0,
        "fees": 0.012,
        "committed_net_kwh": -1.0,
        "grid_import_kwh": 0.6,
        "grid_export_kwh": 0.0,
        "imbalance_kwh": 0.0,
        "imbalance_cost": 0.0,
        "cost": 0.6 * 0.32 + 0.08 + 0.012,
        "trades": [{"side": "buy", "counterparty": "h0002", "energy_kwh": 0.4}],
    }
    fixed = rebill(estimated, 1.5, 0.0, Tariffs(0.32, 0.08, 0.03))
    assert fixed["version"] == 2 and fixed["estimated"] is False
    assert fixed["demand_kwh"] == 1.5 and fixed["trades"] == estimated["trades"]
    assert fixed["grid_import_kwh"] == pytest.approx(1.1)
    assert fixed["imbalance_kwh"] == pytest.approx(-0.5)
    assert fixed["imbalance_cost"] == pytest.approx(0.5 * 0.32)
    assert fixed["cost"] == pytest.approx(0.444)


@pytest.mark.parametrize(
    ("fmt", "suffix", "payload", "online"),
    [
        ("tasmota", "tele/LWT", b"Online", True),
        ("tasmota", "tele/LWT", b"Offline", False),
        ("tasmota", "tele/LWT", b"maybe", None),
        ("tasmota", "tele/STATE", b"Offline", None),
        ("shelly", "online", b"true", True),
        ("shelly", "online", b"false", False),
        ("dsmr", "online", b"false", None),
    ],
)
def test_a_devices_last_will_says_whether_it_is_online(
    fmt: str, suffix: str, payload: bytes, online: bool | None
) -> None:
    assert online_state(fmt, suffix, payload) is online
