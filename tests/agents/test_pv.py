"""Rooftop PV (pvlib chain) and the seeded cloudiness model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from agents.profiles.pv import INVERTER_ETA_NOM, PVModel, plane_of_array_w_m2
from agents.profiles.source import Site, SyntheticProfiles
from agents.profiles.weather import CLEAR_SKY_INDEX_MONTHLY, CloudModel

BERLIN = Site(latitude=52.52, longitude=13.40, altitude_m=34.0, timezone="Europe/Berlin")
START_2025 = pd.Timestamp("2025-01-01", tz="Europe/Berlin")
# households: south, north, east, west (all 35 deg), flat, no PV
TILT = np.array([35.0, 35.0, 35.0, 35.0, 0.0, 35.0])
AZIMUTH = np.array([180.0, 0.0, 90.0, 270.0, 180.0, 180.0])
KWP = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])


def make_source(
    *,
    site: Site = BERLIN,
    start: pd.Timestamp = START_2025,
    days: int = 365,
    interval_minutes: int = 15,
    seed: int = 7,
    clear_sky_only: bool = False,
    kwp: np.ndarray = KWP,
    tilt: np.ndarray = TILT,
    azimuth: np.ndarray = AZIMUTH,
) -> SyntheticProfiles:
    return SyntheticProfiles(
        start=start,
        days=days,
        interval_minutes=interval_minutes,
        site=site,
        annual_kwh=np.full(kwp.shape[0], 3000.0),
        pv_kwp=kwp,
        pv_tilt_deg=tilt,
        pv_azimuth_deg=azimuth,
        seed=seed,
        clear_sky_only=clear_sky_only,
    )


def run_year(src: SyntheticProfiles, window_days: int = 7) -> np.ndarray:
    days = src.timeline.days
    return np.vstack(
        [
            src.window(d, min(window_days, days - d)).generation_kwh
            for d in range(0, days, window_days)
        ]
    )


@pytest.fixture(scope="module")
def cloudy() -> np.ndarray:
    return run_year(make_source())


@pytest.fixture(scope="module")
def clear() -> np.ndarray:
    return run_year(make_source(clear_sky_only=True))


def test_annual_yield_in_plausible_band_for_berlin(cloudy: np.ndarray, clear: np.ndarray) -> None:
    # Long-term German rooftop yields are about 850-1,100 kWh/kWp; a single weather
    # year may deviate by several percent, so each seed gets a wider band and the
    # mean over seeds the narrow one.
    south = KWP[:1]
    yields = []
    for seed in range(8):
        src = make_source(
            seed=seed, interval_minutes=60, kwp=south, tilt=TILT[:1], azimuth=AZIMUTH[:1]
        )
        yields.append(run_year(src, window_days=73).sum())
    assert 850.0 < np.mean(yields) < 1050.0, yields
    assert all(750.0 < y < 1150.0 for y in yields), yields
    assert 750.0 < cloudy[:, 0].sum() < 1150.0
    # Clear sky every day (Ineichen-Perez): clearly more, and not absurd
    assert clear[:, 0].sum() > 1.4 * np.mean(yields)
    assert 1300.0 < clear[:, 0].sum() < 1800.0


def test_zero_at_night_and_without_pv(cloudy: np.ndarray) -> None:
    times = START_2025 + pd.to_timedelta(np.arange(cloudy.shape[0]) * 15, unit="min")
    elevations = [
        pvlib.solarposition.get_solarposition(
            times + pd.Timedelta(minutes=m), BERLIN.latitude, BERLIN.longitude
        )["apparent_elevation"].to_numpy()
        for m in (0, 7.5, 15)
    ]
    night = np.all(np.vstack(elevations) < 0.0, axis=0)
    assert night.mean() > 0.4
    assert np.all(cloudy[night] == 0.0)
    assert np.all(cloudy[:, 5] == 0.0)  # pv_kwp = 0
    assert cloudy.min() >= 0.0


def test_peak_never_above_kwp_times_interval(cloudy: np.ndarray, clear: np.ndarray) -> None:
    cap = KWP * 0.25
    assert np.all(cloudy <= cap) and np.all(clear <= cap)
    assert np.all(cloudy <= INVERTER_ETA_NOM * cap + 1e-12)
    assert cloudy[:, 0].max() > 0.5 * cap[0]  # it does get sunny


def test_summer_exceeds_winter(cloudy: np.ndarray) -> None:
    month = (START_2025 + pd.to_timedelta(np.arange(cloudy.shape[0]) * 15, unit="min")).month
    summer = cloudy[(month == 6) | (month == 7), 0].sum()
    winter = cloudy[(month == 12) | (month == 1), 0].sum()
    assert summer > 3.0 * winter


def test_orientation(cloudy: np.ndarray, clear: np.ndarray) -> None:
    south, north, east, west, flat = cloudy[:, :5].sum(axis=0)
    assert south > flat > north
    assert south > east and south > west
    assert east > north and west > north
    assert east == pytest.approx(west, rel=0.1)
    # east peaks in the morning, west in the afternoon (clear-sky days, local clock)
    qod = np.arange(clear.shape[0]) % 96
    assert np.average(qod, weights=clear[:, 2]) < np.average(qod, weights=clear[:, 3]) - 8


def test_generation_scales_with_kwp() -> None:
    kwp = np.array([1.0, 2.5])
    src = make_source(
        days=3, start=pd.Timestamp("2025-06-01", tz="Europe/Berlin"), kwp=kwp,
        tilt=np.full(2, 30.0), azimuth=np.full(2, 200.0),
    )  # fmt: skip
    g = src.window(0, 3).generation_kwh
    np.testing.assert_allclose(g[:, 1], 2.5 * g[:, 0], rtol=1e-12)


def test_hourly_intervals_sum_quarter_hours_under_clear_sky() -> None:
    start = pd.Timestamp("2025-06-20", tz="Europe/Berlin")
    q = make_source(start=start, days=2, clear_sky_only=True).window(0, 2).generation_kwh
    h = make_source(start=start, days=2, interval_minutes=60, clear_sky_only=True)
    hourly = h.window(0, 2).generation_kwh
    np.testing.assert_allclose(hourly, q.reshape(48, 4, -1).sum(axis=1), rtol=1e-9, atol=1e-12)


def test_southern_hemisphere_is_mirrored() -> None:
    sydney = Site(latitude=-33.87, longitude=151.21, altitude_m=20.0, timezone="Australia/Sydney")
    src = make_source(
        site=sydney, start=pd.Timestamp("2025-01-01", tz="Australia/Sydney"),
        kwp=np.ones(2), tilt=np.full(2, 30.0), azimuth=np.array([0.0, 180.0]),
    )  # fmt: skip
    g = run_year(src)
    month = src.timeline.timestamps(0, 365).month
    assert g[:, 0].sum() > 1.25 * g[:, 1].sum()  # north-facing wins south of the equator
    assert g[(month == 12) | (month == 1), 0].sum() > g[(month == 6) | (month == 7), 0].sum()


def test_cloud_climatology_and_persistence() -> None:
    days = 3650
    starts = START_2025 + pd.to_timedelta(np.arange(days), unit="D")
    sky = CloudModel(np.asarray(starts.dayofyear), 15, BERLIN.latitude, seed=11)
    k = pd.Series(sky.daily_index, index=starts.month)
    monthly = k.groupby(level=0).mean().to_numpy()
    np.testing.assert_allclose(monthly, CLEAR_SKY_INDEX_MONTHLY, atol=0.07)
    assert np.corrcoef(sky.daily_index[:-1], sky.daily_index[1:])[0, 1] > 0.3
    assert 0.2 < sky.daily_index.std() < 0.33
    assert sky.daily_index.min() > 0.0 and sky.daily_index.max() <= 1.0
    intraday = sky.clear_sky_index(100, 3)
    assert intraday.shape == (288,)
    assert 0.0 < intraday.min() and intraday.max() <= 1.2
    np.testing.assert_array_equal(
        intraday, np.concatenate([sky.clear_sky_index(d, 1) for d in (100, 101, 102)])
    )


def test_pv_model_without_pv_households_is_all_zero() -> None:
    model = PVModel(52.5, 13.4, 34.0, 15, np.zeros(3), np.full(3, 30.0), np.full(3, 180.0))
    times = pd.date_range("2025-06-21", periods=96, freq="15min", tz="Europe/Berlin")
    assert np.all(model.energy_kwh(times, np.ones(96)) == 0.0)


def test_plane_of_array_matches_pvlib_get_total_irradiance() -> None:
    rng = np.random.default_rng(0)
    s, n = 200, 7
    zenith = rng.uniform(0.0, 89.0, s)
    sun_azimuth = rng.uniform(0.0, 360.0, s)
    ghi = rng.uniform(0.0, 1000.0, s)
    dhi = ghi * rng.uniform(0.1, 1.0, s)
    dni = (ghi - dhi) / np.cos(np.radians(zenith))
    dni_extra = np.full(s, 1361.0)
    tilt = rng.uniform(0.0, 90.0, n)
    azimuth = rng.uniform(0.0, 360.0, n)
    ours = plane_of_array_w_m2(zenith, sun_azimuth, dni, ghi, dhi, dni_extra, tilt, azimuth)
    ref = pvlib.irradiance.get_total_irradiance(
        tilt[np.newaxis, :],
        azimuth[np.newaxis, :],
        zenith[:, np.newaxis],
        sun_azimuth[:, np.newaxis],
        dni[:, np.newaxis],
        ghi[:, np.newaxis],
        dhi[:, np.newaxis],
        dni_extra=dni_extra[:, np.newaxis],
        model="haydavies",
        albedo=0.2,
    )["poa_global"]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_daily_clear_sky_index_is_the_beta_quantile_of_scipy_stats() -> None:
    """The daily index is ``Beta(mu c, (1 - mu) c)``'s quantile of ``Phi(latent)``, computed
    with scipy.special (to keep scipy.stats out of a run's imports): bit for bit what
    scipy.stats.norm.cdf and scipy.stats.beta.ppf give, over ten years of days."""
    from scipy import stats

    from agents.profiles.load import ar1_days
    from agents.profiles.weather import (
        DAILY_CONCENTRATION,
        DAILY_PERSISTENCE,
        K_MIN,
        STREAM_CLOUD_DAILY,
        seasonal,
    )

    days = 3650
    doy = np.asarray((START_2025 + pd.to_timedelta(np.arange(days), unit="D")).dayofyear)
    sky = CloudModel(doy, 15, BERLIN.latitude, seed=5)
    mu = seasonal(CLEAR_SKY_INDEX_MONTHLY, doy + 0.5, BERLIN.latitude)
    z = np.random.default_rng([5, STREAM_CLOUD_DAILY]).standard_normal(days + 1)
    u = stats.norm.cdf(ar1_days(z[1:], z[0], DAILY_PERSISTENCE))
    k = stats.beta.ppf(u, mu * DAILY_CONCENTRATION, (1.0 - mu) * DAILY_CONCENTRATION)
    np.testing.assert_array_equal(sky.daily_index, np.clip(k, K_MIN, 1.0))
