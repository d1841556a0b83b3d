"""Stressed intervals are detected, re-cleared, and the re-cleared injections pass AC."""

from __future__ import annotations

import numpy as np
import pytest

from grid import AcPowerFlow, Feeder, FeederModel, assign_households, load_feeder
from market.orders import Side

H = 0.25
V_MIN, V_MAX = 0.95, 1.05


@pytest.fixture(scope="module")
def lv() -> tuple[Feeder, FeederModel, AcPowerFlow, np.ndarray]:
    f = load_feeder("radial:60", households=60)
    return f, FeederModel(f, V_MIN, V_MAX), AcPowerFlow(f), assign_households(f, 60, seed=7)


def _assert_ac_feasible(ac: AcPowerFlow, model: FeederModel, p: np.ndarray, q: np.ndarray) -> None:
    chk = model.check(p, q)
    res = ac.run(p, q)
    assert chk.violations == 0
    assert res.v_pu.min() >= V_MIN and res.v_pu.max() <= V_MAX
    assert res.loading_frac.max() <= 1.0
    # the linear model is off by less than the margin it keeps
    assert np.abs(chk.v_pu - res.v_pu).max() < model.v_margin_pu


def test_noon_pv_export_is_detected_and_curtailed(lv) -> None:
    """60 households, 50 with 7 kW PV exporting 6.5 kW, 10 buying 3 kW: 295 kW of export
    through a 250 kVA transformer (AC: 115 % loading, 1.042 p.u.)."""
    f, model, ac, hh = lv
    rng = np.random.default_rng(3)
    sell = np.arange(60) >= 10
    net_kw = np.where(sell, 6.5, -3.0)
    p = np.bincount(hh, weights=net_kw, minlength=f.n_bus)
    q = np.zeros(f.n_bus)
    chk = model.check(p, q)
    assert chk.solved_with == "pyomo" and chk.violations > 0
    assert chk.line_violation[0]  # the transformer
    assert ac.run(p, q).loading_frac.max() > 1.1
    res = model.clear_constrained(
        np.zeros(f.n_bus), q, hh, np.where(sell, Side.SELL, Side.BUY), np.abs(net_kw) * H,
        rng.uniform(0.10, 0.25, 60),
        np.bincount(hh[sell], weights=np.full(50, 7.0), minlength=f.n_bus), 0.30, 0.08, H,
    )  # fmt: skip
    assert res.residual_violations == 0
    assert res.curtailed_kw.sum() > 40.0
    assert res.deferred_kw.sum() == 0.0
    np.testing.assert_allclose(res.p_kw, p - res.curtailed_kw)
    _assert_ac_feasible(ac, model, res.p_kw, res.q_kvar)
    # curtailment is free at the margin behind the full transformer; upstream energy
    # still sells at the feed-in price
    assert res.nodal_price_per_kwh[f.slack_bus] == pytest.approx(0.08, abs=1e-6)
    assert np.abs(np.delete(res.nodal_price_per_kwh, f.slack_bus)).max() < 1e-4


def test_evening_ev_charging_is_detected_and_deferred(lv) -> None:
    """60 households at 1.5 kW, 20 of them charging EVs at 11 kW: 310 kW through 250 kVA."""
    f, model, ac, hh = lv
    rng = np.random.default_rng(4)
    ev_kw = np.where(np.arange(60) < 20, 11.0, 0.0)
    net_kw = -1.5 - ev_kw
    p = np.bincount(hh, weights=net_kw, minlength=f.n_bus)
    q = np.zeros(f.n_bus)
    chk = model.check(p, q)
    assert chk.solved_with == "pyomo" and chk.violations > 0
    res = model.clear_constrained(
        np.zeros(f.n_bus), q, hh, np.full(60, Side.BUY), -net_kw * H, rng.uniform(0.10, 0.25, 60),
        np.zeros(f.n_bus), 0.30, 0.08, H,
        deferrable_kw=np.bincount(hh, weights=ev_kw, minlength=f.n_bus),
    )  # fmt: skip
    assert res.residual_violations == 0
    assert 0.0 < res.deferred_kw.sum() < ev_kw.sum()
    _assert_ac_feasible(ac, model, res.p_kw, res.q_kvar)
    # importing at the slack: energy there is worth the retail price
    assert res.nodal_price_per_kwh[f.slack_bus] == pytest.approx(0.30, abs=1e-6)
