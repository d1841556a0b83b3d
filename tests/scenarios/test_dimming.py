"""§14a EnWG dimming: registered wallboxes and batteries are dimmed to the guaranteed
minimum before anything else relieves the feeder (hand-built cases and a run)."""

import numpy as np
import pytest

from agents.households.community import KIND_NET, Plan, device_flows
from grid import AcPowerFlow
from grid.dimming import dimming_cuts
from scenarios import ScenarioError, load_scenario, read_results, run
from scenarios.engine.dimming import registered_households
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.interval import MarketStep, timeline

N = 12
CHARGER_KW, MIN_KW, DT_H = 22.0, 4.2, 0.25
EVENING = 72  # 18:00


def _scenario(dimming: bool, min_kw: float):
    """12 households with a 22 kW wallbox each on the LV feeder generated for 30 (its
    transformer sized for 30 households), at 18:00 on a January evening."""
    return load_scenario(
        {
            "simulation": {"start": "2026-01-13", "days": 1, "seed": 3},
            "community": {"households": N, "pv_share": 0.0, "battery_share": 0.0, "ev_share": 1.0},
            "grid": {
                "feeder": "radial:30",
                "controllable_share": 1.0,
                "dimming": dimming,
                "dimming_min_kw": min_kw,
            },
        }
    )


def _must_charge_plan(deferrable_kwh: float = 0.0) -> Plan:
    """Every car charges at full power now, of which ``deferrable_kwh`` could wait (none by
    default): 5.5 kWh of EV charging and 0.25 kWh of demand per household, all bought from
    the utility."""
    ev = np.full(N, CHARGER_KW * DT_H)
    demand = np.full(N, 0.25)
    return Plan(
        generation_kwh=np.zeros(N),
        demand_kwh=demand,
        self_kwh={"battery": np.zeros(N), "ev": ev},
        drawn_kwh={},
        ev_deferrable_kwh=np.full(N, deferrable_kwh),
        net_kwh=-(ev + demand),
        household=np.arange(N),
        is_buy=np.ones(N, bool),
        energy_kwh=ev + demand,
        price_per_kwh=np.full(N, 0.25),
        kind=np.full(N, KIND_NET, np.int8),
    )


def _one_interval(tmp_path, dimming: bool, min_kw: float = MIN_KW, deferrable_kwh: float = 0.0):
    scenario = _scenario(dimming, min_kw)
    grid = GridStage(scenario, N, tmp_path)
    step = MarketStep(scenario, N, grid)
    bg_p, bg_q = grid.background(timeline(scenario)[EVENING : EVENING + 1])
    plan = _must_charge_plan(deferrable_kwh)
    res = step.run(plan, device_flows, bg_p[0], bg_q[0], t=EVENING)
    return scenario, grid, res


def test_dimming_relieves_an_overload_that_curtailment_cannot(tmp_path) -> None:
    scenario, grid, res = _one_interval(tmp_path, dimming=True)
    # 12 × 23 kW on a transformer for 30 households: the market's clearing breaks limits
    assert res.violations_before_reclear > 0
    assert res.outcome.check.violations == 0  # dimming alone restored every limit
    assert not res.outcome.recleared  # nothing curtailed or deferred after it
    assert res.curtailed_kwh.sum() == 0
    # each wallbox keeps exactly the guaranteed 4.2 kW: 1.05 kWh of the 5.5 kWh
    np.testing.assert_allclose(res.flows.ev_kwh, MIN_KW * DT_H)
    np.testing.assert_allclose(res.dimmed_kwh, (CHARGER_KW - MIN_KW) * DT_H)  # 4.45 kWh
    # none of it could wait: the cars lack it at departure, and that is reported
    np.testing.assert_allclose(res.ev_shortfall_kwh, 4.45)
    # the bill: 0.25 kWh demand + 1.05 kWh charging imported at retail, no imbalance
    mk = scenario.market
    np.testing.assert_allclose(res.bill.grid_import_kwh, 1.3)
    np.testing.assert_allclose(res.bill.cost, 1.3 * mk.retail_price_per_kwh)
    np.testing.assert_allclose(res.bill.imbalance_kwh, 0.0, atol=1e-12)
    # an independent check: pandapower's AC power flow of the dimmed interval
    ac = AcPowerFlow(grid.feeder).run(res.outcome.p_kw, res.outcome.q_kvar)
    g = scenario.grid
    assert ac.v_pu.min() >= g.v_min_pu and ac.loading_frac.max() <= 1.0
    grid.close()


