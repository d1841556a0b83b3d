"""The check: screen and Pyomo model agree, near-limit intervals go to Pyomo."""

from __future__ import annotations

import numpy as np
import pytest

from grid import Feeder, FeederModel
from grid.highs_direct import stock_forced


def test_screen_and_pyomo_are_the_same_linear_model(
    ieee33: Feeder, ieee33_model: FeederModel
) -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = ieee33.base_injection_kw() * rng.uniform(0.3, 1.2, ieee33.n_bus)
        q = ieee33.base_injection_kvar() * rng.uniform(0.3, 1.2, ieee33.n_bus)
        v, loading, _ = ieee33_model.screen(p, q)
        chk = ieee33_model.check(p, q, force_solve=True)
        assert chk.solved_with == "pyomo"
        np.testing.assert_allclose(chk.v_pu, v, atol=1e-7)
        np.testing.assert_allclose(chk.loading_frac, loading, atol=1e-6)


def test_far_inside_is_screened_near_limit_is_solved(
    ieee33: Feeder, ieee33_model: FeederModel
) -> None:
    light = ieee33.background_injection_kw(0.3)  # 30 % of peak: v_min ~ 0.975
    q_light = ieee33.background_injection_kvar(0.3)
    assert ieee33_model.check(light, q_light).solved_with == "screen"
    peak = ieee33.base_injection_kw()  # v_min 0.913 < 0.96: over the limit
    chk = ieee33_model.check(peak, ieee33.base_injection_kvar())
    assert chk.solved_with == "pyomo"
    assert chk.violations == int(chk.bus_violation.sum()) > 0
    assert not chk.bus_violation[ieee33.slack_bus]
    # the vectorised screen flags the same intervals
    p = np.stack([light, peak])
    q = np.stack([q_light, ieee33.base_injection_kvar()])
    v, loading, needs = ieee33_model.screen(p, q)
    assert v.shape == (2, 33) and loading.shape == (2, 32)
    assert needs.tolist() == [False, True]


def test_losses_and_import_balance(ieee33: Feeder, ieee33_model: FeederModel) -> None:
    p, q = ieee33.base_injection_kw(), ieee33.base_injection_kvar()
    chk = ieee33_model.check(p, q, force_solve=True)
    assert abs(chk.import_kw - (-p.sum() + chk.losses_kw)) < 0.5


@pytest.mark.skipif(stock_forced(), reason="the fast path is forced off")
def test_direct_updates_give_the_pyomo_solution(ieee33: Feeder, ieee33_model: FeederModel) -> None:
    """The fast path writes the balance-row bounds straight into the HiGHS model that the
    persistent interface built; it must return what Pyomo's own solve returns."""
    pure = FeederModel(ieee33, direct_updates=False)
    rng = np.random.default_rng(2)
    for _ in range(4):
        p = ieee33.base_injection_kw() * rng.uniform(0.2, 1.3, 33) + rng.uniform(0, 200, 33)
        q = ieee33.base_injection_kvar() * rng.uniform(0.2, 1.3, 33)
        a = ieee33_model.check(p, q, force_solve=True)
        b = pure.check(p, q, force_solve=True)
        np.testing.assert_allclose(a.v_pu, b.v_pu, atol=1e-8)
        np.testing.assert_allclose(a.line_p_kw, b.line_p_kw, atol=1e-5)
    assert ieee33_model._direct is not None and pure._direct is None
