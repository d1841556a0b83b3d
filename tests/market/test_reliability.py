"""The reliability window as arrays (market/reliability.py): hand-solved sums, the ring
buffer's wrap-around, the rounding tolerance, and a window rebuilt from its intervals'
slots equal to one that ran through (what a restarted market relies on)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from market.reliability import (
    FIELDS,
    Conduct,
    Reliability,
    derate,
    slot_from_json,
    slot_of,
    slot_to_json,
)


def test_slot_of_one_interval() -> None:
    # h0 committed 2 kWh export, metered 1.5; h1 committed 1 import, metered 3 import
    # (took its 1, the rest is surplus consumption); h2 exported more than committed
    metered = np.array([1.5, -3.0, 4.0, 0.0])
    committed = np.array([2.0, -1.0, 2.5, 0.0])
    slot = slot_of(metered, committed, Conduct.of(4, estimated=[3], rejected={0: 2}))
    by = dict(zip(FIELDS, slot.tolist(), strict=True))
    q = 1_000_000_000  # kWh in quanta of 1e-9 kWh
    assert by["committed_export"] == [2 * q, 0, int(2.5 * q), 0]
    assert by["delivered"] == [int(1.5 * q), 0, int(2.5 * q), 0]
    assert by["committed_import"] == [0, q, 0, 0]
    assert by["taken"] == [0, q, 0, 0]
    assert by["estimated"] == [0, 0, 0, 1]
    assert by["rejected"] == [2, 0, 0, 0]


def test_a_rounding_shortfall_counts_as_delivered() -> None:
    committed = np.array([0.3, 0.3, -0.7])
    metered = np.array([0.3 - 4e-10, 0.3 - 2e-9, -0.7 + 1e-12])
    r = Reliability(3, 4)
    s = r.update(metered, committed, None)
    assert s.delivery_ratio[0] == 1.0  # 0.4e-9 short: below the smallest ordered kWh
    assert s.delivery_ratio[1] == pytest.approx(1 - 2e-9 / 0.3, abs=1e-12)
    assert s.take_ratio[2] == 1.0


def test_ratios_are_one_without_commitment_and_shares_zero_before_any_interval() -> None:
    r = Reliability(2, 3)
    s = r.scores
    assert s.intervals == 0
    np.testing.assert_array_equal(s.delivery_ratio, [1.0, 1.0])
    np.testing.assert_array_equal(s.estimated_share, [0.0, 0.0])
    s = r.update(np.array([2.0, -1.0]), np.zeros(2), None)  # nothing committed
    np.testing.assert_array_equal(s.delivery_ratio, [1.0, 1.0])
    np.testing.assert_array_equal(s.take_ratio, [1.0, 1.0])


def test_the_ring_wraps_and_the_sums_stay_those_of_the_last_w_intervals() -> None:
    rng = np.random.default_rng(5)
    n, w, steps = 50, 7, 40
    r = Reliability(n, w)
    slots = []
    for t in range(steps):
        metered, committed = rng.normal(size=n), rng.normal(size=n)
        conduct = Conduct(rng.random(n) < 0.2, rng.integers(0, 4, n))
        s = r.update(metered, committed, conduct)
        slots.append(slot_of(metered, committed, conduct))
        window = np.sum(slots[-w:], axis=0)
        np.testing.assert_array_equal(r.sums, window)
        k = min(t + 1, w)
        assert s.intervals == k
        due = window[0]
        want = np.where(due > 0, window[1] / np.where(due > 0, due, 1), 1.0)
        np.testing.assert_array_equal(s.delivery_ratio, want)
        np.testing.assert_array_equal(s.estimated_share, window[4] / k)
        np.testing.assert_array_equal(s.rejected_per_interval, window[5] / k)
    assert ((r.scores.delivery_ratio >= 0) & (r.scores.delivery_ratio <= 1)).all()


def test_a_window_rebuilt_from_its_slots_equals_the_one_that_ran_through() -> None:
    rng = np.random.default_rng(11)
    n, w = 20, 5
    ran = Reliability(n, w)
    saved = []
    for _ in range(13):
        ran.update(rng.normal(size=n) * 3, rng.normal(size=n) * 3, None)
        saved.append(json.loads(json.dumps(slot_to_json(ran.last_slot))))
    rebuilt = Reliability(n, w)
    for slot in saved[-w:]:
        rebuilt.push(slot_from_json(slot, n))
    np.testing.assert_array_equal(rebuilt.sums, ran.sums)
    for name in ("delivery_ratio", "take_ratio", "estimated_share", "rejected_per_interval"):
        np.testing.assert_array_equal(getattr(rebuilt.scores, name), getattr(ran.scores, name))


def test_a_bad_slot_is_named() -> None:
    with pytest.raises(ValueError, match="lacks rejected"):
        slot_from_json({name: [0] for name in FIELDS[:-1]}, 1)
    with pytest.raises(ValueError, match=r"shape \(6, 2\), not \(6, 3\)"):
        slot_from_json({name: [0, 0] for name in FIELDS}, 3)
    with pytest.raises(ValueError, match="at least 1"):
        Reliability(3, 0)


def test_derate_scales_sell_orders_by_their_households_ratio() -> None:
    got = derate(
        np.array([0, 1, 1, 2]),
        np.array([False, True, False, False]),
        np.array([5.0, 2.0, 4.0, 1.0]),
        np.array([0.6, 0.5, 1.0]),
    )
    np.testing.assert_allclose(got, [3.0, 2.0, 2.0, 1.0])
