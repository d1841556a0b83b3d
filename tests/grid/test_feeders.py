"""Feeders: built-in networks, household placement, background profile, errors."""

from __future__ import annotations

import numpy as np
import pytest

from grid import Feeder, FeederError, assign_households, load_feeder
from grid.named_feeders import IEEE33_BASE_CASE_FLOW_KVA, ieee33_base_case_flow_kva


def test_ieee33_tables(ieee33: Feeder) -> None:
    assert (ieee33.n_bus, ieee33.n_line) == (33, 32)
    assert ieee33.buses["bus"][ieee33.slack_bus] == "1"
    assert ieee33.buses["base_p_kw"].sum() == pytest.approx(3715.0)
    assert ieee33.buses["base_q_kvar"].sum() == pytest.approx(2300.0)
    assert len(ieee33.household_buses) == 32 and ieee33.slack_bus not in ieee33.household_buses
    assert ieee33.transformer_s_max_kva is None
    assert {"r_ohm", "x_ohm", "s_max_kva"} <= set(ieee33.lines.columns)


def test_ieee33_ratings_follow_their_documented_rule(ieee33: Feeder) -> None:
    flows = ieee33_base_case_flow_kva()
    np.testing.assert_allclose(IEEE33_BASE_CASE_FLOW_KVA, flows, atol=0.06)
    expected = np.maximum(200.0, np.ceil(1.5 * np.asarray(IEEE33_BASE_CASE_FLOW_KVA) / 10.0) * 10.0)
    np.testing.assert_allclose(ieee33.lines["s_max_kva"], expected)


def test_background_at_factor_one_is_the_published_case(ieee33: Feeder) -> None:
    factor = np.array([0.5, 1.0])
    p = ieee33.background_injection_kw(factor)
    assert p.shape == (2, 33)
    np.testing.assert_allclose(-p.sum(axis=1), [0.5 * 3715.0, 3715.0])
    np.testing.assert_allclose(ieee33.background_injection_kw(1.0), ieee33.base_injection_kw())
    np.testing.assert_allclose(
        -ieee33.background_injection_kvar(factor).sum(axis=1), [0.5 * 2300.0, 2300.0]
    )


@pytest.mark.parametrize("n, trafo_kva, n_feeders", [(10, 100, 1), (60, 250, 3), (200, 630, 9)])
def test_radial_is_sized_for_the_community(n: int, trafo_kva: int, n_feeders: int) -> None:
    f = load_feeder(f"radial:{n}", households=n)
    assert f.transformer_s_max_kva == trafo_kva
    assert f.lines["kind"].tolist().count("trafo") == 1
    assert (f.lines["line"].str.startswith("lv-")).sum() == n_feeders
    assert np.all(f.buses["base_p_kw"] == 0)
    # deterministic
    g = load_feeder(f"radial:{n}", households=n)
    assert f.lines.equals(g.lines) and f.buses.equals(g.buses)


def test_radial_without_count_uses_households() -> None:
    assert load_feeder("radial", households=30).name == "radial:30"


def test_assign_households_is_deterministic_balanced_and_on_household_buses(ieee33: Feeder) -> None:
    a = assign_households(ieee33, 100, seed=5)
    assert a.shape == (100,) and a.dtype == np.int64
    np.testing.assert_array_equal(a, assign_households(ieee33, 100, seed=5))
    assert not np.array_equal(a, assign_households(ieee33, 100, seed=6))
    assert set(a) <= set(ieee33.household_buses)
    counts = np.bincount(a, minlength=33)[ieee33.household_buses]
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("ieee34", "unknown feeder 'ieee34'"),
        ("radial:many", "'many' is not a number of households"),
        ("radial:5000", "between 1 and 2593: radial:5000 would have 3368 buses"),
        ("district:0x10", "1 to 400"),
        ("simbench:1-LV-nowhere--0-sw", "is not a SimBench grid code"),
    ],
)
def test_unknown_feeders(spec: str, fragment: str) -> None:
    with pytest.raises(FeederError, match=fragment):
        load_feeder(spec, households=10)


def test_simbench_lv_grid() -> None:
    f = load_feeder("simbench:1-LV-rural1--0-sw", households=13)
    assert f.transformer_s_max_kva == 160.0
    assert f.n_line == f.n_bus - 1
    assert len(f.household_buses) == 13
    assert np.all(f.buses["base_p_kw"] == 0)
    hh = assign_households(f, 13, seed=1)
    assert sorted(hh) == sorted(f.household_buses)
