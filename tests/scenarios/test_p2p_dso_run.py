"""The DSO of the bilateral market (``[market.p2p] dso = true``) through the market step,
on a hand-built congested feeder, checked under AC with pandapower.

The feeder: mv -(250 kVA trafo)- lv - l1 - b1 - l2 - b2 - l3 - b3, l1 and l2 rated
200 kVA, l3 (the far end) only 12 kVA, so the model holds it to 0.95 · 12 = 11.4 kW.
Six households, two per bus, one-hour intervals. The two near households (b1) buy 6 kWh
each at 0.30 (their inflexible demand). The two mid households (b2) offer 4 kWh each of
battery discharge at 0.10; the two far households (b3) export a 2 kWh PV surplus (a
``net`` sell order at 0.12) and offer 6 kWh each of battery discharge at 0.05. Battery
discharge happens only if it is sold; the PV surplus is injected whether or not it is.

Without charges the buyers take the cheapest, the far batteries' 12 kWh: l3 carries
4 + 12 = 16 kW, loading 16/12 = 1.33 (AC: overloaded). With the DSO (default step
0.05): each outer iteration the far pairs' charge rises by 0.05 · g with
g = loading − 0.95 ≈ 0.383 (the charge on the most-loading pair is the step times the
violation, and every far pair loads l3 alike), i.e. 0.019, 0.038, 0.0575; at the third
the far kWh costs the buyer 0.05 + 0.0575 > 0.10, so the buyers take the mid batteries'
8 kWh and 4 kWh from the far ones: l3 carries 4 + 4 = 8 kW. Four negotiations.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.households.community import KIND_BATTERY, KIND_NET, Plan, device_flows
from grid.ac import AcPowerFlow
from market.p2p_dso import DSORule
from market.p2p_pairs import P2PRule
from scenarios import ScenarioError, load_scenario, run
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.interval import IntervalResult, MarketStep
from scenarios.engine.p2p_dso import FeederDSO

FEEDER = {
    "name": "congested",
    "buses": [
        {"bus": "mv", "vn_kv": 20.0},
        {"bus": "lv", "vn_kv": 0.4, "household_bus": False},
        {"bus": "b1", "vn_kv": 0.4},
        {"bus": "b2", "vn_kv": 0.4},
        {"bus": "b3", "vn_kv": 0.4},
    ],
    "lines": [
        {"line": "t1", "from_bus": "mv", "to_bus": "lv", "kind": "trafo", "sn_kva": 250,
         "vk_percent": 4.0, "vkr_percent": 1.3},
        {"line": "l1", "from_bus": "lv", "to_bus": "b1", "r_ohm": 0.01, "x_ohm": 0.005,
         "s_max_kva": 200},
        {"line": "l2", "from_bus": "b1", "to_bus": "b2", "r_ohm": 0.01, "x_ohm": 0.005,
         "s_max_kva": 200},
        {"line": "l3", "from_bus": "b2", "to_bus": "b3", "r_ohm": 0.01, "x_ohm": 0.005,
         "s_max_kva": 12},
    ],
}  # fmt: skip
L3 = 3  # l3's row in the feeder's lines
TIGHT = {
    "primal_tol_kwh": 1e-7,
    "dual_tol_per_kwh": 1e-7,
    "relative_tol": 0.0,
    "max_iterations": 20000,
}


def scenario(tmp_path: Path, feeder: dict | None = None, **p2p: object) -> Scenario:
    path = tmp_path / "congested.json"
    path.write_text(json.dumps(feeder or FEEDER), encoding="utf-8")
    return load_scenario(
        {
            "name": "congested",
            "simulation": {"start": "2026-06-15", "days": 1, "interval_minutes": 60},
            "community": {"households": 6},
            "grid": {"feeder": str(path), "check": "pyomo+ac"},
            "market": {"mechanism": "p2p", "p2p": {**TIGHT, **p2p}},
        }
    )


def book(grid: GridStage) -> Plan:
    """The module docstring's orders for the households where the stage put them."""
    at = grid.feeder.buses["bus"].to_numpy()[grid.bus]
    rows: list[tuple[int, bool, float, float, int]] = []
    for h, bus in enumerate(at):
        if bus == "b1":
            rows.append((h, True, 6.0, 0.30, KIND_NET))
        elif bus == "b2":
            rows.append((h, False, 4.0, 0.10, KIND_BATTERY))
        else:
            rows += [(h, False, 6.0, 0.05, KIND_BATTERY), (h, False, 2.0, 0.12, KIND_NET)]
    household, is_buy, energy, price, kind = (np.array(c) for c in zip(*rows, strict=True))
    gen, demand = np.where(at == "b3", 2.0, 0.0), np.where(at == "b1", 6.0, 0.0)
    zero = np.zeros(len(at))
    return Plan(
        generation_kwh=gen, demand_kwh=demand, self_kwh={"battery": zero, "ev": zero},
        drawn_kwh={}, ev_deferrable_kwh=zero, net_kwh=gen - demand, household=household,
        is_buy=is_buy, energy_kwh=energy, price_per_kwh=price, kind=kind.astype(np.int8),
    )  # fmt: skip


