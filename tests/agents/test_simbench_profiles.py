"""SimBench household and PV profiles (optional extra)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from agents.profiles.simbench import (
    SIMBENCH_INSTALL_HINT,
    SimbenchProfiles,
    load_simbench_profiles,
)
from agents.profiles.source import ProfileSource, Site

needs_simbench = pytest.mark.skipif(
    importlib.util.find_spec("simbench") is None, reason="simbench is not installed"
)

BERLIN = Site(latitude=52.52, longitude=13.40, altitude_m=34.0, timezone="Europe/Berlin")
CODE = "1-LV-rural1--0-sw"


def make_source(
    n: int = 30,
    *,
    start: str = "2016-01-01",
    days: int = 3,
    interval_minutes: int = 15,
    seed: int = 5,
) -> SimbenchProfiles:
    return SimbenchProfiles(
        start=pd.Timestamp(start, tz="Europe/Berlin"),
        days=days,
        interval_minutes=interval_minutes,
        site=BERLIN,
        annual_kwh=np.linspace(1500.0, 6000.0, n),
        pv_kwp=np.where(np.arange(n) % 3 == 0, 0.0, 7.5),
        seed=seed,
        grid_code=CODE,
    )


def test_missing_simbench_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "simbench", None)  # makes `import simbench` fail
    with pytest.raises(ImportError) as info:
        make_source()
    assert SIMBENCH_INSTALL_HINT in str(info.value)
    assert SIMBENCH_INSTALL_HINT == 'pip install "p2pgrid[simbench]"'


@pytest.fixture(scope="module")
def raw_profiles() -> dict[str, pd.DataFrame]:
    sb = pytest.importorskip("simbench")
    net = sb.get_simbench_net(CODE)
    return {"load": net.profiles["load"], "renewables": net.profiles["renewables"]}


@needs_simbench
def test_profiles_load_and_are_normalised() -> None:
    prof = load_simbench_profiles(CODE)
    assert prof.load_names == ("H0-A", "H0-B", "H0-C")
    assert prof.pv_names == ("PV5", "PV6", "PV8")
    assert prof.profile_year == 2016
    assert prof.load_kwh_per_kwh.shape == (366 * 96, 3)
    np.testing.assert_allclose(prof.load_kwh_per_kwh.sum(axis=0), 1.0, rtol=1e-12)
    assert prof.load_kwh_per_kwh.min() > 0.0
    # PV relative to installed power: at most 1 kWp x 0.25 h, 600-700 full-load hours
    assert prof.pv_kwh_per_kwp.min() == 0.0 and prof.pv_kwh_per_kwp.max() <= 0.25
    assert np.all((prof.pv_kwh_per_kwp.sum(axis=0) > 600) & (prof.pv_kwh_per_kwp.sum(axis=0) < 700))
    assert prof.load_seconds > 0.0


@needs_simbench
def test_values_match_raw_simbench(raw_profiles: dict[str, pd.DataFrame]) -> None:
    src = make_source(days=2)
    w = src.window(0, 2)
    load, ren = raw_profiles["load"], raw_profiles["renewables"]
    for i in (0, 1, 2, 7):
        name = src.profiles.load_names[src.load_profile_index[i]]
        p = load[f"{name}_pload"].to_numpy()
        expected = src.annual_kwh[i] * p[:192] / p.sum()
        np.testing.assert_allclose(w.demand_kwh[:, i], expected, rtol=1e-9)
        pv = ren[src.profiles.pv_names[src.pv_profile_index[i]]].to_numpy()
        np.testing.assert_allclose(w.generation_kwh[:, i], src.pv_kwp[i] * 0.25 * pv[:192])


@needs_simbench
def test_full_profile_year_scales_to_annual_kwh_and_kwp() -> None:
    src = make_source(days=366)  # 2016 is the SimBench year: the whole profile once
    demand, generation = np.zeros(30), np.zeros(30)
    for d in range(0, 366, 61):
        w = src.window(d, 61)
        demand += w.demand_kwh.sum(axis=0)
        generation += w.generation_kwh.sum(axis=0)
    np.testing.assert_allclose(demand, src.annual_kwh, rtol=1e-9)
    full_load_h = src.profiles.pv_kwh_per_kwp.sum(axis=0)[src.pv_profile_index]
    np.testing.assert_allclose(generation, src.pv_kwp * full_load_h, rtol=1e-9)
    assert np.all(generation[src.pv_kwp == 0] == 0.0)


@needs_simbench
def test_deterministic_assignment_and_window_invariance() -> None:
    a, b = make_source(days=4), make_source(days=4)
    assert isinstance(a, ProfileSource)
    both = a.window(1, 2)
    first, second = b.window(1, 1), b.window(2, 1)
    np.testing.assert_array_equal(both.demand_kwh, np.vstack([first.demand_kwh, second.demand_kwh]))
    np.testing.assert_array_equal(
        both.generation_kwh, np.vstack([first.generation_kwh, second.generation_kwh])
    )
    assert set(a.load_profile_index) == {0, 1, 2}  # 30 households use all three
    other = make_source(days=4, seed=6)
    assert not np.array_equal(other.load_profile_index, a.load_profile_index)


@needs_simbench
def test_resampling_sums_and_splits_quarter_hours() -> None:
    q = make_source(days=2).window(0, 2)
    h = make_source(days=2, interval_minutes=60).window(0, 2)
    f = make_source(days=2, interval_minutes=5).window(0, 2)
    np.testing.assert_allclose(h.demand_kwh, q.demand_kwh.reshape(48, 4, -1).sum(axis=1))
    np.testing.assert_allclose(h.generation_kwh, q.generation_kwh.reshape(48, 4, -1).sum(axis=1))
    np.testing.assert_allclose(f.demand_kwh, np.repeat(q.demand_kwh / 3.0, 3, axis=0))


@needs_simbench
def test_time_mapping_uses_local_standard_time_and_wraps() -> None:
    src = make_source(start="2025-12-30", days=3)
    assert src.standard_offset == pd.Timedelta(hours=1)
    times = pd.DatetimeIndex(
        [
            pd.Timestamp("2025-07-01 00:00", tz="Europe/Berlin"),  # CEST = 23:00 CET 30 June
            pd.Timestamp("2025-01-01 00:15", tz="Europe/Berlin"),
            pd.Timestamp("2025-12-31 23:45", tz="Europe/Berlin"),
        ]
    )
    pos = src.profile_position_minutes(times)
    assert pos[0] == (181 - 1) * 1440 + 23 * 60  # 30 June 2025 is day 181
    assert pos[1] == 15
    assert pos[2] == (365 - 1) * 1440 + 23 * 60 + 45
    # a run across New Year maps 1 January back to the start of the profile year
    w = src.window(0, 3)
    d = src.profiles.load_kwh_per_kwh[:, src.load_profile_index[0]]
    np.testing.assert_allclose(w.demand_kwh[192:, 0], src.annual_kwh[0] * d[:96])


@needs_simbench
def test_invalid_grid_code_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="grid_code"):
        SimbenchProfiles(
            start=pd.Timestamp("2016-01-01", tz="Europe/Berlin"),
            days=1,
            interval_minutes=15,
            site=BERLIN,
            annual_kwh=np.ones(2),
            pv_kwp=np.ones(2),
            seed=0,
            grid_code="not-a-grid",
        )