def test_without_dimming_the_same_case_is_violated(tmp_path) -> None:
    _, grid, res = _one_interval(tmp_path, dimming=False)
    assert res.outcome.check.violations > 0  # no PV to curtail, no charging that may wait
    violation_hours = float(res.outcome.check.violations > 0) * DT_H
    assert violation_hours == 0.25
    np.testing.assert_allclose(res.flows.ev_kwh, 5.5)
    np.testing.assert_allclose(res.dimmed_or_zero_kwh, 0.0)
    grid.close()


def test_what_dimming_leaves_is_then_deferred(tmp_path) -> None:
    """A guaranteed 10 kW is not enough here: dimming cuts 5.5 − 2.5 = 3 kWh per car first,
    then the re-clearing defers part of the 2 kWh that could still wait (5 of 5.5 could)."""
    _, grid, res = _one_interval(tmp_path, True, min_kw=10.0, deferrable_kwh=5.0)
    np.testing.assert_allclose(res.dimmed_kwh, 3.0)
    np.testing.assert_allclose(res.ev_shortfall_kwh, 0.0)  # the cut could all wait
    assert res.outcome.recleared and res.outcome.check.violations == 0
    deferred = res.ev_deferred_kwh
    assert (deferred > 0).all() and (deferred <= 2.0 + 1e-9).all()
    np.testing.assert_allclose(res.flows.ev_kwh, 2.5 - deferred)
    assert (res.flows.ev_kwh >= 0.5 - 1e-9).all()  # the 0.5 kWh that cannot wait is charged
    np.testing.assert_allclose(res.bill.grid_import_kwh, 0.25 + res.flows.ev_kwh)
    np.testing.assert_allclose(res.bill.imbalance_kwh, 0.0, atol=1e-12)
    assert len(res.order_filled_kwh) == N  # fills refer to the orders as submitted
    grid.close()


