"""Seeded weather for the community: one sky over a small feeder, and air temperature.

Cloudiness is expressed as the *clear-sky index* ``k = GHI / GHI_clear`` against the
Ineichen-Perez clear sky (Ineichen & Perez 2002). The model has two layers:

1. **Daily state** ``K_d`` (drawn once per run for all ``days`` in ``__init__``): a latent
   stationary AR(1) standard-normal sequence over days with lag-1 correlation
   ``DAILY_PERSISTENCE`` (day-to-day persistence of weather), mapped through the normal
   CDF onto a Beta distribution with the seasonal mean ``mu(day of year)`` and
   concentration ``DAILY_CONCENTRATION`` (``a = mu * c``, ``b = (1 - mu) * c``; with
   ``c = 2.5`` the daily standard deviation is about 0.25-0.28, spanning overcast to
   clear days).
2. **Intra-day variability** (drawn per day from ``(seed, day, stream)``):
   ``k_t = K_d * (1 + s(K_d) * x_t)``, where ``x_t`` is a stationary AR(1) standard-normal
   process with lag-1 correlation ``INTRADAY_PHI_15MIN`` per 15 min, reset at each day,
   and ``s(K) = INTRADAY_SD_MAX * 4 K (1 - K)``: broken-cloud days vary most, clear and
   overcast days least. ``k_t`` is clipped to ``[K_MIN, K_MAX]`` (``K_MAX > 1`` allows
   brief cloud enhancement).

Climatology (``CLEAR_SKY_INDEX_MONTHLY``): monthly mean clear-sky index for Berlin,
obtained by dividing rounded long-term monthly global horizontal irradiation for Berlin
[kWh/m2] (18, 33, 70, 115, 150, 155, 155, 130, 87, 50, 21, 13; about 1,000 kWh/m2/yr,
the order of the DWD and PVGIS climatology for Berlin -- rounded approximations, not a
data product) by the pvlib Ineichen clear-sky irradiation at 52.52 N, 13.40 E, 34 m with
pvlib's Linke turbidity climatology. The persistence, concentration and intra-day
parameters are modelling assumptions (judgement), not fitted to measurements. The same
clear-sky-index climatology is used at every site (it is a Central-European sky); for
southern-hemisphere sites the seasons are shifted by half a year.

Air temperature (``TEMP_AIR_MONTHLY_C``): rounded monthly means for Berlin (about the
DWD 1991-2020 normals of Berlin-Tempelhof / Potsdam, Deutscher Wetterdienst, "Vieljährige
Mittelwerte"; rounded approximations, not a data product), interpolated to the day (for
southern-hemisphere sites shifted by half a year, as the sky), plus a diurnal cosine
with half-range ``TEMP_DIURNAL_HALF_RANGE_K`` peaking at 15:00 local solar time (the
site's longitude sets solar time). :class:`AirTemperature` adds day-to-day persistence:
a seeded stationary AR(1) anomaly over days, ``x_d = φ·x_{d−1} + sqrt(1 − φ²)·σ·ε_d``
(lag-1 correlation ``φ``, standard deviation ``σ``: scenario keys, σ = 0 by default),
interpolated linearly between day centres; or it reads a TMY/EPW file's air temperature
(:mod:`agents.profiles.weather_file`). The same :class:`AirTemperature` drives the PV
cell temperature and the buildings' heat demand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.profiles.load import aggregated_ar1_sd, ar1_days

__all__ = [
    "CLEAR_SKY_INDEX_MONTHLY",
    "DAILY_CONCENTRATION",
    "DAILY_PERSISTENCE",
    "INTRADAY_PHI_15MIN",
    "INTRADAY_SD_MAX",
    "TEMP_AIR_MONTHLY_C",
    "TEMP_DIURNAL_HALF_RANGE_K",
    "AirTemperature",
    "CloudModel",
    "ambient_temperature_c",
    "seasonal",
]

#: Monthly mean clear-sky index GHI / GHI_clear, January..December [-] (Berlin).
CLEAR_SKY_INDEX_MONTHLY: tuple[float, ...] = (
    0.49, 0.52, 0.61, 0.68, 0.68, 0.67, 0.68, 0.69, 0.68, 0.63, 0.51, 0.48,
)  # fmt: skip
#: Lag-1 correlation of the latent daily weather state [-].
DAILY_PERSISTENCE: float = 0.5
#: Beta concentration of the daily clear-sky index [-].
DAILY_CONCENTRATION: float = 2.5
#: Lag-1 correlation of intra-day cloud variability per 15 min [-].
INTRADAY_PHI_15MIN: float = 0.7
#: Largest relative standard deviation of intra-day variability (at K = 0.5) [-].
INTRADAY_SD_MAX: float = 0.35
#: Bounds of the clear-sky index per interval [-].
K_MIN: float = 0.02
K_MAX: float = 1.2
#: Monthly mean air temperature, January..December [degC] (Berlin).
TEMP_AIR_MONTHLY_C: tuple[float, ...] = (
    1.0, 2.0, 5.0, 10.0, 14.5, 17.5, 19.5, 19.0, 15.0, 10.0, 5.0, 2.0,
)  # fmt: skip
#: Half of the mean daily temperature range [K].
TEMP_DIURNAL_HALF_RANGE_K: float = 4.0

#: Random streams of this module (distinct from every other module's streams).
STREAM_CLOUD_DAILY: int = 21
STREAM_CLOUD_INTRADAY: int = 22
STREAM_TEMP_DAILY: int = 23

_MID_MONTH_DOY = np.array([16.0, 45.5, 75.0, 105.5, 136.0, 166.5, 197.0, 228.0, 258.5, 289.0,
                           319.5, 350.0])  # fmt: skip


def seasonal(monthly: tuple[float, ...], day_of_year: np.ndarray, latitude: float) -> np.ndarray:
    """Interpolate a monthly climatology to (fractional) days of the year.

    Parameters
    ----------
    monthly : tuple of 12 float
        Values for January..December, taken at mid-month.
    day_of_year : numpy.ndarray
        Day of year [d], 1-based, fractional allowed.
    latitude : float
        Site latitude [deg]; south of the equator the climatology is shifted by half a
        year.

    Returns
    -------
    numpy.ndarray
        Periodic linear interpolation, same shape as ``day_of_year``.
    """
    doy = np.asarray(day_of_year, dtype=np.float64)
    if latitude < 0:
        doy = doy + 365.25 / 2
    return np.interp(doy, _MID_MONTH_DOY, np.asarray(monthly, dtype=np.float64), period=365.25)


def ambient_temperature_c(times: pd.DatetimeIndex, longitude: float, latitude: float) -> np.ndarray:
    """Climatological air temperature [degC] at tz-aware ``times``.

    Monthly mean (``TEMP_AIR_MONTHLY_C``) plus
    ``TEMP_DIURNAL_HALF_RANGE_K * cos(2 pi (h_solar - 15) / 24)`` with the local mean
    solar hour ``h_solar = h_UTC + longitude / 15``.
    """
    utc = times.tz_convert("UTC")
    hour = utc.hour + utc.minute / 60.0 + utc.second / 3600.0
    solar_hour = (np.asarray(hour, dtype=np.float64) + longitude / 15.0) % 24.0
    doy = np.asarray(utc.dayofyear, dtype=np.float64) + solar_hour / 24.0
    mean = seasonal(TEMP_AIR_MONTHLY_C, doy, latitude)
    return mean + TEMP_DIURNAL_HALF_RANGE_K * np.cos(2.0 * np.pi * (solar_hour - 15.0) / 24.0)


class AirTemperature:
    """The community's air temperature [°C] at any instants of the run.

    Parameters
    ----------
    start : tz-aware first instant of the run (day 0 of the anomaly)
    days : length of the run [d]
    longitude, latitude : site [deg]
    seed : seed of the anomaly
    anomaly_sd_k : standard deviation of the daily anomaly [K] (0: climatology only)
    persistence : lag-1 correlation of the daily anomaly [-]
    hourly_c : a weather file's temperature by (month, day, hour) of its own clock
        (``(12, 31, 24)``, :func:`agents.profiles.weather_file.read_epw_temperature`),
        replacing the synthetic model when given
    utc_offset_h : the weather file's clock [h east of UTC]
    """

    def __init__(
        self,
        start: pd.Timestamp,
        days: int,
        longitude: float,
        latitude: float,
        seed: int,
        anomaly_sd_k: float = 0.0,
        persistence: float = 0.8,
        hourly_c: np.ndarray | None = None,
        utc_offset_h: float = 0.0,
    ) -> None:
        self.start = start
        self.longitude, self.latitude = longitude, latitude
        self.hourly_c, self.utc_offset_h = hourly_c, utc_offset_h
        self.daily_anomaly_k = np.zeros(days + 1)
        if anomaly_sd_k > 0:
            rng = np.random.default_rng([seed, STREAM_TEMP_DAILY])
            z = rng.standard_normal(days + 2)
            self.daily_anomaly_k = anomaly_sd_k * ar1_days(z[1:], z[0], persistence)

    def at(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Air temperature [°C] at tz-aware ``times`` (inside the run)."""
        if self.hourly_c is not None:
            clock = times.tz_convert("UTC") + pd.Timedelta(hours=self.utc_offset_h)
            month, day, hour = (np.asarray(x) for x in (clock.month, clock.day, clock.hour))
            day = np.where((month == 2) & (day == 29), 28, day)  # a TMY has no 29 February
            return self.hourly_c[month - 1, day - 1, hour]
        out = ambient_temperature_c(times, self.longitude, self.latitude)
        if not self.daily_anomaly_k.any():
            return out
        elapsed_d = np.asarray((times - self.start) / pd.Timedelta(days=1), dtype=np.float64)
        centres = np.arange(len(self.daily_anomaly_k)) + 0.5
        return out + np.interp(elapsed_d, centres, self.daily_anomaly_k)


