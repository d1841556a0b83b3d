"""Battery and EV limits, hand-computed."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.devices.storage import battery_limits, ev_limits, next_soc


def test_battery_limits_hand_case() -> None:
    # 10 kWh span [0.5, 9.5], 5 kW, eta 0.9 each way, 15 min -> 1.25 kWh power step.
    charge, discharge = battery_limits(
        np.array([9.0, 0.6, 5.0]),
        np.full(3, 0.5),
        np.full(3, 9.5),
        np.full(3, 5.0),
        np.full(3, 0.9),
        np.full(3, 0.9),
        0.25,
    )
    # full-ish: (9.5 - 9.0) / 0.9 = 0.5556 AC; nearly empty: (0.6 - 0.5) * 0.9 = 0.09 AC
    np.testing.assert_allclose(charge, [0.5 / 0.9, 1.25, 1.25])
    np.testing.assert_allclose(discharge, [1.25, 0.09, 1.25])


def test_no_battery_means_no_energy() -> None:
    zero = np.zeros(2)
    charge, discharge = battery_limits(zero, zero, zero, zero, np.ones(2), np.ones(2), 0.25)
    assert not charge.any() and not discharge.any()


def test_next_soc_applies_efficiency_both_ways() -> None:
    soc = next_soc(np.array([5.0, 5.0]), np.array([1.0, -0.9]), np.full(2, 0.9), np.full(2, 0.9))
    np.testing.assert_allclose(soc, [5.9, 4.0])


def test_ev_least_laxity_hand_case() -> None:
    # 60 kWh car at 40 kWh needs 48 kWh at departure; 11 kW, eta 1, 15 min -> 2.75 kWh step.
    # 3 intervals left: the later 2 add 5.5 kWh, so 8 - 5.5 = 2.5 kWh must go in now.
    must, charge, discharge = ev_limits(
        np.array([40.0]),
        np.array([60.0]),
        np.array([12.0]),
        np.array([48.0]),
        np.array([0.0]),
        np.array([11.0]),
        np.array([1.0]),
        np.array([True]),
        np.array([True]),
        np.array([3]),
        0.25,
    )
    np.testing.assert_allclose([must[0], charge[0], discharge[0]], [2.5, 2.75, 0.0])


def test_ev_v2g_discharges_only_above_the_departure_soc() -> None:
    """60 kWh car needing 48 kWh at departure, 11 kW (2.75 kWh a quarter hour), eta 1.

    At 30 kWh (below 48) it still has charging to do: no discharge, however long it
    stays (the old laxity floor 48 - 9 x 2.75 = 23.25 kWh let it give 6.75 kWh away).
    Without driving, at 49 kWh it can give 1 kWh, at 52 kWh the charger's 2.75 kWh; with
    3 kWh of daily driving, at 52 kWh only 52 - 48 - 3 = 1 kWh. A plain charger, or a
    car that is away, gives nothing.
    """
    soc = np.array([30.0, 49.0, 52.0, 52.0, 52.0, 52.0])
    trip = np.array([0.0, 0.0, 0.0, 3.0, 0.0, 0.0])
    v2g = np.array([True, True, True, True, False, True])
    present = np.array([True, True, True, True, True, False])
    must, charge, discharge = ev_limits(
        soc,
        np.full(6, 60.0),
        np.full(6, 12.0),
        np.full(6, 48.0),
        trip,
        np.full(6, 11.0),
        np.ones(6),
        v2g,
        present,
        np.full(6, 10),
        0.25,
    )
    np.testing.assert_allclose(must, np.zeros(6))
    np.testing.assert_allclose(discharge, [0.0, 1.0, 2.75, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(charge, [2.75, 2.75, 2.75, 2.75, 2.75, 0.0])


@settings(max_examples=200, deadline=None)
@given(
    soc=st.floats(10.0, 60.0),
    k=st.integers(1, 40),
    charger=st.floats(3.0, 22.0),
    eta=st.floats(0.8, 1.0),
)
def test_must_charge_then_full_power_reaches_departure(soc, k, charger, eta) -> None:
    """Charging 'must' now and full power later reaches the target whenever that is possible."""
    dt_h, target, cap = 0.25, 48.0, 60.0
    reachable = soc + k * charger * dt_h * eta >= target
    state = np.array([soc])
    for left in range(k, 0, -1):
        must, charge, _ = ev_limits(
            state,
            np.array([cap]),
            np.array([12.0]),
            np.array([target]),
            np.array([5.0]),
            np.array([charger]),
            np.array([eta]),
            np.array([True]),
            np.array([True]),
            np.array([left]),
            dt_h,
        )
        assert must[0] <= charge[0] + 1e-12
        state = next_soc(state, must, np.array([eta]), np.array([eta]))
    if reachable:
        assert state[0] >= target - 1e-9
