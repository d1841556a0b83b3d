"""Household load from the BDEW H0 standard load profile, with per-household variation.

The smooth BDEW H0 profile (VDEW/BDEW standard load profile for households, "H0";
Meier et al. 1999, "Repraesentative VDEW-Lastprofile", VDEW M-28/99; as published by
BDEW and shipped with demandlib's ``bdew_data/selp_series.csv``) describes the *average*
of many households: three seasons (winter 1 Nov-20 Mar, summer 15 May-14 Sep,
transition otherwise), three day types (workday, Saturday, Sunday/holiday) and 96
quarter hours each, multiplied by the BDEW fourth-order dynamisation polynomial for H0
(Fuenfgeld & Tiedemann 2000, "Anwendung der Repraesentativen VDEW-Lastprofile
step-by-step", VDEW M-05/2000; demandlib's ``h0_dyn``, renormalised here to exactly
1 kWh per calendar year). It is defined on the local legal clock; demandlib builds it on
a naive wall-clock index, and this module looks it up by the *local wall-clock* time of
each interval, so daylight saving time is followed the way households follow it (the
skipped spring hour is skipped, the repeated autumn hour repeated).

Holidays: the nationwide German public holidays (New Year, Good Friday, Easter Monday,
1 May, Ascension, Whit Monday, 3 October, 25 and 26 December) are treated as Sundays, as
the BDEW method does. Regional holidays and the BDEW rule that 24 and 31 December count
as Saturdays are not applied (demandlib maps holidays to Sundays only).

Per-household variation (seeded; parameters below, chosen by judgement so that single
households look peaky while the community mean stays the H0 shape -- they are not fitted
to a metered data set):

* a time shift of the whole profile, normal with standard deviation
  ``H0_SHIFT_SD_MINUTES`` rounded to 15 min and clipped to ``+-H0_SHIFT_MAX_MINUTES``,
  drawn once per run (households get up and cook at different times);
* a daily level factor, lognormal with mean 1 and log-standard deviation
  ``DAILY_SIGMA``, drawn per day (day-to-day variation);
* a multiplicative intra-day noise ``exp(sigma * x_t - sigma**2 / 2)`` where ``x_t`` is a
  stationary AR(1) standard-normal process with lag-1 correlation ``NOISE_PHI_15MIN``
  per 15 min and log-standard deviation ``NOISE_SIGMA``; its state is reset (drawn from
  the stationary distribution) at the start of every day, and the noise of each day
  is rescaled so that it does not change that day's energy. With these values (15-min,
  Berlin 2025) a single household's demand divided by the community mean has a
  standard deviation of about 0.6, and its highest 15-min demand in a year is about
  10 times its annual mean (the community mean peaks at about 2.4 times its mean).

Over a full year each household's energy is ``annual_kwh`` up to the daily level
factors (log-sd 0.12 per day gives about 0.65 % standard deviation of the annual sum).
"""

from __future__ import annotations

import datetime
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from agents.profiles import cache as profile_cache

__all__ = [
    "DAILY_SIGMA",
    "H0_SHIFT_MAX_MINUTES",
    "H0_SHIFT_SD_MINUTES",
    "NOISE_PHI_15MIN",
    "NOISE_SIGMA",
    "H0LoadModel",
    "aggregated_ar1_sd",
    "ar1_days",
    "bdew_h0_kwh_per_kwh",
    "easter_sunday",
    "german_public_holidays",
    "h0_peak_factor",
    "interval_energy",
]

#: Standard deviation of the per-household time shift [min].
H0_SHIFT_SD_MINUTES: float = 30.0
#: Largest per-household time shift either way [min], a multiple of 15.
H0_SHIFT_MAX_MINUTES: int = 60
#: Log-standard deviation of the intra-day multiplicative noise at 15 min [-].
NOISE_SIGMA: float = 0.6
#: Lag-1 autocorrelation of the latent AR(1) noise per 15 min [-] (e-folding ~67 min).
NOISE_PHI_15MIN: float = 0.8
#: Log-standard deviation of the daily level factor [-].
DAILY_SIGMA: float = 0.12

#: Random streams of this module (distinct from every other module's streams).
STREAM_LOAD_HOUSEHOLD: int = 11
STREAM_LOAD_DAY: int = 12

