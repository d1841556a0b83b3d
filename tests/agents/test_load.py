"""Household load (BDEW H0 + seeded variation) and the SyntheticProfiles contract."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest

from agents.profiles.load import (
    H0LoadModel,
    bdew_h0_kwh_per_kwh,
    easter_sunday,
    german_public_holidays,
)
from agents.profiles.source import ProfileSource, Site, SyntheticProfiles

BERLIN = Site(latitude=52.52, longitude=13.40, altitude_m=34.0, timezone="Europe/Berlin")
START_2025 = pd.Timestamp("2025-01-01", tz="Europe/Berlin")


def make_source(
    n: int,
    *,
    days: int = 365,
    start: pd.Timestamp = START_2025,
    interval_minutes: int = 15,
    seed: int = 7,
    annual_kwh: np.ndarray | None = None,
    pv_kwp: np.ndarray | None = None,
) -> SyntheticProfiles:
    annual = np.full(n, 3500.0) if annual_kwh is None else annual_kwh
    kwp = np.zeros(n) if pv_kwp is None else pv_kwp
    return SyntheticProfiles(
        start=start,
        days=days,
        interval_minutes=interval_minutes,
        site=BERLIN,
        annual_kwh=annual,
        pv_kwp=kwp,
        pv_tilt_deg=np.full(n, 35.0),
        pv_azimuth_deg=np.full(n, 180.0),
        seed=seed,
    )


@pytest.fixture(scope="module")
def year() -> dict[str, object]:
    """One full year (2025, Berlin, 15 min) for 1,000 households with varied demand."""
    n = 1000
    annual = np.random.default_rng(0).uniform(1500.0, 6000.0, n)
    src = make_source(n, annual_kwh=annual)
    totals = np.zeros(n)
    means, one = [], []
    for first in range(0, 365, 7):  # weekly windows, as the engine does
        w = src.window(first, min(7, 365 - first))
        assert w.demand_kwh.min() >= 0.0
        totals += w.demand_kwh.sum(axis=0)
        means.append((w.demand_kwh / annual).mean(axis=1))  # per kWh/yr
        one.append(w.demand_kwh[:, 0] / annual[0])
    wall = src.timeline.timestamps(0, 365).tz_localize(None)
    frame = pd.DataFrame(
        {
            "mean": np.concatenate(means),
            "one": np.concatenate(one),
            "qod": wall.hour * 4 + wall.minute // 15,
            "weekday": wall.weekday,
            "month": wall.month,
            "date": wall.normalize(),
        }
    )
    with warnings.catch_warnings():  # demandlib sets a global "error" filter inside
        from demandlib import bdew

        ref = bdew.ElecSlp(2025).get_profiles("h0")["h0"]
    ref_frame = pd.DataFrame(
        {
            "h0": ref.to_numpy(),
            "qod": ref.index.hour * 4 + ref.index.minute // 15,
            "weekday": ref.index.weekday,
        }
    )
    return {"annual": annual, "totals": totals, "frame": frame, "ref": ref_frame}


def test_annual_energy_of_each_household_within_3_percent(year: dict) -> None:
    ratio = year["totals"] / year["annual"]
    assert np.all(np.abs(ratio - 1.0) < 0.03), (ratio.min(), ratio.max())
    assert abs(ratio.mean() - 1.0) < 0.005


def test_community_mean_daily_shape_matches_published_h0(year: dict) -> None:
    frame, ref = year["frame"], year["ref"]
    # demandlib's static H0 (published BDEW table, no dynamisation) as the reference.
    shape = frame.groupby("qod")["mean"].mean()
    ref_shape = ref.groupby("qod")["h0"].mean()
    assert np.corrcoef(shape, ref_shape)[0, 1] > 0.95
    for day in (range(5), [5], [6]):  # workdays, Saturday, Sunday
        ours = frame[frame.weekday.isin(day)].groupby("qod")["mean"].mean()
        theirs = ref[ref.weekday.isin(day)].groupby("qod")["h0"].mean()
        assert np.corrcoef(ours, theirs)[0, 1] > 0.95


def test_weekday_and_sunday_differ(year: dict) -> None:
    frame = year["frame"]
    workday = frame[frame.weekday < 5].groupby("qod")["mean"].mean()
    sunday = frame[frame.weekday == 6].groupby("qod")["mean"].mean()
    late_morning = slice(36, 52)  # 09:00-13:00
    # BDEW H0: households are at home on Sunday late morning (brunch, cooking).
    assert sunday.iloc[late_morning].sum() > 1.25 * workday.iloc[late_morning].sum()
    early = slice(24, 30)  # 06:00-07:30: workday getting up earlier
    assert workday.iloc[early].sum() > 1.1 * sunday.iloc[early].sum()


def test_winter_evening_peak_exceeds_summer(year: dict) -> None:
    frame = year["frame"]
    evening = slice(68, 88)  # 17:00-22:00
    winter = frame[frame.month.isin([12, 1])].groupby("qod")["mean"].mean()
    summer = frame[frame.month.isin([6, 7])].groupby("qod")["mean"].mean()
    assert winter.iloc[evening].max() > 1.4 * summer.iloc[evening].max()


def test_individual_households_are_peaky_but_the_mean_is_smooth(year: dict) -> None:
    frame = year["frame"]
    one, mean = frame["one"].to_numpy(), frame["mean"].to_numpy()
    assert one.max() / one.mean() > 5.0
    assert mean.max() / mean.mean() < 3.0
    assert np.std(one / mean) > 0.4
    # consecutive quarter hours are correlated (AR(1) noise, not white)
    dev = np.log(one / mean)
    assert np.corrcoef(dev[:-1], dev[1:])[0, 1] > 0.5


def test_holidays_follow_the_sunday_profile() -> None:
    h0 = bdew_h0_kwh_per_kwh(2025).reshape(365, 96)
    doy = {d: datetime.date(2025, 12, d).timetuple().tm_yday - 1 for d in (23, 25, 28)}
    christmas = h0[doy[25]] / h0[doy[25]].sum()  # Thursday, public holiday
    sunday = h0[doy[28]] / h0[doy[28]].sum()
    tuesday = h0[doy[23]] / h0[doy[23]].sum()
    assert np.allclose(christmas, sunday, rtol=2e-3)
    assert not np.allclose(christmas, tuesday, rtol=0.05)
    assert h0.sum() == pytest.approx(1.0, abs=1e-12)


def test_easter_and_german_holidays() -> None:
    assert easter_sunday(2024) == datetime.date(2024, 3, 31)
    assert easter_sunday(2025) == datetime.date(2025, 4, 20)
    assert easter_sunday(2026) == datetime.date(2026, 4, 5)
    days = german_public_holidays(2025)
    assert len(days) == 9
    assert datetime.date(2025, 4, 18) in days  # Good Friday
    assert datetime.date(2025, 5, 29) in days  # Ascension
    assert datetime.date(2025, 6, 9) in days  # Whit Monday
    assert datetime.date(2025, 10, 3) in days


def test_load_follows_local_wall_clock_across_dst() -> None:
    h0 = bdew_h0_kwh_per_kwh(2025)
    model = H0LoadModel(
        pd.Timestamp("2025-03-29", tz="Europe/Berlin"),
        pd.Timestamp("2025-10-27", tz="Europe/Berlin"),
        15,
        np.ones(1),
        seed=0,
    )
    model.shift_index[:] = np.flatnonzero(model.shift_values_min == 0)[0]

    def h0_at(wall: str) -> float:
        t = pd.Timestamp(wall)
        return h0[(t.dayofyear - 1) * 96 + t.hour * 4 + t.minute // 15]

    # spring forward: 01:45 CET is followed by 03:00 CEST; 02:00-03:00 does not exist
    spring = pd.Timestamp("2025-03-30 01:45", tz="Europe/Berlin") + pd.to_timedelta(
        [0, 15], unit="min"
    )
    got = model.shape_kwh_per_kwh(spring)[:, 0]
    assert list(spring.strftime("%H:%M")) == ["01:45", "03:00"]
    assert got == pytest.approx([h0_at("2025-03-30 01:45"), h0_at("2025-03-30 03:00")])
    # fall back: 02:15 happens twice and gets the same (wall-clock) H0 value
    autumn = pd.Timestamp("2025-10-26 02:15").tz_localize("Europe/Berlin", ambiguous=True)
    twice = pd.DatetimeIndex([autumn, autumn + pd.Timedelta(hours=1)])
    assert list(twice.strftime("%H:%M")) == ["02:15", "02:15"]
    assert model.shape_kwh_per_kwh(twice)[:, 0] == pytest.approx([h0_at("2025-10-26 02:15")] * 2)


def test_dst_day_is_24_elapsed_hours() -> None:
    src = make_source(3, days=3, start=pd.Timestamp("2025-03-29", tz="Europe/Berlin"))
    times = src.timeline.timestamps(1, 1)
    assert len(times) == 96
    assert times[0] == pd.Timestamp("2025-03-30 00:00", tz="Europe/Berlin")
    assert times[-1] == pd.Timestamp("2025-03-31 00:45", tz="Europe/Berlin")
    w = src.window(0, 3)
    assert w.demand_kwh.shape == (288, 3)
    assert np.all(np.isfinite(w.demand_kwh)) and w.demand_kwh.min() > 0.0


def test_coarser_intervals_sum_the_quarter_hour_shape() -> None:
    start = pd.Timestamp("2025-07-01", tz="Europe/Berlin")
    q = H0LoadModel(start, start + pd.Timedelta(days=2), 15, np.ones(4), seed=3)
    h = H0LoadModel(start, start + pd.Timedelta(days=2), 60, np.ones(4), seed=3)
    np.testing.assert_array_equal(q.shift_index, h.shift_index)
    tq = start + pd.to_timedelta(np.arange(192) * 15, unit="min")
    th = start + pd.to_timedelta(np.arange(48) * 60, unit="min")
    sq = q.shape_kwh_per_kwh(tq)
    np.testing.assert_allclose(sq.reshape(48, 4, 4).sum(axis=1), h.shape_kwh_per_kwh(th))
    f = H0LoadModel(start, start + pd.Timedelta(days=2), 5, np.ones(4), seed=3)
    tf = start + pd.to_timedelta(np.arange(576) * 5, unit="min")
    np.testing.assert_allclose(f.shape_kwh_per_kwh(tf).reshape(192, 3, 4).sum(axis=1), sq)


@pytest.mark.parametrize("interval_minutes", [5, 15, 60])
def test_deterministic_and_window_invariant(interval_minutes: int) -> None:
    n = 40
    kwp = np.where(np.arange(n) % 2 == 0, 6.0, 0.0)
    a = make_source(n, days=6, interval_minutes=interval_minutes, pv_kwp=kwp)
    b = make_source(n, days=6, interval_minutes=interval_minutes, pv_kwp=kwp)
    assert isinstance(a, ProfileSource)
    both = a.window(2, 2)
    first, second = b.window(2, 1), b.window(3, 1)
    for field in ("demand_kwh", "generation_kwh"):
        stacked = np.vstack([getattr(first, field), getattr(second, field)])
        np.testing.assert_array_equal(getattr(both, field), stacked)
        assert getattr(both, field).dtype == np.float64
    assert both.demand_kwh.shape == (2 * 1440 // interval_minutes, n)
    other = make_source(n, days=6, interval_minutes=interval_minutes, pv_kwp=kwp, seed=8)
    assert not np.array_equal(other.window(2, 2).demand_kwh, both.demand_kwh)


def test_zero_annual_demand_gives_zero() -> None:
    src = make_source(3, days=2, annual_kwh=np.array([0.0, 2000.0, 4000.0]))
    d = src.window(0, 2).demand_kwh
    assert np.all(d[:, 0] == 0.0)
    assert d[:, 1].sum() > 0.0


def test_invalid_arguments_are_listed_together() -> None:
    with pytest.raises(ValueError) as info:
        SyntheticProfiles(
            start=pd.Timestamp("2025-01-01 06:00", tz="Europe/Berlin"),
            days=0,
            interval_minutes=7,
            site=BERLIN,
            annual_kwh=np.array([3000.0, -1.0]),
            pv_kwp=np.array([1.0]),
            pv_tilt_deg=np.array([30.0, 95.0]),
            pv_azimuth_deg=np.array([180.0, 180.0]),
            seed=-1,
        )
    msg = str(info.value)
    for needle in ("start:", "days:", "interval_minutes:", "annual_kwh:", "pv_kwp:",
                   "pv_tilt_deg:", "seed:"):  # fmt: skip
        assert needle in msg
    with pytest.raises(ValueError, match="tz-aware"):
        make_source(2, start=pd.Timestamp("2025-01-01"))


def test_window_outside_the_run_is_rejected() -> None:
    src = make_source(2, days=3)
    with pytest.raises(ValueError, match="outside the run"):
        src.window(2, 2)
    with pytest.raises(ValueError, match="outside the run"):
        src.window(-1, 1)


def test_building_h0_does_not_leak_demandlib_warning_filter() -> None:
    # demandlib's ElecSlp calls warnings.simplefilter("error") on the global filters.
    bdew_h0_kwh_per_kwh.cache_clear()
    before = list(warnings.filters)
    profile = bdew_h0_kwh_per_kwh(2024)
    assert list(warnings.filters) == before
    assert profile.shape == (366 * 96,)
    assert not profile.flags.writeable


@pytest.mark.parametrize("shape", [(1,), (96,), (96, 7), (365, 4, 3)])
def test_ar1_days_is_scipy_lfilter_to_the_last_bit(shape: tuple[int, ...]) -> None:
    """``ar1_days`` runs the recursion of ``scipy.signal.lfilter`` (one pole at ``phi``,
    initial state ``phi * x_init``) without importing scipy.signal: the same values, bit for
    bit; and by hand, x_0 = phi x_init + sqrt(1 - phi^2) eps_0."""
    from scipy.signal import lfilter

    from agents.profiles.load import ar1_days

    rng = np.random.default_rng(3)
    eps, x_init, phi = rng.standard_normal(shape), rng.standard_normal(shape[1:]), 0.8
    zi = (phi * x_init)[np.newaxis, ...]
    expected, _ = lfilter([np.sqrt(1.0 - phi * phi)], [1.0, -phi], eps, axis=0, zi=zi)
    got = ar1_days(eps, x_init, phi)
    assert got.shape == shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got[0], 0.8 * x_init + 0.6 * eps[0], rtol=1e-15, atol=1e-15)
