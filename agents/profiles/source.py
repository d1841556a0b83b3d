"""Household demand and rooftop-PV generation profiles: the common interface.

The engine simulates a regular timeline ``timestamps = start + t * interval`` in elapsed
time, where ``start`` is the tz-aware local midnight of the first day. A *day* is 24 h
of elapsed time, ``intervals_per_day = 1440 // interval_minutes`` intervals; daylight
saving days are not special. The engine asks a :class:`ProfileSource` for one window of
whole days at a time, so a year of a large community never sits in memory at once.

Two sources implement the protocol:

* :class:`SyntheticProfiles` (this module): BDEW H0 household load with seeded
  per-household variation (:mod:`agents.profiles.load`) and pvlib rooftop PV under a seeded
  cloudiness model (:mod:`agents.profiles.pv`, :mod:`agents.profiles.weather`);
* :class:`agents.profiles.simbench.SimbenchProfiles`: the yearly 15-min household and
  PV profiles of a SimBench grid (optional extra ``pip install "p2pgrid[simbench]"``).

Both are deterministic and window-invariant: ``window(d, 2)`` equals ``window(d, 1)``
stacked on ``window(d + 1, 1)`` exactly, because every random draw is seeded by
``(seed, day, stream)`` or drawn once per run in ``__init__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from agents.profiles import cache as profile_cache
from agents.profiles.load import H0LoadModel
from agents.profiles.pv import PVModel
from agents.profiles.weather import AirTemperature, CloudModel

__all__ = [
    "ProfileSource",
    "ProfileWindow",
    "Site",
    "SyntheticProfiles",
    "Timeline",
]


@dataclass(frozen=True)
class Site:
    """Location of the community.

    Parameters
    ----------
    latitude : float
        Latitude [degrees north].
    longitude : float
        Longitude [degrees east].
    altitude_m : float
        Altitude above sea level [m].
    timezone : str
        IANA time zone name of the local clock, e.g. ``"Europe/Berlin"``.
    """

    latitude: float
    longitude: float
    altitude_m: float
    timezone: str


@dataclass(frozen=True)
class ProfileWindow:
    """Demand and generation of all households for a window of whole days.

    Parameters
    ----------
    demand_kwh : numpy.ndarray
        ``(T, N)`` float64, household energy use per interval [kWh], never negative.
    generation_kwh : numpy.ndarray
        ``(T, N)`` float64, PV AC energy per interval [kWh]; 0 for households without
        PV and at night.
    outdoor_temp_c : numpy.ndarray
        ``(T,)`` air temperature at each interval's start [°C]
        (:class:`agents.profiles.weather.AirTemperature`).
    """

    demand_kwh: np.ndarray
    generation_kwh: np.ndarray
    outdoor_temp_c: np.ndarray


@runtime_checkable
class ProfileSource(Protocol):
    """What the engine needs from a profile source."""

    n_households: int

    def window(self, first_day: int, n_days: int) -> ProfileWindow:
        """Return the profiles of days ``first_day .. first_day + n_days - 1``."""
        ...


@dataclass(frozen=True)
class Timeline:
    """The engine's regular timeline, in elapsed time from local midnight.

    Parameters
    ----------
    start : pandas.Timestamp
        Tz-aware local midnight of the first day (converted to ``timezone``).
    days : int
        Number of 24-h days in the run.
    interval_minutes : int
        Interval length [min]; must divide 1440.
    """

    start: pd.Timestamp
    days: int
    interval_minutes: int

    @classmethod
    def build(
        cls, start: pd.Timestamp, days: int, interval_minutes: int, timezone: str
    ) -> tuple[Timeline | None, list[str]]:
        """Validate the arguments and build a timeline.

        Returns
        -------
        timeline : Timeline or None
            ``None`` when a problem was found.
        problems : list of str
            Every problem found, each naming its argument.
        """
        problems: list[str] = []
        if not isinstance(interval_minutes, int | np.integer) or isinstance(interval_minutes, bool):
            problems.append(f"interval_minutes: {interval_minutes!r} is not an integer")
        elif interval_minutes <= 0 or 1440 % interval_minutes != 0:
            problems.append(
                f"interval_minutes: {interval_minutes} must be a positive divisor of 1440"
            )
        if not isinstance(days, int | np.integer) or isinstance(days, bool) or days < 1:
            problems.append(f"days: {days!r} must be a positive integer")
        local = None
        try:
            ts = pd.Timestamp(start)
        except (TypeError, ValueError) as exc:
            problems.append(f"start: {start!r} is not a timestamp ({exc})")
        else:
            if ts.tzinfo is None:
                problems.append(f"start: {ts} must be tz-aware (local midnight in {timezone})")
            else:
                try:
                    local = ts.tz_convert(timezone)
                except (KeyError, ValueError, TypeError) as exc:  # unknown zone
                    problems.append(f"site.timezone: {timezone!r} is not a time zone ({exc})")
                else:
                    if local != local.normalize():
                        problems.append(
                            f"start: {ts} is not a local midnight in {timezone} "
                            f"(local time {local})"
                        )
        if problems or local is None:
            return None, problems
        return cls(local, int(days), int(interval_minutes)), problems

    @property
    def intervals_per_day(self) -> int:
        """Intervals per 24-h day."""
        return 1440 // self.interval_minutes

    def check_window(self, first_day: int, n_days: int) -> None:
        """Raise ``ValueError`` unless the window lies inside the run."""
        if n_days < 1 or first_day < 0 or first_day + n_days > self.days:
            raise ValueError(
                f"window(first_day={first_day}, n_days={n_days}) is outside the "
                f"run of {self.days} day(s): need 0 <= first_day and "
                f"1 <= n_days and first_day + n_days <= {self.days}"
            )

    def timestamps(self, first_day: int, n_days: int) -> pd.DatetimeIndex:
        """Interval start times of a window (tz-aware, elapsed-time spacing).

        Returns
        -------
        pandas.DatetimeIndex
            ``n_days * intervals_per_day`` timestamps in the local time zone.
        """
        ipd = self.intervals_per_day
        t = np.arange(first_day * ipd, (first_day + n_days) * ipd, dtype=np.int64)
        return self.start + pd.to_timedelta(t * self.interval_minutes, unit="min")

    def day_start(self, day: np.ndarray) -> pd.DatetimeIndex:
        """Local start time of each day in ``day``."""
        return self.start + pd.to_timedelta(np.asarray(day, dtype=np.int64) * 1440, unit="min")


def household_array(
    name: str, values: np.ndarray, n: int | None, problems: list[str]
) -> np.ndarray:
    """Coerce a per-household parameter to a 1-D float64 array, recording problems.

    Parameters
    ----------
    name : str
        Argument name used in messages.
    values : array_like
        One value per household.
    n : int or None
        Expected length (``None`` to accept any length).
    problems : list of str
        Problems are appended here.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        problems.append(f"{name}: must be a 1-D array with one value per household")
        return arr.reshape(-1)
    if n is not None and arr.shape[0] != n:
        problems.append(f"{name}: has {arr.shape[0]} values, expected {n} (one per household)")
    if not np.all(np.isfinite(arr)):
        problems.append(f"{name}: contains NaN or infinite values")
    return arr