class CloudModel:
    """Seeded clear-sky index of the community sky, window by window.

    Parameters
    ----------
    day_of_year : numpy.ndarray
        ``(days,)`` local day of year of each day's start [d].
    interval_minutes : int
        Interval length [min].
    latitude : float
        Site latitude [deg] (hemisphere of the climatology).
    seed : int
        Seed of all random draws.
    clear_sky_only : bool, optional
        If True, ``k = 1`` everywhere (no clouds). Default False.

    Attributes
    ----------
    daily_index : numpy.ndarray
        ``(days,)`` daily clear-sky index ``K_d`` [-].
    """

    def __init__(
        self,
        day_of_year: np.ndarray,
        interval_minutes: int,
        latitude: float,
        seed: int,
        clear_sky_only: bool = False,
    ) -> None:
        self.interval_minutes = int(interval_minutes)
        self.intervals_per_day = 1440 // self.interval_minutes
        self.seed = int(seed)
        self.clear_sky_only = bool(clear_sky_only)
        doy = np.asarray(day_of_year, dtype=np.float64)
        days = doy.shape[0]
        if self.clear_sky_only:
            self.daily_index = np.ones(days)
        else:
            from scipy import special  # SciPy only when clouds are drawn

            mu = seasonal(CLEAR_SKY_INDEX_MONTHLY, doy + 0.5, latitude)
            rng = np.random.default_rng([self.seed, STREAM_CLOUD_DAILY])
            z = rng.standard_normal(days + 1)
            latent = ar1_days(z[1:], z[0], DAILY_PERSISTENCE)
            # the standard normal CDF and the Beta(a, b) quantile, as scipy.stats.norm.cdf
            # and scipy.stats.beta.ppf compute them (bit for bit, tests/agents/test_pv.py)
            # without importing scipy.stats
            u = special.ndtr(latent)
            k = special.betaincinv(mu * DAILY_CONCENTRATION, (1.0 - mu) * DAILY_CONCENTRATION, u)
            self.daily_index = np.clip(k, K_MIN, 1.0)
        self._phi = INTRADAY_PHI_15MIN ** (self.interval_minutes / 15.0)
        self._sd_max = aggregated_ar1_sd(INTRADAY_SD_MAX, INTRADAY_PHI_15MIN, interval_minutes)

    def clear_sky_index(self, first_day: int, n_days: int) -> np.ndarray:
        """Clear-sky index per interval of a window.

        Returns
        -------
        numpy.ndarray
            ``(n_days * intervals_per_day,)`` clear-sky index [-].
        """
        ipd = self.intervals_per_day
        if self.clear_sky_only:
            return np.ones(n_days * ipd)
        out = np.empty((n_days, ipd))
        for j in range(n_days):  # loop over days only
            day = first_day + j
            rng = np.random.default_rng([self.seed, day, STREAM_CLOUD_INTRADAY])
            z = rng.standard_normal(ipd + 1)
            x = ar1_days(z[1:], z[0], self._phi)
            kd = self.daily_index[day]
            spread = self._sd_max * 4.0 * kd * (1.0 - kd)
            out[j] = np.clip(kd * (1.0 + spread * x), K_MIN, K_MAX)
        return out.reshape(-1)
