"""Loading is current over rated current: in the check, the clearing limit and the AC check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from grid import AcPowerFlow, Feeder, FeederModel, load_feeder, validate_feeder
from market.orders import Side


def _case33bw_current_loading(ieee33: Feeder, scale: float) -> np.ndarray:
    """pandapower's own case33bw at ``scale`` times its load, lines rated as ieee33's."""
    net = pn.case33bw()
    net.load["p_mw"] *= scale
    net.load["q_mvar"] *= scale
    live = net.line.index[net.line["in_service"]]
    net.line.loc[live, "max_i_ka"] = ieee33.lines["s_max_kva"].to_numpy() / (
        math.sqrt(3.0) * 12.66 * 1000.0
    )
    pp.runpp(net, numba=False)
    return net.res_line.loc[live, "loading_percent"].to_numpy() / 100.0


@pytest.mark.parametrize("scale", [1.0, 1.3])
def test_ieee33_loading_is_pandapowers_current_loading_at_low_voltage(
    ieee33: Feeder, scale: float
) -> None:
    """At the published case (v_min 0.913) and 1.3 times it (v_min 0.884) the model's
    loading of every branch is within 0.01 of pandapower's current loading; apparent power
    over rating understates it by the voltage (by up to 0.06 and 0.11)."""
    model = FeederModel(ieee33, v_min_pu=0.90)
    p, q = ieee33.base_injection_kw() * scale, ieee33.base_injection_kvar() * scale
    chk = model.check(p, q, force_solve=True)
    assert chk.v_min_pu < 0.915
    expected = _case33bw_current_loading(ieee33, scale)
    np.testing.assert_allclose(chk.loading_frac, expected, atol=0.01)
    apparent = np.hypot(chk.line_p_kw, chk.line_q_kvar) / ieee33.lines["s_max_kva"].to_numpy()
    assert (expected - apparent).max() > 0.05
    # the AC check reports the same quantity
    ac = AcPowerFlow(ieee33).run(p, q)
    np.testing.assert_allclose(ac.loading_frac, expected, atol=1e-6)
    # and the screen agrees with the Pyomo check
    _, screened, _ = model.screen(p, q)
    np.testing.assert_allclose(screened, chk.loading_frac, atol=1e-6)


def test_low_voltage_is_counted_as_overload(ieee33: Feeder) -> None:
    """1.4 times the load (v_min 0.875) with the limits 0.85-1.05 and no thermal margin:
    the most loaded branch carries 0.95 of its rating in apparent power, 1.06 in current,
    and the branches over 1 are the violations."""
    model = FeederModel(ieee33, v_min_pu=0.85, thermal_margin_frac=0.0)
    chk = model.check(ieee33.base_injection_kw() * 1.4, ieee33.base_injection_kvar() * 1.4)
    expected = _case33bw_current_loading(ieee33, 1.4)
    assert expected.max() > 1.0
    np.testing.assert_allclose(chk.loading_frac, expected, atol=0.01)
    assert chk.line_violation.tolist() == (chk.loading_frac > 1.0 + 1e-6).tolist()
    assert chk.line_violation.any()


def test_clearing_limits_the_current_at_low_voltage(tmp_path: Path) -> None:
    """Slack 0 at 0.92 p.u. -- line a -- bus 1 -- line b (100 kVA) -- bus 2, limits
    0.90-1.05: bus 2 offers 200 kW of curtailable PV for sale to a buyer at bus 1.

    By hand: line b may carry ``100 kVA * V_1`` with ``V_1`` by the chord of ``sqrt(w)``
    over the allowed band [0.91, 1.04]: at ``V_1`` about 0.92 that is 91.9 kW, not the
    100 kW an apparent-power limit would let through (1.08 of the rated current); the
    buyer gets y = 91.9 kW. pandapower's AC current loading of line b after the clearing
    is 0.993: below 1, and below the model's 0.999 by line b's losses, which the
    linearisation around zero flow leaves out of the flow at bus 1."""
    feeder = {
        "name": "low3",
        "slack_bus": "0",
        "v_slack_pu": 0.92,
        "buses": [
            {"bus": "0", "vn_kv": 0.4, "household_bus": False},
            {"bus": "1", "vn_kv": 0.4},
            {"bus": "2", "vn_kv": 0.4},
        ],
        "lines": [
            {"line": "a", "from_bus": "0", "to_bus": "1", "r_ohm": 0.001, "x_ohm": 0.0005,
             "s_max_kva": 1000},
            {"line": "b", "from_bus": "1", "to_bus": "2", "r_ohm": 0.01, "x_ohm": 0.005,
             "s_max_kva": 100},
        ],
    }  # fmt: skip
    path = tmp_path / "low3.json"
    path.write_text(json.dumps(feeder))
    f = load_feeder(str(path), households=2)
    model = FeederModel(f, v_min_pu=0.90, v_max_pu=1.05, thermal_margin_frac=0.0)
    h = 0.25
    res = model.clear_constrained(
        np.zeros(3), np.zeros(3), order_bus=np.array([2, 1]),
        order_side=np.array([Side.SELL, Side.BUY]),
        order_kwh=np.array([50.0, 30.0]), order_price_per_kwh=np.array([0.10, 0.25]),
        curtailable_kw=np.array([0.0, 0.0, 200.0]), retail_price_per_kwh=0.30,
        feed_in_price_per_kwh=0.05, interval_hours=h,
    )  # fmt: skip
    # hand: LinDistFlow, line a carries y - 120 towards bus 1 (bus 1 buys 120, bus 2 sends y)
    v_lo, v_hi, r_a = 0.91, 1.04, 0.001 / 0.16
    k = 2.0 * r_a / 1000.0
    w_slack = 0.92**2
    # y = 100 (v_lo + (w1 - v_lo^2)/(v_lo+v_hi)),  w1 = w_slack - 2 r_a (120 - y)/1000
    y = 100.0 * (v_lo + (w_slack - 120.0 * k - v_lo**2) / (v_lo + v_hi))
    y /= 1.0 - 100.0 * k / (v_lo + v_hi)
    assert y == pytest.approx(91.9, abs=0.05)
    assert res.curtailed_kw[2] == pytest.approx(200.0 - y, abs=1e-5)
    np.testing.assert_allclose(res.order_filled_kwh, [y * h, y * h], atol=1e-6)
    assert res.grid.loading_frac[1] <= 1.0
    ac = AcPowerFlow(f).run(res.p_kw, res.q_kvar)
    assert res.grid.loading_frac[1] - 0.01 < ac.loading_frac[1] <= res.grid.loading_frac[1]
    assert 0.99 < ac.loading_frac[1] <= 1.0


def test_lv_loading_error_is_the_losses_and_within_the_thermal_margin() -> None:
    """radial:60, linearised around zero flow: its flows leave out the losses, so the model's
    loading is below AC's by about the losses' share of the flow (the figures of the
    grid.lindistflow docstring); at a load that puts the most loaded branch at its rating
    the gap is below the default thermal margin of 0.05."""
    f = load_feeder("radial:60", households=60)
    model = FeederModel(f)
    c = validate_feeder(f, model=model).cases.set_index("case")
    assert c["max_abs_loading_error_frac"].tolist() == pytest.approx(
        [0.010, 0.043, 0.075, 0.003], abs=1e-3
    )
    assert c.at["load x1.0", "max_abs_loading_error_frac"] < model.thermal_margin_frac
    assert (c["max_loading_model_frac"] <= c["max_loading_ac_frac"])[:3].all()
    assert c["max_abs_v_error_pu"].tolist() == pytest.approx(
        [0.0003, 0.0015, 0.0026, 0.0003], abs=1e-4
    )
