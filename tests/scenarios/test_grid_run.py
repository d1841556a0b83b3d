"""The feeder in the loop: a stressed community is detected, re-cleared and AC-feasible."""

import numpy as np
import pytest

from grid import AcPowerFlow, load_feeder
from scenarios import ScenarioError, load_scenario, read_results, run
from scenarios.results.schema import QUANTUM

from .conftest import feeder_scenario

# 30 households, all with 8-10 kWp of PV, on a generated LV feeder sized for the
# community (100 kVA transformer): the noon export overloads it; many EVs charge at night.
STRESSED = feeder_scenario(
    "2026-06-20", 30, name="stressed", check="pyomo+ac",
    pv_share=1.0, pv_kwp=[8.0, 10.0], battery_share=0.3, ev_share=0.6, v2g_share=0.5,
)  # fmt: skip


@pytest.fixture(scope="module")
def stressed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("stressed")
    scenario = load_scenario(STRESSED)
    run(scenario, out)
    tables = read_results(out)
    tables["scenario"] = scenario
    tables["out"] = out
    return tables


def test_noon_export_is_detected_and_recleared_with_curtailment(stressed) -> None:
    iv = stressed["intervals"]
    flagged = iv[iv.violations_before_reclear > 0]
    assert len(flagged) >= 4
    assert flagged.timestamp.dt.hour.between(10, 16).all()
    assert flagged.recleared.all() and (flagged.curtailed_kwh > 0).all()
    assert (flagged.violations == 0).all()  # curtailment restored every limit
    assert (iv.loc[~iv.recleared, "curtailed_kwh"] == 0).all()
    assert stressed["kpis"]["curtailed_kwh"] == pytest.approx(iv.curtailed_kwh.sum())
    assert stressed["kpis"]["recleared_intervals"] == len(flagged)
    assert stressed["kpis"]["violation_hours_background"] == 0  # an LV feeder has none
    # curtailment is booked on the households whose PV was cut, and they stay balanced
    a = stressed["agents"]
    assert a.curtailed_kwh.sum() == pytest.approx(iv.curtailed_kwh.sum())
    assert (a.curtailed_kwh <= a.generation_kwh + a.curtailed_kwh + 1e-9).all()
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    # the feeder's instructions are commitments too: no imbalance for them
    assert a.imbalance_kwh.abs().max() < 1e-8


def test_nodal_prices_only_where_recleared(stressed) -> None:
    b, iv = stressed["buses"], stressed["intervals"]
    priced = b.groupby("t").nodal_price_per_kwh.apply(lambda s: s.notna().all())
    np.testing.assert_array_equal(priced.to_numpy(), iv.recleared.to_numpy())
    mk = stressed["scenario"].market
    noon = b[b.t.isin(iv.t[iv.recleared])]
    # the slack bus sees the utility's feed-in price; behind the full transformer a kWh
    # is worth nothing (it would be curtailed)
    slack = noon[noon.bus == "mv"].nodal_price_per_kwh
    assert slack.to_numpy() == pytest.approx(mk.feed_in_price_per_kwh, abs=1e-6)
    assert (noon[noon.bus != "mv"].nodal_price_per_kwh.abs() < 1e-3).all()


def test_buses_file_reproduces_the_injections(stressed) -> None:
    """p_kw per bus = Σ households' net injection there (no background on an LV feeder)."""
    a, b, hh = stressed["agents"], stressed["buses"], stressed["households"]
    net = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    per_bus = (net / 0.25).groupby([a.t, a.bus], observed=True).sum()
    got = b.set_index(["t", "bus"]).p_kw
    common = per_bus.index
    # agents.parquet's four energies per household, each within QUANTUM / 2, over 0.25 h
    bound = 8 * a.agent_id.nunique() * QUANTUM
    np.testing.assert_allclose(got.loc[common].to_numpy(), per_bus.to_numpy(), atol=bound)
    # buses without households carry nothing
    hosting = set(hh.bus)
    assert (b[~b.bus.isin(hosting)].p_kw.abs() < 1e-12).all()