_GRID_MINUTES = 15  # resolution of the BDEW profile


def easter_sunday(year: int) -> datetime.date:
    """Date of Easter Sunday in the Gregorian calendar.

    Anonymous Gregorian algorithm (Meeus/Jones/Butcher, J. Meeus, *Astronomical
    Algorithms*, 1991).
    """
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return datetime.date(year, month, day + 1)


def german_public_holidays(year: int) -> list[datetime.date]:
    """Nationwide German public holidays of ``year`` (no regional ones)."""
    easter = easter_sunday(year)
    offsets = (-2, 1, 39, 50)  # Good Friday, Easter Monday, Ascension, Whit Monday
    fixed = [(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)]
    days = [datetime.date(year, m, d) for m, d in fixed]
    days += [easter + datetime.timedelta(days=o) for o in offsets]
    return sorted(days)


@lru_cache(maxsize=16)
def bdew_h0_kwh_per_kwh(year: int) -> np.ndarray:
    """Dynamised BDEW H0 profile of a calendar year, normalised to 1 kWh per year.

    Parameters
    ----------
    year : int
        Calendar year (the wall-clock year, 365 or 366 days).

    Returns
    -------
    numpy.ndarray
        Energy per local wall-clock quarter hour [kWh per kWh/yr], length
        ``96 * days_in_year``, summing to 1. German public holidays count as Sundays.
        Read-only; cached per year in this process and in the profile cache on disk
        (:mod:`agents.profiles.cache`, keyed by the year, this module's source and the
        demandlib and pandas versions): building one with demandlib takes ~0.15 s of CPU,
        reading it back ~1 ms.

    References
    ----------
    BDEW/VDEW standard load profile H0 with the H0 dynamisation function, as implemented
    by demandlib (``demandlib.bdew.ElecSlp``, column ``h0_dyn``).
    """
    days = (datetime.date(year + 1, 1, 1) - datetime.date(year, 1, 1)).days
    shape = (96 * days,)
    entry = (
        profile_cache.key(profile="bdew_h0_dyn", year=year)
        if profile_cache.cacheable(shape)
        else ""
    )
    h0 = profile_cache.load(entry, shape) if entry else None
    if h0 is None:
        h0 = _demandlib_h0(year)
        if entry:
            profile_cache.store(entry, h0)
    h0.flags.writeable = False
    return h0


def _demandlib_h0(year: int) -> np.ndarray:
    """:func:`bdew_h0_kwh_per_kwh` computed by demandlib."""
    from demandlib import bdew

    # demandlib calls warnings.simplefilter("error") inside ElecSlp, which would leak
    # into the caller's process; catch_warnings restores the filters afterwards.
    with warnings.catch_warnings():
        slp = bdew.ElecSlp(year, holidays=german_public_holidays(year))
        h0 = slp.get_profiles("h0_dyn")["h0_dyn"].to_numpy(dtype=np.float64)
    return h0 / h0.sum()


def interval_energy(
    cum: np.ndarray, start_minutes: np.ndarray, duration_minutes: float, grid_minutes: int = 15
) -> np.ndarray:
    """Energy of a piecewise-constant profile over arbitrary intervals.

    Parameters
    ----------
    cum : numpy.ndarray
        ``(M + 1,)`` cumulative energy at the grid points ``0, grid, 2 grid, ...`` [kWh],
        starting at 0.
    start_minutes : numpy.ndarray
        Interval starts in minutes from the first grid point [min], any shape.
    duration_minutes : float
        Interval length [min].
    grid_minutes : int, optional
        Grid spacing of ``cum`` [min]. Default 15.

    Returns
    -------
    numpy.ndarray
        Energy in ``[start, start + duration)`` [kWh], same shape as ``start_minutes``.
        Linear interpolation of the cumulative sum is the exact integral of the
        piecewise-constant power, so longer intervals sum whole grid cells and shorter
        ones split a cell evenly.
    """
    grid = np.arange(cum.shape[0], dtype=np.float64) * grid_minutes
    start = np.asarray(start_minutes, dtype=np.float64)
    return np.interp(start + duration_minutes, grid, cum) - np.interp(start, grid, cum)


