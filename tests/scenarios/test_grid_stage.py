"""When the feeder check re-clears, skips, or drops flexible charging (hand-built books)."""

import numpy as np
import pandas as pd
import pytest

from agents.community import KIND_BATTERY, KIND_NET, Plan
from scenarios import load_scenario
from scenarios.grid_stage import GridStage, merge_flexible, pair_fills, share_curtailment


def _plan(household, is_buy, energy, price, kind, generation, demand, deferrable=None) -> Plan:
    n = len(generation)
    zeros = np.zeros(n)
    return Plan(
        generation_kwh=np.asarray(generation, float), demand_kwh=np.asarray(demand, float),
        self_kwh={"battery": zeros, "ev": zeros}, drawn_kwh={},
        ev_deferrable_kwh=zeros if deferrable is None else np.asarray(deferrable, float),
        net_kwh=zeros,
        household=np.asarray(household), is_buy=np.asarray(is_buy, bool),
        energy_kwh=np.asarray(energy, float), price_per_kwh=np.asarray(price, float),
        kind=np.asarray(kind, np.int8),
    )


def peak_day(*hours: float) -> pd.DatetimeIndex:
    """Local times of the IEEE RTS annual peak day (Tuesday of week 51: 22 Dec 2026)."""
    return pd.Timestamp("2026-12-22", tz="Europe/Berlin") + pd.to_timedelta(list(hours), unit="h")


@pytest.fixture(scope="module")
def ieee33_stage(tmp_path_factory) -> GridStage:
    scenario = load_scenario({"community": {"households": 4},
                              "grid": {"feeder": "ieee33", "background": "rts"}})
    stage = GridStage(scenario, 4, tmp_path_factory.mktemp("stage"))
    yield stage
    stage.close()