def raise_problems(owner: str, problems: list[str]) -> None:
    """Raise one ``ValueError`` listing every problem, if there are any."""
    if problems:
        raise ValueError(f"{owner}: invalid arguments:\n  - " + "\n  - ".join(problems))


class SyntheticProfiles:
    """Built-in profile source: BDEW H0 load and pvlib rooftop PV, seeded.

    Parameters
    ----------
    start : pandas.Timestamp
        Tz-aware local midnight of the first simulated day.
    days : int
        Simulation length [days]; the daily cloud states are drawn for all of them.
    interval_minutes : int
        Interval length [min], a divisor of 1440.
    site : Site
        Location and local time zone.
    annual_kwh : numpy.ndarray
        ``(N,)`` annual household consumption [kWh/yr], >= 0.
    pv_kwp : numpy.ndarray
        ``(N,)`` PV peak power at STC [kWp], 0 for no PV.
    pv_tilt_deg : numpy.ndarray
        ``(N,)`` module tilt from horizontal [deg], 0..90.
    pv_azimuth_deg : numpy.ndarray
        ``(N,)`` module azimuth [deg], pvlib convention (0 north, 90 east, 180 south).
    seed : int
        Non-negative seed of every random draw but the weather's.
    clear_sky_only : bool, optional
        If True, PV sees the Ineichen clear sky every day (no cloudiness model); useful
        for an upper bound. Default False.
    air : AirTemperature, optional
        Air temperature of PV cells and buildings (default: the site's climatology).
    weather_seed : int, optional
        Non-negative seed of the weather (the cloud model, the default air temperature's
        anomaly); default ``seed``. Communities that share a sky share it.

    Notes
    -----
    Load: :class:`agents.profiles.load.H0LoadModel` (BDEW H0 via demandlib, dynamised, German
    public holidays as Sundays, per-household time shift and AR(1) lognormal noise).
    PV: :class:`agents.profiles.pv.PVModel` under :class:`agents.profiles.weather.CloudModel`.
    """

    def __init__(
        self,
        start: pd.Timestamp,
        days: int,
        interval_minutes: int,
        site: Site,
        annual_kwh: np.ndarray,
        pv_kwp: np.ndarray,
        pv_tilt_deg: np.ndarray,
        pv_azimuth_deg: np.ndarray,
        seed: int,
        *,
        clear_sky_only: bool = False,
        air: AirTemperature | None = None,
        weather_seed: int | None = None,
    ) -> None:
        timeline, problems = Timeline.build(start, days, interval_minutes, site.timezone)
        annual = household_array("annual_kwh", annual_kwh, None, problems)
        n = annual.shape[0]
        kwp = household_array("pv_kwp", pv_kwp, n, problems)
        tilt = household_array("pv_tilt_deg", pv_tilt_deg, n, problems)
        azimuth = household_array("pv_azimuth_deg", pv_azimuth_deg, n, problems)
        if np.any(annual < 0):
            problems.append("annual_kwh: must be >= 0")
        if np.any(kwp < 0):
            problems.append("pv_kwp: must be >= 0")
        if np.any((tilt < 0) | (tilt > 90)):
            problems.append("pv_tilt_deg: must be within 0..90")
        if np.any((azimuth < 0) | (azimuth > 360)):
            problems.append("pv_azimuth_deg: must be within 0..360")
        if not -90 <= site.latitude <= 90:
            problems.append(f"site.latitude: {site.latitude} must be within -90..90")
        if not -180 <= site.longitude <= 180:
            problems.append(f"site.longitude: {site.longitude} must be within -180..180")
        sky_seed = seed if weather_seed is None else weather_seed
        for name, value in (("seed", seed), ("weather_seed", sky_seed)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
                problems.append(f"{name}: {value!r} must be a non-negative integer")
        raise_problems("SyntheticProfiles", problems)
        assert timeline is not None

        self.n_households: int = n
        self.site = site
        self.timeline = timeline
        self.seed = int(seed)
        self.weather_seed = int(sky_seed)
        self.air = air or AirTemperature(
            timeline.start, timeline.days, site.longitude, site.latitude, self.weather_seed
        )
        self._load = H0LoadModel(
            first_timestamp=timeline.start,
            last_timestamp=timeline.timestamps(timeline.days - 1, 1)[-1],
            interval_minutes=timeline.interval_minutes,
            annual_kwh=annual,
            seed=self.seed,
        )
        self._day_of_year = np.asarray(timeline.day_start(np.arange(timeline.days)).dayofyear)
        self._clear_sky_only = bool(clear_sky_only)
        self._pv_arrays = (kwp, tilt, azimuth)

    @cached_property
    def _sky(self) -> CloudModel:
        """The cloud model, built on the first window not in the profile cache."""
        return CloudModel(
            day_of_year=self._day_of_year,
            interval_minutes=self.timeline.interval_minutes,
            latitude=self.site.latitude,
            seed=self.weather_seed,
            clear_sky_only=self._clear_sky_only,
        )

    @cached_property
    def _pv(self) -> PVModel:
        """The PV model, built on the first window not in the profile cache."""
        kwp, tilt, azimuth = self._pv_arrays
        return PVModel(
            latitude=self.site.latitude,
            longitude=self.site.longitude,
            altitude_m=self.site.altitude_m,
            interval_minutes=self.timeline.interval_minutes,
            pv_kwp=kwp,
            tilt_deg=tilt,
            azimuth_deg=azimuth,
            air=self.air,
        )

    def _generation_kwh(self, times: pd.DatetimeIndex, first_day: int, n_days: int) -> np.ndarray:
        """PV generation of a window, from :mod:`agents.profiles.cache` when computed before."""
        shape = (len(times), self.n_households)
        if not profile_cache.cacheable(shape):
            return self._pv.energy_kwh(times, self._sky.clear_sky_index(first_day, n_days))
        air = self.air
        kwp, tilt, azimuth = self._pv_arrays
        entry = profile_cache.key(
            site=(self.site.latitude, self.site.longitude, self.site.altitude_m),
            interval=self.timeline.interval_minutes,
            kwp=kwp,
            tilt=tilt,
            azimuth=azimuth,
            times=np.asarray(times.asi8),
            tz=str(times.tz),
            window=(first_day, n_days),
            sky=(self.weather_seed, self._clear_sky_only),
            day_of_year=self._day_of_year,
            air=(str(air.start), air.longitude, air.latitude, air.utc_offset_h),
            air_anomaly=air.daily_anomaly_k,
            air_hourly=np.asarray([]) if air.hourly_c is None else np.asarray(air.hourly_c),
        )
        cached = profile_cache.load(entry, shape)
        if cached is not None:
            return cached
        generation = self._pv.energy_kwh(times, self._sky.clear_sky_index(first_day, n_days))
        profile_cache.store(entry, generation)
        return generation

    def window(self, first_day: int, n_days: int) -> ProfileWindow:
        """Profiles of days ``first_day .. first_day + n_days - 1``.

        Returns
        -------
        ProfileWindow
            ``(n_days * intervals_per_day, N)`` demand and generation [kWh].
        """
        self.timeline.check_window(first_day, n_days)
        times = self.timeline.timestamps(first_day, n_days)
        demand = self._load.energy_kwh(times, first_day, n_days)
        generation = self._generation_kwh(times, first_day, n_days)
        return ProfileWindow(demand, generation, self.air.at(times))