def test_dimming_never_cuts_a_device_below_the_guaranteed_minimum() -> None:
    """Battery (flexible buy order) and EV (own charging) of three households, 1.05 kWh
    guaranteed per device: h0 registered, buys all of it; h1 registered, its PV covers all
    but 2 kWh of its charging; h2 not registered."""
    own = np.array([[0.0, 0.0, 0.0], [5.5, 5.5, 5.5]])  # battery, ev
    flex = np.array([[3.0, 0.5, 3.0], [0.0, 0.0, 0.0]])
    own_cut, flex_cut = dimming_cuts(
        own, flex, np.array([5.75, 2.0, 5.75]), np.array([True, True, False]), 1.05
    )
    np.testing.assert_allclose(flex_cut, [[1.95, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # h1's own charging is cut only by what it draws from the feeder (2 kWh)
    np.testing.assert_allclose(own_cut, [[0.0, 0.0, 0.0], [4.45, 2.0, 0.0]])
    left = own + flex - own_cut - flex_cut
    # no device below the minimum, or below what it planned where that was less (h1's battery)
    assert (left >= np.minimum(own + flex, 1.05) - 1e-12).all()
    np.testing.assert_allclose(left[:, :2], [[1.05, 0.5], [1.05, 3.5]])
    np.testing.assert_allclose(left[:, 2], [3.0, 5.5])  # the unregistered one untouched


def test_registration_is_an_exact_seeded_share() -> None:
    reg = registered_households(40, 0.25, 7)
    assert reg.sum() == 10
    np.testing.assert_array_equal(reg, registered_households(40, 0.25, 7))
    assert not registered_households(40, 0.0, 7).any()


# 36 households on a feeder generated for 30, every one with an EV on a 22 kW charger:
# charging on arrival in a January evening overloads the transformer (as in
# tests/scenarios/test_grid_run.py, where EV deferral relieves it), all registered.
EVENING_EVS = {
    "simulation": {"start": "2026-01-13", "days": 1, "seed": 3},
    "community": {
        "households": 36,
        "pv_share": 0.2,
        "battery_share": 0.2,
        "ev_share": 1.0,
        "v2g_share": 0.3,
        "ev_charger_kw": 22.0,
    },
    "grid": {"feeder": "radial:30", "check": "pyomo+ac", "controllable_share": 1.0},
}


def test_evening_wallboxes_are_dimmed_before_deferral(tmp_path, check_departures) -> None:
    scenario = load_scenario(EVENING_EVS)
    run(scenario, tmp_path)
    t = read_results(tmp_path)
    iv, a, k, g = t["intervals"], t["agents"], t["kpis"], scenario.grid
    dimmed = iv[iv.dimmed_kwh > 0]
    assert len(dimmed) >= 4 and dimmed.timestamp.dt.hour.between(15, 21).all()
    assert (dimmed.violations_before_reclear > 0).all()
    assert (iv.violations == 0).all() and k["violation_hours"] == 0
    # dimming came first and was enough: nothing deferred or curtailed on top
    assert not iv.recleared.any() and k["curtailed_kwh"] == 0
    # reported per household, in the intervals and in the KPIs alike
    per_t = a.groupby("t").dimmed_kwh.sum()
    np.testing.assert_allclose(per_t.to_numpy(), iv.dimmed_kwh.to_numpy(), atol=1e-9)
    assert k["dimmed_kwh"] == pytest.approx(iv.dimmed_kwh.sum())
    assert k["dimming_hours"] == len(dimmed) * 0.25
    # a dimmed wallbox still charges: at least the 1.05 kWh guaranteed, or what was left
    charging = a[(a.dimmed_kwh > 0) & (a.ev_kwh > 0)]
    assert (charging.ev_kwh >= 1.05 - 1e-9).all()
    # the dimmed charging was all charging that could wait: every car leaves with its SoC
    assert k["ev_shortfall_kwh"] == 0
    assert check_departures(scenario, a) >= 30
    # the baseline goes through the same check and dims too
    assert k["baseline_dimmed_kwh"] > 0 and (iv.baseline_violations == 0).all()
    # energy balance and no imbalance for the operator's instructions
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    assert a.imbalance_kwh.abs().max() < 1e-8
    # batteries dimmed in charging stay within their SoC bounds
    hh = t["households"]
    soc = a.merge(hh[["battery_kwh"]], left_on="agent_id", right_index=True)
    assert (soc.soc_kwh <= 0.95 * soc.battery_kwh_y + 1e-9).all()
    assert (soc.soc_kwh >= 0.05 * soc.battery_kwh_y - 1e-9).all()
    # the report shows the dimming events
    assert "dimmed by the grid operator" in (tmp_path / "report.html").read_text()
    # AC (pandapower) of every interval, as the run checked it
    assert (iv.ac_v_min_pu >= g.v_min_pu - 0.005).all()
    assert (iv.ac_max_line_loading_frac <= 1.0).all()


def test_dimming_without_the_feeder_check_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=r"grid\.controllable_share = 0\.5: .*grid\.check"):
        load_scenario({"grid": {"check": "off", "controllable_share": 0.5}})
    # registered but not dimmed: fine without the feeder
    load_scenario({"grid": {"check": "off", "controllable_share": 0.5, "dimming": False}})
