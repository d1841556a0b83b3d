"""The live market's bill through the interval step when the feeder steps in: postponed EV
charging is an instruction (no imbalance), a reading without orders is still metered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.households.community import KIND_NET, Plan
from live.market import market_flows
from scenarios import load_scenario
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.interval import MarketStep

TZ = "Europe/Berlin"


def test_postponed_ev_charging_is_committed_and_a_reading_without_orders_is_billed(
    tmp_path: Path,
) -> None:
    """ieee33 at 18:00 of the IEEE RTS annual peak day (22 Dec 2026) sits below 0.95 p.u.
    from its own loads, so the market postpones all deferrable EV charging of buyers (and
    nothing else helps).

    h1: 1 kWh load + 2 kWh deferrable EV charging, buys 3 → 2 postponed: meters −1,
    committed −3 + 2 = −1. h2: sells its 1 kWh of PV. h3: 1.5 kWh deferrable EV charging,
    buys 1.5 → all postponed: 0 and 0. h4: 1 kWh of load, no orders: imbalance −1 kWh
    at the shortfall price (default retail 0.32)."""
    scenario = load_scenario(
        {"community": {"households": 4}, "grid": {"feeder": "ieee33", "background": "rts"}}
    )
    stage = GridStage(scenario, 4, tmp_path)
    try:
        step = MarketStep(scenario, 4, stage)
        plan = Plan(
            generation_kwh=np.array([0.0, 1.0, 0.0, 0.0]),
            demand_kwh=np.array([1.0, 0.0, 0.0, 1.0]),
            self_kwh={"battery": np.zeros(4), "ev": np.array([2.0, 0.0, 1.5, 0.0])},
            drawn_kwh={},
            ev_deferrable_kwh=np.array([2.0, 0.0, 1.5, 0.0]),
            net_kwh=np.array([-3.0, 1.0, -1.5, 0.0]),
            household=np.array([0, 1, 2]),
            is_buy=np.array([True, False, True]),
            energy_kwh=np.array([3.0, 1.0, 1.5]),
            price_per_kwh=np.array([0.25, 0.10, 0.20]),
            kind=np.full(3, KIND_NET, dtype=np.int8),
        )
        bg_p, bg_q = stage.background(pd.DatetimeIndex([pd.Timestamp("2026-12-22 18:00", tz=TZ)]))
        res = step.run(plan, market_flows, bg_p[0], bg_q[0])
    finally:
        stage.close()
    assert res.ev_deferred_kwh is not None
    np.testing.assert_allclose(res.ev_deferred_kwh, [2.0, 0.0, 1.5, 0.0])
    bill = res.bill
    np.testing.assert_allclose(bill.imbalance_kwh, [0.0, 0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(res.net_kwh, [-1.0, 1.0, 0.0, -1.0], atol=1e-12)
    # h1 buys h2's 1 kWh; what h1's shrunk order leaves (0) and h4's 1 kWh are imported
    np.testing.assert_allclose(res.flows.bought_kwh, [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(bill.grid_import_kwh, [0.0, 0.0, 0.0, 1.0], atol=1e-12)
    assert bill.imbalance_cost[3] == pytest.approx(0.32)
    assert bill.cost[3] == pytest.approx(0.32)