def step(
    tmp_path: Path,
    plan_of: Callable[[GridStage], Plan] = book,
    feeder: dict | None = None,
    **p2p: object,
) -> tuple[GridStage, IntervalResult]:
    sc = scenario(tmp_path, feeder, **p2p)
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    grid = GridStage(sc, 6, out)
    assert sorted(grid.feeder.buses["bus"].to_numpy()[grid.bus]) == ["b1", "b1", "b2", "b2",
                                                                       "b3", "b3"]  # fmt: skip
    zero = np.zeros(grid.n_bus)
    res = MarketStep(sc, 6, grid).run(plan_of(grid), device_flows, zero, zero, t=0)
    return grid, res


def test_charges_restore_the_far_line_under_ac(tmp_path: Path) -> None:
    grid, res = step(tmp_path, dso=True)
    ac = AcPowerFlow(grid.feeder)
    # without charges: 16 kW on l3 overloads it under AC
    at = grid.feeder.buses["bus"].to_numpy()[grid.bus]
    net = np.select([at == "b1", at == "b3"], [-6.0, 8.0], 0.0)
    zero = np.zeros(grid.n_bus)
    p0, q0 = grid.injections(net, np.where(at == "b1", 6.0, 0.0), zero, zero)
    before = ac.run(p0, q0)
    assert before.loading_frac[L3] > 1.3
    # with them: four negotiations, restored by the charges alone (no re-clearing)
    assert res.dso.outer_iterations == 4 and res.dso.restored and not res.dso.fallback
    assert res.outcome is not None and not res.outcome.recleared
    assert res.violations_before_reclear == 0
    after = ac.run(res.outcome.p_kw, res.outcome.q_kvar)
    assert after.loading_frac.max() <= 1.0
    assert after.loading_frac[L3] == pytest.approx(8.0 / 12.0, abs=0.01)
    assert (after.v_pu >= 0.9).all() and (after.v_pu <= 1.1).all()
    # the trades: the mid batteries' 8 kWh and 4 kWh from the far ones
    pr = res.pairing
    seller_at = at[pr.seller]
    assert pr.energy_kwh[seller_at == "b2"].sum() == pytest.approx(8.0, abs=1e-4)
    assert pr.energy_kwh[seller_at == "b3"].sum() == pytest.approx(4.0, abs=1e-4)
    # the far pairs' charge: three steps of 0.05 · g, g = l3's loading over its limit at
    # 16 kW (the linear model's: 16/12 at about 1 p.u., ≈ 0.383)
    g = FeederDSO(grid, P2PRule(), DSORule()).state(p0, q0)[0][L3]
    assert g == pytest.approx(16.0 / 12.0 - 0.95, abs=5e-3)
    charge = res.network_charge_per_kwh
    np.testing.assert_allclose(charge[seller_at == "b3"], 3 * 0.05 * g, rtol=1e-9)
    np.testing.assert_array_equal(charge[seller_at == "b2"], 0.0)
    # money: the buyers pay the sellers' prices plus the charges, the DSO gets the charges
    assert res.dso.revenue == pytest.approx(float(charge @ pr.energy_kwh), abs=1e-6)
    assert res.dso.revenue == pytest.approx(4.0 * 3 * 0.05 * g, abs=1e-6)
    paid, received = res.bill.p2p_paid.sum(), res.bill.p2p_received.sum()
    assert paid - received == pytest.approx(res.dso.revenue, abs=1e-6)
    assert res.market_surplus == pytest.approx(res.dso.revenue, abs=1e-6)
    # every trade individually rational with its charge
    plan = res.plan
    buy, sell = np.flatnonzero(plan.is_buy), np.flatnonzero(~plan.is_buy)
    bid = plan.price_per_kwh[buy][res.match.trade_buy]
    ask = plan.price_per_kwh[sell][res.match.trade_sell]
    assert (pr.seller_price_per_kwh >= ask - 1e-9).all()
    assert (pr.price_per_kwh <= bid + 1e-9).all()
    np.testing.assert_allclose(pr.price_per_kwh, pr.seller_price_per_kwh + charge, atol=1e-12)