def ar1_days(eps: np.ndarray, x_init: np.ndarray, phi: float) -> np.ndarray:
    """Stationary standard-normal AR(1) paths, one per day and household.

    ``x_0 = phi * x_init + sqrt(1 - phi**2) * eps_0`` and
    ``x_t = phi * x_{t-1} + sqrt(1 - phi**2) * eps_t``: a loop over the steps along axis 0,
    vectorised over the other axes. It does the operations of
    ``scipy.signal.lfilter([sqrt(1 - phi**2)], [1, -phi], eps, axis=0, zi=phi * x_init)``
    in the same order, so its values are the same to the last bit
    (``tests/agents/test_load.py``), without importing ``scipy.signal``, which alone takes
    longer to import than a small run takes to simulate (issue 18).

    Parameters
    ----------
    eps : numpy.ndarray
        ``(T, ...)`` standard-normal innovations.
    x_init : numpy.ndarray
        ``(...)`` standard-normal state before the first step.
    phi : float
        Lag-1 autocorrelation per step [-], ``0 <= phi < 1``.

    Returns
    -------
    numpy.ndarray
        ``(T, ...)`` AR(1) values with unit variance.
    """
    eps = np.asarray(eps, dtype=np.float64)
    b0 = np.sqrt(1.0 - phi * phi)
    x = np.empty(eps.shape)
    state = phi * np.asarray(x_init, dtype=np.float64)  # lfilter's zi
    for t in range(eps.shape[0]):
        x[t] = b0 * eps[t] + state
        state = phi * x[t]
    return x


def aggregated_ar1_sd(sigma_15: float, phi_15: float, interval_minutes: int) -> float:
    """Log-sd of the noise for intervals longer than 15 min.

    The variance of the mean of ``m`` AR(1) samples is ``g(m)`` times that of one
    sample, ``g(m) = (1 + 2 sum_k (1 - k/m) phi^k) / m``; it is applied to the log-scale
    standard deviation (an approximation that keeps coarser intervals less peaky).
    """
    m = max(1, round(interval_minutes / _GRID_MINUTES))
    if m == 1:
        return sigma_15
    k = np.arange(1, m)
    g = (1.0 + 2.0 * np.sum((1.0 - k / m) * phi_15**k)) / m
    return float(sigma_15 * np.sqrt(g))


