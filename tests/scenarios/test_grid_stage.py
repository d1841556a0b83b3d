"""When the feeder check re-clears, skips, or drops flexible charging (hand-built books)."""

import numpy as np
import pandas as pd
import pytest

from agents.households.community import KIND_BATTERY, KIND_NET, Plan
from scenarios import load_scenario
from scenarios.engine.grid_stage import GridStage


def _plan(household, is_buy, energy, price, kind, generation, demand, deferrable=None) -> Plan:
    n = len(generation)
    zeros = np.zeros(n)
    return Plan(
        generation_kwh=np.asarray(generation, float),
        demand_kwh=np.asarray(demand, float),
        self_kwh={"battery": zeros, "ev": zeros},
        drawn_kwh={},
        ev_deferrable_kwh=zeros if deferrable is None else np.asarray(deferrable, float),
        net_kwh=zeros,
        household=np.asarray(household),
        is_buy=np.asarray(is_buy, bool),
        energy_kwh=np.asarray(energy, float),
        price_per_kwh=np.asarray(price, float),
        kind=np.asarray(kind, np.int8),
    )


def peak_day(*hours: float) -> pd.DatetimeIndex:
    """Local times of the IEEE RTS annual peak day (Tuesday of week 51: 22 Dec 2026)."""
    return pd.Timestamp("2026-12-22", tz="Europe/Berlin") + pd.to_timedelta(list(hours), unit="h")


@pytest.fixture(scope="module")
def ieee33_stage(tmp_path_factory) -> GridStage:
    scenario = load_scenario(
        {"community": {"households": 4}, "grid": {"feeder": "ieee33", "background": "rts"}}
    )
    stage = GridStage(scenario, 4, tmp_path_factory.mktemp("stage"))
    yield stage
    stage.close()


def test_background_undervoltage_without_flexible_charging_is_not_recleared(ieee33_stage):
    """At the evening peak ieee33 sits at 0.913 p.u. from its own loads: nothing to do."""
    stage = ieee33_stage
    bg_p, bg_q = stage.background(peak_day(18.0))
    plan = _plan(
        [0, 1],
        [True, False],
        [1.0, 1.0],
        [0.25, 0.10],
        [KIND_NET, KIND_NET],
        [0.0, 1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    )
    filled = np.array([1.0, 1.0])
    net = np.array([-1.0, 1.0, 0.0, 0.0])
    out = stage.check(plan, net, bg_p[0], bg_q[0], None, filled)
    assert out.check.violations > 0 and out.check.v_min_pu < 0.92
    assert not out.recleared and out.dropped_orders is None


def test_unrestorable_undervoltage_drops_flexible_charging(ieee33_stage):
    stage = ieee33_stage
    bg_p, bg_q = stage.background(peak_day(18.0))
    plan = _plan(
        [0, 1, 2],
        [True, False, True],
        [1.0, 2.0, 1.0],
        [0.25, 0.10, 0.20],
        [KIND_NET, KIND_NET, KIND_BATTERY],
        [0.0, 2.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    )
    filled = np.array([1.0, 2.0, 1.0])
    net = np.array([-1.0, 2.0, -1.0, 0.0])
    out = stage.check(plan, net, bg_p[0], bg_q[0], None, filled)
    assert out.recleared
    np.testing.assert_array_equal(out.dropped_orders, [False, False, True])
    assert out.nodal_price_per_kwh is None


def test_background_violations_match_the_check(ieee33_stage) -> None:
    stage = ieee33_stage
    hours = (3.0, 12.0, 18.0)
    bg_p, bg_q = stage.background(peak_day(*hours))
    counted = stage.background_violations(bg_p, bg_q)
    for i in range(len(hours)):
        assert counted[i] == stage.model.check(bg_p[i], bg_q[i], force_solve=True).violations
    assert counted[2] > 0  # the published peak case is at 0.913 p.u.


def test_unrestorable_undervoltage_defers_ev_charging_of_buyers(ieee33_stage):
    """No flexible order, but two EVs charging with time to spare: both are postponed as
    far as their households buy (household 1 sells, so its EV is left alone)."""
    stage = ieee33_stage
    bg_p, bg_q = stage.background(peak_day(18.0))
    plan = _plan(
        [0, 1, 2],
        [True, False, True],
        [3.0, 1.0, 1.0],
        [0.25, 0.10, 0.20],
        [KIND_NET] * 3,
        [0.0, 4.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        deferrable=[2.0, 2.0, 1.5, 0.0],
    )
    filled = np.array([1.0, 1.0, 0.0])
    out = stage.check(plan, np.array([-3.0, 1.0, -1.0, 0.0]), bg_p[0], bg_q[0], None, filled)
    assert out.recleared and not out.dropped_orders.any()
    np.testing.assert_allclose(out.ev_deferred_kwh, [2.0, 0.0, 1.0, 0.0])
    shrunk, keep = stage.shrink_buy_orders(plan, out.ev_deferred_kwh)
    np.testing.assert_array_equal(keep, [True, True, False])
    np.testing.assert_allclose(shrunk.energy_kwh, [1.0, 1.0])  # h2's buy order is gone