def far_chargers(grid: GridStage) -> Plan:
    """The voltage case: the b1 households export PV (one 5 kWh at 0.05, the other 8 kWh
    at 0.20, ``net`` orders), the b3 households each offer to charge 8 kWh into their
    batteries at 0.30 (a flexible buy order: drawn only if bought); b2 is idle."""
    at = grid.feeder.buses["bus"].to_numpy()[grid.bus]
    near = np.flatnonzero(at == "b1")
    rows: list[tuple[int, bool, float, float, int]] = []
    for h, bus in enumerate(at):
        if bus == "b1":
            first = h == near[0]
            rows.append((h, False, 5.0 if first else 8.0, 0.05 if first else 0.20, KIND_NET))
        elif bus == "b3":
            rows.append((h, True, 8.0, 0.30, KIND_BATTERY))
    household, is_buy, energy, price, kind = (np.array(c) for c in zip(*rows, strict=True))
    gen = np.where(at == "b1", np.where(np.arange(len(at)) == near[0], 5.0, 8.0), 0.0)
    zero = np.zeros(len(at))
    return Plan(
        generation_kwh=gen, demand_kwh=zero, self_kwh={"battery": zero, "ev": zero},
        drawn_kwh={}, ev_deferrable_kwh=zero, net_kwh=gen, household=household,
        is_buy=is_buy, energy_kwh=energy, price_per_kwh=price, kind=kind.astype(np.int8),
    )  # fmt: skip