def test_feasible_intervals_are_feasible_in_ac(stressed) -> None:
    """No interval reported feasible violates a limit under AC by more than 0.005 p.u."""
    scenario = stressed["scenario"]
    g = scenario.grid
    ac = AcPowerFlow(load_feeder(g.feeder, households=scenario.community.households))
    iv, b, ln = stressed["intervals"], stressed["buses"], stressed["lines"]
    feasible = iv.t[iv.violations == 0]
    assert len(feasible) == len(iv)
    for t in feasible:
        inj = b[b.t == t]
        res = ac.run(inj.p_kw.to_numpy(), inj.q_kvar.to_numpy())
        assert res.v_pu.min() >= g.v_min_pu - 0.005, t
        assert res.v_pu.max() <= g.v_max_pu + 0.005, t
        assert res.loading_frac.max() <= 1.0 + 0.005, t
        np.testing.assert_allclose(ln[ln.t == t].loading_frac, res.loading_frac, atol=0.03)
        # the run's own AC check recorded the same current loading
        got = float(iv.loc[iv.t == t, "ac_max_line_loading_frac"].iloc[0])
        assert got == pytest.approx(res.loading_frac.max(), abs=1e-9), t
    k = stressed["kpis"]
    assert k["ac_max_voltage_error_pu"] < g.v_margin_pu
    assert k["ac_max_voltage_error_pu"] == pytest.approx(iv.ac_max_v_error_pu.max())


def test_unknown_feeder_is_a_scenario_error(tmp_path) -> None:
    with pytest.raises(ScenarioError, match=r"grid\.feeder: .*ieee34"):
        run(load_scenario({"grid": {"feeder": "ieee34"}}), tmp_path)
    bad = tmp_path / "feeder.json"
    bad.write_text('{"buses": [{"bus": "a"}], "lines": []}')
    with pytest.raises(ScenarioError, match=r"grid\.feeder: "):
        run(load_scenario({"grid": {"feeder": str(bad)}}), tmp_path / "out")


def test_report_has_the_feeder_figures(stressed) -> None:
    page = (stressed["out"] / "report.html").read_text()
    for title in (
        "Voltage along the feeder",
        "Voltage band over time",
        "Line and transformer loading",
        "Curtailment and re-cleared intervals",
        "Nodal prices where the market was re-cleared",
    ):
        assert title in page, title


# 36 households on a feeder generated for 30, every one with an EV on a 22 kW charger:
# charging on arrival in a January evening overloads the transformer.
EVENING_EVS = feeder_scenario(
    "2026-01-13", 36, feeder="radial:30", check="pyomo+ac",
    pv_share=0.2, battery_share=0.2, ev_share=1.0, v2g_share=0.3, ev_charger_kw=22.0,
)  # fmt: skip


def test_evening_ev_charging_is_deferred_and_feasible_in_ac(tmp_path, check_departures) -> None:
    scenario = load_scenario(EVENING_EVS)
    run(scenario, tmp_path)
    t = read_results(tmp_path)
    iv, g = t["intervals"], scenario.grid
    flagged = iv[iv.violations_before_reclear > 0]
    assert len(flagged) >= 2
    assert flagged.timestamp.dt.hour.between(15, 21).all()
    assert flagged.recleared.all() and (flagged.violations == 0).all()
    assert (flagged.curtailed_kwh == 0).all()  # no sun: the relief is deferred charging
    # the deferred charging is made up later: every EV still leaves with its SoC
    assert check_departures(scenario, t["agents"]) >= 30
    assert (iv.ac_v_min_pu >= g.v_min_pu - 0.005).all()
    assert (iv.ac_v_max_pu <= g.v_max_pu + 0.005).all()
    # the transformer the evening charging overloaded carries at most its rated current
    assert (iv.ac_max_line_loading_frac <= 1.0).all()
    assert iv.ac_max_line_loading_frac.max() > 0.9
    assert t["kpis"]["ac_max_line_loading_frac"] == pytest.approx(iv.ac_max_line_loading_frac.max())
    assert t["kpis"]["ac_max_voltage_error_pu"] < g.v_margin_pu
    a = t["agents"]
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    # the feeder's instructions are commitments too: no imbalance for them
    assert a.imbalance_kwh.abs().max() < 1e-8
