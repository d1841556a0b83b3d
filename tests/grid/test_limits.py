"""One set of limits and one tolerance (grid/limits.py) for the model, the stage and hosting
capacity: hand-computed limits, the tolerance edge, and bad limits refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grid import FeederModel, load_feeder
from grid.limits import VIOLATION_TOL, Limits
from scenarios import load_scenario
from scenarios.engine.grid_stage import GridStage, scenario_limits
from scenarios.studies.hosting_assessment import assess


def test_limits_by_hand() -> None:
    lim = Limits(0.90, 1.10, 0.02, 0.05)
    assert lim.v_lo_pu == pytest.approx(0.92) and lim.v_hi_pu == pytest.approx(1.08)
    assert lim.loading_limit_frac == pytest.approx(0.95)
    d = Limits()  # the model's defaults
    assert (d.v_lo_pu, d.v_hi_pu, d.loading_limit_frac) == pytest.approx((0.96, 1.04, 0.95))


def test_the_tolerance_edge() -> None:
    lim = Limits()
    half, twice = 0.5 * VIOLATION_TOL, 2 * VIOLATION_TOL
    v = np.array([lim.v_lo_pu - half, lim.v_lo_pu - twice, lim.v_hi_pu + half, lim.v_hi_pu + twice])
    np.testing.assert_array_equal(lim.under_voltage(v), [False, True, False, False])
    np.testing.assert_array_equal(lim.over_voltage(v), [False, False, False, True])
    np.testing.assert_array_equal(lim.bus_violation(v), [False, True, False, True])
    loading = np.array([0.95 + half, 0.95 + twice])
    np.testing.assert_array_equal(lim.line_violation(loading), [False, True])


@pytest.mark.parametrize(
    ("args", "match"),
    [((0.95, 1.05, 0.06), "voltage limits leave no room"), ((0.95, 1.05, 0.01, 1.0), "thermal")],
)
def test_bad_limits_are_refused(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Limits(*args)


def test_model_stage_and_hosting_count_the_same_violations(tmp_path) -> None:
    """A run's limits with v_margin 0.02: the stage's model holds them; the model's check
    and hosting's assessment both count a voltage 2 tolerances over the upper limit and a
    reverse flow 2 tolerances over the loading limit, and neither counts half a tolerance."""
    scenario = load_scenario(
        {"community": {"households": 2}, "grid": {"feeder": "radial:2", "v_margin_pu": 0.02}}
    )
    stage = GridStage(scenario, 2, tmp_path)
    lim = scenario_limits(scenario)
    assert stage.model.limits == lim == Limits(0.95, 1.05, 0.02)
    stage.close()
    model = FeederModel.with_limits(load_feeder("radial:2", households=2), lim)
    n, nl = model.feeder.n_bus, model.tree.n_line
    half, twice = 0.5 * VIOLATION_TOL, 2 * VIOLATION_TOL
    counted = []
    for excess in (half, twice):
        v = np.full(n, 1.0)
        v[-1] = lim.v_hi_pu + excess
        chk = model.state(np.zeros(nl), np.zeros(nl), v**2, "screen")
        counted.append(bool(chk.bus_violation.any()))
    assert counted == [False, True]
    out = tmp_path / "run"
    out.mkdir()
    # t 0: half a tolerance over both limits; t 1: twice over the voltage; t 2: the loading
    pd.DataFrame(
        {"t": [0, 1, 2], "curtailed_kwh": 0.0, "dimmed_kwh": 0.0, "unmet_heat_kwh": 0.0}
    ).to_parquet(out / "intervals.parquet")
    v_hi, load_hi = lim.v_hi_pu, lim.loading_limit_frac
    pd.DataFrame({"t": [0, 1, 2], "bus": "b", "v_pu": [v_hi + half, v_hi + twice, 1.0]}).to_parquet(
        out / "buses.parquet"
    )
    pd.DataFrame(
        {"t": [0, 1, 2], "line": "l", "p_kw": -10.0,
         "loading_frac": [load_hi + half, 0.5, load_hi + twice]}
    ).to_parquet(out / "lines.parquet")  # fmt: skip
    got = assess(out, scenario)
    assert not got.passed and got.failing_intervals == 2  # t 1 and t 2, not t 0