def test_charges_restore_the_far_voltage_under_ac(tmp_path: Path) -> None:
    """l3 with 1 Ω and a 200 kVA rating: the b3 batteries charging 13 kWh (all the PV on
    offer; their 16 kWh of bids exceed it) pull b3 below the model's 0.96 p.u. (0.95 + the
    margin). The DSO charges the b3 buyers' pairs (sensitivity: the common-path resistance)
    by 0.05 · g per negotiation, g = (0.96 − v)/0.05 (half the ±5 % band); while the charge
    is below 0.10 both sellers still sell; at the third step B's 0.20 + charge > 0.30 and
    only A's 5 kWh trade: b3 within the band, four negotiations, AC checked."""
    feeder = json.loads(json.dumps(FEEDER))
    feeder["lines"][L3].update(r_ohm=1.0, s_max_kva=200)
    grid, res = step(tmp_path, far_chargers, feeder, dso=True)
    at = grid.feeder.buses["bus"].to_numpy()[grid.bus]
    b3 = int(np.flatnonzero(grid.feeder.buses["bus"].to_numpy() == "b3")[0])
    ac = AcPowerFlow(grid.feeder)
    zero = np.zeros(grid.n_bus)
    gen = far_chargers(grid).generation_kwh
    uncharged = gen - np.where(at == "b3", 6.5, 0.0)  # 13 kWh bought by the two
    p0, q0 = grid.injections(uncharged, np.zeros(6), zero, zero)
    assert ac.run(p0, q0).v_pu[b3] < 0.95
    assert res.dso.outer_iterations == 4 and res.dso.restored and not res.dso.fallback
    assert res.outcome is not None and not res.outcome.recleared
    after = ac.run(res.outcome.p_kw, res.outcome.q_kvar)
    assert (after.v_pu >= 0.95).all() and (after.v_pu <= 1.05).all()
    pr = res.pairing
    assert pr.energy_kwh.sum() == pytest.approx(5.0, abs=1e-4)
    n_bus = grid.n_bus
    g = FeederDSO(grid, P2PRule(), DSORule()).state(p0, q0)[0][grid.model.tree.n_line + n_bus + b3]
    v_linear = grid.model.screen(p0, q0)[0][b3]  # LinDistFlow, within the 0.01 margin of AC
    assert abs(v_linear - ac.run(p0, q0).v_pu[b3]) < 0.01
    assert g == pytest.approx((0.96 - v_linear) / 0.05, rel=1e-9)
    np.testing.assert_allclose(res.network_charge_per_kwh, 3 * 0.05 * g, rtol=1e-6)
    assert res.dso.revenue == pytest.approx(5.0 * 3 * 0.05 * g, abs=1e-5)
    assert res.bill.p2p_paid.sum() - res.bill.p2p_received.sum() == pytest.approx(
        res.dso.revenue, abs=1e-6
    )
    assert (pr.price_per_kwh <= 0.30 + 1e-9).all() and (pr.seller_price_per_kwh >= 0.05).all()


def test_without_the_dso_the_grid_stage_re_clears(tmp_path: Path) -> None:
    """The same interval with ``dso = false``: the negotiated trades overload l3 and the
    grid stage re-clears it (today's path), without network charges."""
    _, res = step(tmp_path)
    assert res.violations_before_reclear >= 1
    assert res.outcome is not None and res.outcome.recleared
    assert res.dso.outer_iterations == 0 and res.dso.revenue == 0.0
    np.testing.assert_array_equal(res.network_charge_per_kwh, 0.0)


def test_voltage_sensitivity_is_the_common_path_resistance(tmp_path: Path) -> None:
    """On this LV feeder the model linearises at zero flow, so its map is LinDistFlow:
    ∂w_b/∂p_k = 2 Σ_l path[b, l] path[k, l] r_l (per unit), the flows' ∂P_l/∂p_k =
    −path[k, l]."""
    grid = GridStage(scenario(tmp_path), 6, tmp_path)
    dso = FeederDSO(grid, P2PRule(), DSORule())
    t = grid.model.tree
    s = grid.feeder.s_base_kva
    common = 2.0 * (t.path * t.r_pu) @ t.path.T
    np.testing.assert_allclose(dso.dw * s, common, atol=1e-12)
    np.testing.assert_allclose(dso.dp * s, -t.path.T, atol=1e-12)


def test_dso_needs_the_feeder_and_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="dso = true: the DSO checks the trades"):
        load_scenario({"community": {"households": 4}, "grid": {"check": "off"},
                       "market": {"mechanism": "p2p", "p2p": {"dso": True}}})  # fmt: skip
    with pytest.raises(ScenarioError, match="dso_max_outer"):
        scenario(tmp_path, dso=True, dso_max_outer=0)
    with pytest.raises(ScenarioError, match="dso_step_per_kwh"):
        scenario(tmp_path, dso=True, dso_step_per_kwh=-0.1)


RUN = {
    "name": "p2p-dso",
    "simulation": {"start": "2026-06-15", "days": 1, "seed": 5},
    "community": {"households": 14, "pv_share": 0.5, "battery_share": 0.3, "ev_share": 0.2},
    "grid": {"feeder": "radial:14", "check": "pyomo"},
}