def test_background_undervoltage_without_flexible_charging_is_not_recleared(ieee33_stage):
    """At the evening peak ieee33 sits at 0.913 p.u. from its own loads: nothing to do."""
    stage = ieee33_stage
    bg_p, bg_q = stage.background(peak_day(18.0))
    plan = _plan([0, 1], [True, False], [1.0, 1.0], [0.25, 0.10], [KIND_NET, KIND_NET],
                 [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    filled = np.array([1.0, 1.0])
    net = np.array([-1.0, 1.0, 0.0, 0.0])
    out = stage.check(plan, net, bg_p[0], bg_q[0], None, filled)
    assert out.check.violations > 0 and out.check.v_min_pu < 0.92
    assert not out.recleared and out.dropped_orders is None


def test_unrestorable_undervoltage_drops_flexible_charging(ieee33_stage):
    stage = ieee33_stage
    bg_p, bg_q = stage.background(peak_day(18.0))
    plan = _plan([0, 1, 2], [True, False, True], [1.0, 2.0, 1.0], [0.25, 0.10, 0.20],
                 [KIND_NET, KIND_NET, KIND_BATTERY], [0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    filled = np.array([1.0, 2.0, 1.0])
    net = np.array([-1.0, 2.0, -1.0, 0.0])
    out = stage.check(plan, net, bg_p[0], bg_q[0], None, filled)
    assert out.recleared
    np.testing.assert_array_equal(out.dropped_orders, [False, False, True])
    assert out.nodal_price_per_kwh is None


def test_share_curtailment_takes_unsold_surplus_first() -> None:
    # bus 0: households 0 and 1; 3 kWh to curtail; unsold 1 + 1, then self-used PV 4 + 0
    got = share_curtailment(np.array([3.0, 0.0]), np.array([0, 0, 1]),
                            generation_kwh=np.array([5.0, 1.0, 2.0]),
                            unsold_kwh=np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(got, [2.0, 1.0, 0.0])


def test_pair_fills_prices_inside_every_bid_and_ask() -> None:
    plan = _plan([0, 1, 2, 3], [True, True, False, False], [2.0, 1.0, 1.5, 1.5],
                 [0.25, 0.15, 0.12, 0.10], [KIND_NET] * 4, np.zeros(4), np.zeros(4))
    pairing = pair_fills(plan, np.array([2.0, 1.0, 1.5, 1.5]), price_per_kwh=0.20)
    assert pairing.energy_kwh.sum() == pytest.approx(3.0)
    # highest filled ask 0.12 <= lowest filled bid 0.15: one price, the dual clipped to 0.15
    np.testing.assert_allclose(pairing.price_per_kwh, 0.15)
    # bids descending against asks descending: 0.25/0.12 1.5 kWh, 0.25/0.10 0.5, 0.15/0.10 1
    assert list(zip(pairing.buyer.tolist(), pairing.seller.tolist(),
                    pairing.energy_kwh.tolist(), strict=True)) == [
        (0, 2, 1.5), (0, 3, 0.5), (1, 3, 1.0)]


def test_forced_discharge_that_no_bid_accepts_is_not_traded() -> None:
    # The constrained clearing filled household 1's battery (ask 0.25) against household
    # 0's net buy (bid 0.20) to lift a voltage: the old pairing traded it at the midpoint
    # 0.225, 0.025 above the bid. Now it is no trade: 0 imports, 1 exports.
    plan = _plan([0, 1], [True, False], [1.0, 1.0], [0.20, 0.25], [KIND_NET, KIND_BATTERY],
                 np.zeros(2), np.zeros(2))
    pairing = pair_fills(plan, np.array([1.0, 1.0]), price_per_kwh=0.30)
    assert len(pairing.energy_kwh) == 0
    np.testing.assert_array_equal(pairing.traded_kwh(2), [[0.0, 0.0], [0.0, 0.0]])


def test_forced_discharge_goes_to_the_bid_that_accepts_it() -> None:
    # Bids 0.30 (h0) and 0.15 (h1), asks 0.08 (h2) and 0.25 (h3's battery), 1 kWh each.
    # Merit order would pair 0.30/0.08 and 0.15/0.25 (crossed); highest bid with the
    # highest ask pairs both: 0.30/0.25 and 0.15/0.08. The dual 0.20 lies in neither
    # common interval ([0.25, 0.15] is empty), so each pair clips it: 0.25 and 0.15.
    plan = _plan([0, 1, 2, 3], [True, True, False, False], [1.0] * 4,
                 [0.30, 0.15, 0.08, 0.25], [KIND_NET, KIND_NET, KIND_NET, KIND_BATTERY],
                 np.zeros(4), np.zeros(4))
    p = pair_fills(plan, np.ones(4), price_per_kwh=0.20)
    assert list(zip(p.buyer.tolist(), p.seller.tolist(), p.energy_kwh.tolist(),
                    p.price_per_kwh.tolist(), strict=True)) == [
        (0, 3, 1.0, 0.25), (1, 2, 1.0, 0.15)]
    np.testing.assert_array_equal(p.sell_kind, [KIND_BATTERY, KIND_NET])


def test_a_household_serves_itself_before_it_trades() -> None:
    # h0: net buy 2 kWh at 0.29 and battery sell 1 kWh at 0.25, both filled; h1 sells
    # 1 kWh at 0.10. h0's battery covers 1 kWh of its own buy (no trade with itself);
    # the other 1 kWh of h0's buy comes from h1, at the dual 0.20.
    plan = _plan([0, 0, 1], [True, False, False], [2.0, 1.0, 1.0], [0.29, 0.25, 0.10],
                 [KIND_NET, KIND_BATTERY, KIND_NET], np.zeros(2), np.zeros(2))
    p = pair_fills(plan, np.array([2.0, 1.0, 1.0]), price_per_kwh=0.20)
    assert list(zip(p.buyer.tolist(), p.seller.tolist(), p.energy_kwh.tolist(),
                    p.price_per_kwh.tolist(), strict=True)) == [(0, 1, 1.0, 0.20)]


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
    plan = _plan([0, 1, 2], [True, False, True], [3.0, 1.0, 1.0], [0.25, 0.10, 0.20],
                 [KIND_NET] * 3, [0.0, 4.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                 deferrable=[2.0, 2.0, 1.5, 0.0])
    filled = np.array([1.0, 1.0, 0.0])
    out = stage.check(plan, np.array([-3.0, 1.0, -1.0, 0.0]), bg_p[0], bg_q[0], None, filled)
    assert out.recleared and not out.dropped_orders.any()
    np.testing.assert_allclose(out.ev_deferred_kwh, [2.0, 0.0, 1.0, 0.0])
    shrunk, keep = stage.shrink_buy_orders(plan, out.ev_deferred_kwh)
    np.testing.assert_array_equal(keep, [True, True, False])
    np.testing.assert_allclose(shrunk.energy_kwh, [1.0, 1.0])  # h2's buy order is gone


def test_flexible_orders_merge_per_bus_side_and_price() -> None:
    # households 0, 1 on bus 0 and 2 on bus 1; three storage buys at 0.12, one sell
    plan = _plan([0, 0, 1, 2, 1], [True, True, True, True, False], [1.0, 2.0, 3.0, 4.0, 5.0],
                 [0.25, 0.12, 0.12, 0.12, 0.20],
                 [KIND_NET, KIND_BATTERY, KIND_BATTERY, KIND_BATTERY, KIND_BATTERY],
                 np.zeros(3), np.zeros(3))
    book = merge_flexible(plan, household_bus=np.array([0, 0, 1]))
    assert book.n_fixed == 1
    # merged: (bus 0, sell, 0.20) 5 kWh; (bus 0, buy, 0.12) 5 kWh; (bus 1, buy, 0.12) 4 kWh
    merged = sorted(zip(book.bus[1:], book.is_buy[1:], book.energy_kwh[1:], strict=True))
    assert merged == [(0, False, 5.0), (0, True, 5.0), (1, True, 4.0)]
    # a merged fill is shared pro rata back onto its orders
    fills = np.zeros(len(book.energy_kwh))
    fills[0] = 1.0
    group_of = {(int(b), bool(s)): i + 1 for i, (b, s) in
                enumerate(zip(book.bus[1:], book.is_buy[1:], strict=True))}
    fills[group_of[(0, True)]] = 2.5
    np.testing.assert_allclose(book.split(fills), [1.0, 1.0, 1.5, 0.0, 0.0])
