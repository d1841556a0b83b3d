"""The district market of nested markets (market/nested.py), by hand."""

import numpy as np
import pytest

from market.nested import allocate_pro_rata, clear_district, merge_steps


def _book():
    # feeder 0: two sellers at 0.10 (1 and 2 kWh); feeder 1: a buyer of 2 kWh at 0.30 and
    # two buyers of 1 kWh each at 0.20
    feeder = np.array([0, 0, 1, 1, 1])
    is_buy = np.array([False, False, True, True, True])
    price = np.array([0.10, 0.10, 0.30, 0.20, 0.20])
    energy = np.array([1.0, 2.0, 2.0, 1.0, 1.0])
    return feeder, is_buy, price, energy


def test_merge_steps_merges_identical_prices():
    steps = merge_steps(*_book())
    assert steps.key.tolist() == [0, 1, 1]
    assert steps.is_buy.tolist() == [False, True, True]
    assert steps.price_per_kwh.tolist() == [0.10, 0.20, 0.30]
    assert steps.energy_kwh.tolist() == [3.0, 2.0, 2.0]
    assert steps.group.tolist() == [0, 0, 2, 1, 1]


def test_district_clears_by_hand_and_allocates_pro_rata():
    feeder, is_buy, price, energy = _book()
    steps = merge_steps(feeder, is_buy, price, energy)
    res = clear_district(steps)
    # supply 3 kWh at 0.10 meets 2 kWh at 0.30 and 1 of the 2 kWh at 0.20:
    # price = (lowest accepted bid 0.20 + highest accepted ask 0.10) / 2 = 0.15
    assert res.volume_kwh == pytest.approx(3.0, abs=1e-12)
    assert res.price_per_kwh == pytest.approx([0.15, 0.15, 0.15])
    assert res.filled_kwh == pytest.approx([3.0, 1.0, 2.0], abs=1e-12)
    per_order = allocate_pro_rata(steps.group, energy, steps.energy_kwh, res.filled_kwh)
    # the 0.20 step is half filled: each of its two buyers gets 0.5 kWh
    assert per_order == pytest.approx([1.0, 2.0, 2.0, 0.5, 0.5], abs=1e-12)
    assert per_order[is_buy].sum() == pytest.approx(per_order[~is_buy].sum(), abs=1e-12)


def test_zones_clear_apart():
    feeder = np.array([0, 1, 2])
    is_buy = np.array([False, True, True])
    steps = merge_steps(feeder, is_buy, np.array([0.1, 0.3, 0.3]), np.array([1.0, 1.0, 1.0]))
    # feeder 2 behind a congested line: its own zone, no seller there
    res = clear_district(steps, zone=np.array([0, 0, 1]))
    assert res.filled_kwh == pytest.approx([1.0, 1.0, 0.0])
    assert res.price_per_kwh[:2] == pytest.approx([0.2, 0.2])
    assert np.isnan(res.price_per_kwh[2])
    assert res.zones == 2


def test_zone_shape_is_checked():
    steps = merge_steps(np.array([0]), np.array([True]), np.array([0.1]), np.array([1.0]))
    with pytest.raises(ValueError, match="one label per step"):
        clear_district(steps, zone=np.array([0, 1]))