def test_a_run_where_nothing_breaks_is_unchanged(tmp_path: Path) -> None:
    """A day on radial:14 whose feeder holds: with ``dso = true`` every interval is one
    negotiation, restored, without charges, and intervals.parquet and trades.parquet
    equal the run without the DSO's (but for the DSO's own columns)."""
    for dso in (False, True):
        market = {"mechanism": "p2p", "p2p": {"dso": dso, "partners": 4}}
        run(load_scenario({**RUN, "market": market}), tmp_path / str(dso))
    off, on = (pd.read_parquet(tmp_path / d / "intervals.parquet") for d in ("False", "True"))
    assert (on.dso_outer_iterations == on.admm_iterations.gt(0).astype(int)).all()
    assert on.dso_restored.all() and not on.dso_fallback.any() and (on.dso_revenue == 0).all()
    assert (on.violations_before_reclear == 0).all()
    dso_columns = [c for c in on.columns if c.startswith("dso_")]
    pd.testing.assert_frame_equal(on.drop(columns=dso_columns), off)
    t_off, t_on = (pd.read_parquet(tmp_path / d / "trades.parquet") for d in ("False", "True"))
    assert len(t_on) > 0 and (t_on.network_charge_per_kwh == 0).all()
    pd.testing.assert_frame_equal(t_on.drop(columns="network_charge_per_kwh"), t_off)


def test_compare_reports_charges_and_outer_iterations(tmp_path: Path) -> None:
    """``p2pgrid compare --mechanisms uniform,p2p`` on the congested feeder with l3 rated
    2.5 kVA and a PV community: the PV surplus at the far end breaks l3 whoever buys it (a
    ``net`` order's energy flows whether traded or not), so no trade is charged and every
    broken interval goes to the grid stage after one negotiation at most; compare's
    columns are the sums and means of the intervals' (null for the uniform auction)."""
    feeder = json.loads(json.dumps(FEEDER))
    feeder["lines"][L3]["s_max_kva"] = 2.5
    (tmp_path / "weak.json").write_text(json.dumps(feeder), encoding="utf-8")
    (tmp_path / "weak.toml").write_text(
        'name = "weak"\n[simulation]\nstart = "2026-06-19"\ndays = 1\nseed = 5\n'
        "[community]\nhouseholds = 6\npv_share = 0.9\nbattery_share = 0.7\n"
        f'[grid]\nfeeder = "{tmp_path / "weak.json"}"\ncheck = "pyomo"\n'
        '[market]\nmechanism = "p2p"\n[market.p2p]\ndso = true\n',
        encoding="utf-8",
    )
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    args = ["compare", str(tmp_path / "weak.toml"), "--mechanisms", "uniform,p2p"]
    proc = subprocess.run(
        [*cmd, *args, "--out", str(tmp_path / "cmp")], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "dso_revenue" in proc.stdout and "dso_outer_iterations_mean" in proc.stdout
    table = pd.read_parquet(tmp_path / "cmp" / "comparison.parquet").set_index("mechanism")
    iv = pd.read_parquet(tmp_path / "cmp" / "p2p" / "intervals.parquet")
    broken = ~iv.dso_restored
    assert broken.any()
    assert (broken == iv.violations_before_reclear.gt(0)).all()
    # the grid stage re-clears the broken intervals where the market can relieve them
    assert iv.dso_fallback.any() and not (iv.dso_fallback & ~broken).any()
    assert (iv.dso_outer_iterations <= 1).all() and (iv.dso_revenue == 0).all()
    p2p = table.loc["p2p"]
    assert p2p["dso_revenue"] == 0.0
    assert p2p["dso_fallback_intervals"] == iv.dso_fallback.sum()
    assert p2p["dso_outer_iterations_mean"] == pytest.approx(iv.dso_outer_iterations.mean())
    assert p2p["dso_outer_iterations_max"] == 1
    assert np.isnan(table.loc["uniform", "dso_revenue"])
