"""Grid fee module 3 (§14a EnWG): three levels by time window, on imports and P2P energy,
through the one settlement path (hand-solved bills)."""

import numpy as np
import pytest

from agents.households.community import KIND_NET, Plan, device_flows
from market.fees import time_variable_fee_per_kwh
from scenarios import ScenarioError, load_scenario
from scenarios.engine.interval import MarketStep

LOW, STANDARD, HIGH = 0.0345, 0.0862, 0.1084  # the defaults: EW Wanfried 2025, LV
RETAIL = 0.32


def test_levels_by_window_and_month() -> None:
    hour = np.array([0.5, 1.0, 3.75, 4.0, 12.0, 17.0, 18.75, 19.0, 1.5, 17.5])
    month = np.array([1, 1, 1, 1, 1, 1, 1, 1, 7, 11])
    fee = time_variable_fee_per_kwh(
        hour, month, (LOW, STANDARD, HIGH), (1.0, 4.0), (17.0, 19.0), (1, 2, 3, 10, 11, 12)
    )
    want = [STANDARD, LOW, LOW, STANDARD, STANDARD, HIGH, HIGH, STANDARD, STANDARD, HIGH]
    np.testing.assert_allclose(fee, want)
    # a window over midnight
    night = time_variable_fee_per_kwh(
        np.array([22.0, 23.5, 0.5, 6.0]), np.ones(4, int), (LOW, STANDARD, HIGH),
        (22.0, 6.0), (17.0, 19.0), (1,),
    )  # fmt: skip
    np.testing.assert_allclose(night, [LOW, LOW, LOW, STANDARD])


def _step() -> MarketStep:
    scenario = load_scenario(
        {
            "simulation": {"start": "2026-01-13", "days": 1, "interval_minutes": 60},
            "community": {"households": 2},
            "market": {"grid_fee_model": "time_variable", "retail_price_per_kwh": RETAIL},
            "grid": {"check": "off"},
        }
    )
    return MarketStep(scenario, 2, None)


def _plan(buy_kwh: float, sell_kwh: float) -> Plan:
    """h0 imports ``buy_kwh`` (bid 0.20), h1 offers ``sell_kwh`` (ask 0.10)."""
    zeros = np.zeros(2)
    rows = [(0, True, buy_kwh, 0.20), (1, False, sell_kwh, 0.10)]
    rows = [r for r in rows if r[2] > 0]
    return Plan(
        generation_kwh=np.array([0.0, sell_kwh]),
        demand_kwh=np.array([buy_kwh, 0.0]),
        self_kwh={"battery": zeros, "ev": zeros},
        drawn_kwh={},
        ev_deferrable_kwh=zeros,
        net_kwh=np.array([-buy_kwh, sell_kwh]),
        household=np.array([r[0] for r in rows]),
        is_buy=np.array([r[1] for r in rows]),
        energy_kwh=np.array([r[2] for r in rows]),
        price_per_kwh=np.array([r[3] for r in rows]),
        kind=np.full(len(rows), KIND_NET, np.int8),
    )


@pytest.mark.parametrize(
    ("t", "level"),
    [(2, LOW), (12, STANDARD), (17, HIGH)],  # 02:00, 12:00, 17:00 on a January Tuesday
)
def test_an_import_pays_retail_moved_by_the_level(t: int, level: float) -> None:
    res = _step().run(_plan(2.0, 0.0), device_flows, t=t)
    # 2 kWh at retail (0.32, with the standard level 0.0862 in it) − 0.0862 + the level:
    # 02:00 2 × 0.2683 = 0.5366, 12:00 2 × 0.32 = 0.64, 17:00 2 × 0.3422 = 0.6844
    assert res.bill.cost[0] == pytest.approx(2.0 * (RETAIL - STANDARD + level), abs=1e-12)
    assert res.bill.cost[0] == pytest.approx({2: 0.5366, 12: 0.64, 17: 0.6844}[t], abs=1e-12)
    assert res.bill.grid_import_kwh[0] == 2.0


@pytest.mark.parametrize(("t", "level"), [(2, LOW), (12, STANDARD), (17, HIGH)])
def test_p2p_energy_pays_the_level_as_its_fee(t: int, level: float) -> None:
    res = _step().run(_plan(2.0, 1.0), device_flows, t=t)
    p = res.pairing
    assert p.energy_kwh.sum() == pytest.approx(1.0)
    price = float(p.price_per_kwh[0])
    assert 0.10 <= price <= 0.20
    np.testing.assert_allclose(res.trade_fee, level * p.energy_kwh)
    # h0: 1 kWh bought at the trade price plus the level, 1 kWh imported at retail moved
    want = price + level + (RETAIL - STANDARD + level)
    assert res.bill.cost[0] == pytest.approx(want, abs=1e-12)
    assert res.bill.fees[0] == pytest.approx(level)
    # h1 receives the seller's price; money balances with the fee as the operator's
    assert res.bill.cost[1] == pytest.approx(-float(p.seller_price_per_kwh[0]), abs=1e-12)


def test_time_variable_fees_need_the_interval() -> None:
    with pytest.raises(ValueError, match=r"time_variable.*pass t"):
        _step().run(_plan(2.0, 0.0), device_flows)


def test_levels_must_be_ordered() -> None:
    with pytest.raises(ScenarioError, match="grid_fee_levels_per_kwh"):
        load_scenario({"market": {"grid_fee_levels_per_kwh": [0.1, 0.05, 0.2]}})