class H0LoadModel:
    """Seeded household demand from the BDEW H0 profile, window by window.

    Parameters
    ----------
    first_timestamp, last_timestamp : pandas.Timestamp
        Tz-aware start of the first and of the last interval of the run (local zone).
    interval_minutes : int
        Interval length [min].
    annual_kwh : numpy.ndarray
        ``(N,)`` annual consumption per household [kWh/yr].
    seed : int
        Seed of all random draws.

    Notes
    -----
    The H0 profile of every calendar year the run touches (with margins for the time
    shifts) is built once here and kept as one cumulative-energy array on a 15-min
    wall-clock grid, so a window is an interpolation plus a gather.
    """

    def __init__(
        self,
        first_timestamp: pd.Timestamp,
        last_timestamp: pd.Timestamp,
        interval_minutes: int,
        annual_kwh: np.ndarray,
        seed: int,
    ) -> None:
        self.interval_minutes = int(interval_minutes)
        self.intervals_per_day = 1440 // self.interval_minutes
        self.annual_kwh = np.asarray(annual_kwh, dtype=np.float64)
        self.seed = int(seed)
        n = self.annual_kwh.shape[0]

        margin = pd.Timedelta(minutes=H0_SHIFT_MAX_MINUTES + 120)
        first_wall = first_timestamp.tz_localize(None)
        last_wall = last_timestamp.tz_localize(None) + pd.Timedelta(minutes=interval_minutes)
        years = range((first_wall - margin).year, (last_wall + margin).year + 1)
        self._origin = pd.Timestamp(years[0], 1, 1)
        energy = np.concatenate([bdew_h0_kwh_per_kwh(y) for y in years])
        self._cum = np.concatenate([[0.0], np.cumsum(energy)])

        rng = np.random.default_rng([self.seed, STREAM_LOAD_HOUSEHOLD])
        max_steps = H0_SHIFT_MAX_MINUTES // _GRID_MINUTES
        steps = np.rint(rng.normal(0.0, H0_SHIFT_SD_MINUTES / _GRID_MINUTES, n))
        steps = np.clip(steps, -max_steps, max_steps).astype(np.int64)
        #: Possible shifts [min] and each household's index into them.
        self.shift_values_min = np.arange(-max_steps, max_steps + 1) * float(_GRID_MINUTES)
        self.shift_index = steps + max_steps

        self._phi = NOISE_PHI_15MIN ** (self.interval_minutes / _GRID_MINUTES)
        self._sigma = aggregated_ar1_sd(NOISE_SIGMA, NOISE_PHI_15MIN, self.interval_minutes)

    def shape_kwh_per_kwh(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Time-shifted H0 energy per interval, before noise [kWh per kWh/yr].

        Returns
        -------
        numpy.ndarray
            ``(T, N)``.
        """
        wall = times.tz_localize(None)
        pos = ((wall - self._origin) / pd.Timedelta(minutes=1)).to_numpy(dtype=np.float64)
        starts = pos[:, np.newaxis] - self.shift_values_min[np.newaxis, :]
        per_shift = interval_energy(self._cum, starts, self.interval_minutes)
        return per_shift[:, self.shift_index]

    def energy_kwh(self, times: pd.DatetimeIndex, first_day: int, n_days: int) -> np.ndarray:
        """Household demand per interval for a window of whole days.

        Parameters
        ----------
        times : pandas.DatetimeIndex
            ``(n_days * intervals_per_day,)`` tz-aware interval starts (local zone).
        first_day, n_days : int
            The days ``times`` covers (they seed the random draws).

        Returns
        -------
        numpy.ndarray
            ``(T, N)`` demand [kWh] per interval, never negative.
        """
        ipd = self.intervals_per_day
        n = self.annual_kwh.shape[0]
        shape = self.shape_kwh_per_kwh(times).reshape(n_days, ipd, n)
        out = np.empty_like(shape)
        half_var = 0.5 * self._sigma**2
        for j in range(n_days):  # loop over days only; each day is independent
            rng = np.random.default_rng([self.seed, first_day + j, STREAM_LOAD_DAY])
            z = rng.standard_normal((ipd + 2, n))
            x = ar1_days(z[2:], z[0], self._phi)
            noise = np.exp(self._sigma * x - half_var)
            h = shape[j]
            weighted = np.einsum("tn,tn->n", h, noise)
            plain = h.sum(axis=0)
            scale = np.divide(plain, weighted, out=np.ones(n), where=weighted > 0)
            daily = np.exp(DAILY_SIGMA * z[1] - 0.5 * DAILY_SIGMA**2)
            out[j] = h * noise * (scale * daily * self.annual_kwh)
        return out.reshape(n_days * ipd, n)


def h0_peak_factor(times: pd.DatetimeIndex, interval_minutes: int) -> np.ndarray:
    """The BDEW H0 profile in per unit of its annual peak, per interval.

    The mean of the dynamised H0 profile (:func:`bdew_h0_kwh_per_kwh`, no household shift
    or noise) over each interval ``[t, t + interval_minutes)``, looked up by local wall
    clock like the households' own load, divided by the year's highest quarter hour: 1.0
    at the annual peak (a December weekday evening), about 0.43 on average.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        ``(T,)`` interval starts, tz-aware (local zone) or naive local wall clock.
    interval_minutes : int
        Interval length [min].

    Returns
    -------
    numpy.ndarray
        ``(T,)`` factor in (0, 1].
    """
    wall = times.tz_localize(None) if times.tz is not None else times
    last = wall[-1] + pd.Timedelta(minutes=interval_minutes)
    years = range(wall[0].year, last.year + 1)
    peak = [bdew_h0_kwh_per_kwh(y) / bdew_h0_kwh_per_kwh(y).max() for y in years]
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate(peak))])
    start = ((wall - pd.Timestamp(years[0], 1, 1)) / pd.Timedelta(minutes=1)).to_numpy(float)
    quarters = interval_minutes / _GRID_MINUTES
    return interval_energy(cum, start, interval_minutes, _GRID_MINUTES) / quarters
