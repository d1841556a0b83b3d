"""Household load and PV profiles from a SimBench grid (optional extra).

SimBench (Meinecke et al. 2020, "SimBench -- A Benchmark Dataset of Electric Power
Systems to Compare Innovative Solutions Based on Power Flow Analysis", Energies 13(12))
ships one year (2016, 366 days) of 15-min *relative* profiles with each grid:

* load profiles ``net.profiles["load"]``, columns ``<profile>_pload`` /
  ``<profile>_qload``; the household profiles are the ``H0-*`` ones. They are scaled to
  their own peak (maximum 1.0) and multiplied by a load's ``p_mw``, so their annual
  energy per unit of peak differs from profile to profile. Here each household's profile
  is renormalised to ``annual_kwh`` over the profile year:
  ``demand_kwh[q] = annual_kwh * p[q] / sum(p)``.
* PV profiles ``net.profiles["renewables"]``, columns ``PV*``, relative to installed
  capacity (``sgen.p_mw``): ``generation_kwh[q] = pv_kwp * p[q] * 0.25 h``. Their
  full-load hours are SimBench's own (about 620-680 h/yr for ``1-LV-rural1--0-sw``),
  lower than the synthetic Berlin PV of :mod:`agents.profiles.pv`.

Time mapping: the SimBench series carry naive timestamps with exactly ``366 * 96``
values, i.e. no daylight-saving jumps (e2nIEE/simbench#16 notes the missing time zone).
A simulation timestamp is mapped by its *local standard time* (the site's local clock
without daylight saving): profile position = (day of year - 1) * 24 h + time of day,
wrapping modulo the profile year. In a non-leap year 1 March maps to the profile's
29 February and 31 December to its 30 December. Energy per interval is the exact
integral of the piecewise-constant 15-min profile over the interval, so any interval
length that divides 1440 min works: longer intervals sum whole quarter hours, shorter
ones split a quarter hour evenly.

Assignment: each household gets one household load profile and one PV profile, drawn
uniformly from the grid's profiles with ``numpy.random.default_rng([seed, 31])``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
import pandas as pd

from agents.profiles.source import (
    ProfileWindow,
    Site,
    Timeline,
    household_array,
    raise_problems,
)
from agents.profiles.weather import AirTemperature

__all__ = [
    "DEFAULT_GRID_CODE",
    "SIMBENCH_INSTALL_HINT",
    "SimbenchProfileSet",
    "SimbenchProfiles",
    "import_simbench",
    "load_simbench_profiles",
]

DEFAULT_GRID_CODE = "1-LV-rural1--0-sw"
SIMBENCH_INSTALL_HINT = 'pip install "p2pgrid[simbench]"'
#: Random stream of this module (distinct from every other module's streams).
STREAM_SIMBENCH_ASSIGN: int = 31
_GRID_MINUTES = 15
_HOUSEHOLD_PREFIX = "H0"
_PV_PREFIX = "PV"


def import_simbench() -> ModuleType:
    """The simbench package, or an ImportError that says how to install it."""
    try:
        import simbench
    except ImportError as exc:
        raise ImportError(
            "SimBench profiles need the optional simbench package, which is not "
            f"installed. Install it with: {SIMBENCH_INSTALL_HINT}"
        ) from exc
    return simbench


@dataclass(frozen=True)
class SimbenchProfileSet:
    """Household load and PV profiles of one SimBench grid, as energy per quarter hour.

    Attributes
    ----------
    grid_code : str
        SimBench code, e.g. ``"1-LV-rural1--0-sw"``.
    load_names, pv_names : tuple of str
        Profile names (``"H0-A"``, ``"PV5"``, ...), the column order of the arrays.
    load_kwh_per_kwh : numpy.ndarray
        ``(Q, L)`` energy per quarter hour per kWh of annual demand [kWh/(kWh/yr)];
        each column sums to 1 over the profile year. Read-only.
    pv_kwh_per_kwp : numpy.ndarray
        ``(Q, P)`` energy per quarter hour per kWp [kWh/kWp]. Read-only.
    profile_year : int
        Calendar year of the SimBench series.
    load_seconds : float
        Wall time to load the grid and extract the profiles [s].
    """

    grid_code: str
    load_names: tuple[str, ...]
    pv_names: tuple[str, ...]
    load_kwh_per_kwh: np.ndarray
    pv_kwh_per_kwp: np.ndarray
    profile_year: int
    load_seconds: float


@lru_cache(maxsize=4)
def load_simbench_profiles(grid_code: str = DEFAULT_GRID_CODE) -> SimbenchProfileSet:
    """Load a SimBench grid and extract its household load and PV profiles.

    Loading a grid takes a few seconds (about 3 s for ``1-LV-rural1--0-sw`` on the
    development machine), so results are cached per grid code in this process.

    Raises
    ------
    ImportError
        If simbench is not installed (the message says how to install it).
    ValueError
        If the grid code is unknown or the grid has no household or PV profiles.
    """
    sb = import_simbench()
    t0 = time.perf_counter()
    try:
        net = sb.get_simbench_net(grid_code)
    except Exception as exc:  # simbench raises various types for a bad code
        raise ValueError(f"grid_code: cannot load SimBench grid {grid_code!r}: {exc}") from exc
    loads = net.profiles["load"]
    renewables = net.profiles["renewables"]
    load_cols = sorted(
        c for c in loads.columns if c.startswith(_HOUSEHOLD_PREFIX) and c.endswith("_pload")
    )
    pv_cols = sorted(c for c in renewables.columns if c.startswith(_PV_PREFIX))
    problems = []
    if not load_cols:
        available = sorted(c for c in loads.columns if c.endswith("_pload"))
        problems.append(
            f"grid_code: SimBench grid {grid_code!r} has no household (H0) load profiles; "
            f"its load profiles are {available}"
        )
    if not pv_cols:
        problems.append(
            f"grid_code: SimBench grid {grid_code!r} has no PV profiles; its renewable "
            f"profiles are {[c for c in renewables.columns if c != 'time']}"
        )
    raise_problems("SimbenchProfiles", problems)

    p_load = loads[load_cols].to_numpy(dtype=np.float64)
    p_pv = renewables[pv_cols].to_numpy(dtype=np.float64)
    load_kwh = p_load / p_load.sum(axis=0, keepdims=True)
    pv_kwh = p_pv * (_GRID_MINUTES / 60.0)
    year = pd.to_datetime(loads["time"].iloc[0], format="%d.%m.%Y %H:%M").year
    for arr in (load_kwh, pv_kwh):
        arr.flags.writeable = False
    return SimbenchProfileSet(
        grid_code=grid_code,
        load_names=tuple(c.removesuffix("_pload") for c in load_cols),
        pv_names=tuple(pv_cols),
        load_kwh_per_kwh=load_kwh,
        pv_kwh_per_kwp=pv_kwh,
        profile_year=int(year),
        load_seconds=time.perf_counter() - t0,
    )


def _cumulative(energy: np.ndarray) -> np.ndarray:
    """Cumulative energy over two profile years, ``(2 Q + 1, C)``, starting at 0."""
    tiled = np.concatenate([energy, energy], axis=0)
    return np.concatenate([np.zeros((1, energy.shape[1])), np.cumsum(tiled, axis=0)], axis=0)


def _interval_energy_2d(cum: np.ndarray, start_min: np.ndarray, duration_min: float) -> np.ndarray:
    """Integral of piecewise-constant columns over ``[start, start + duration)``.

    ``cum`` is ``(M + 1, C)`` on a 15-min grid; returns ``(T, C)``.
    """

    def at(minutes: np.ndarray) -> np.ndarray:
        q = minutes / _GRID_MINUTES
        i = np.clip(np.floor(q).astype(np.int64), 0, cum.shape[0] - 2)
        frac = (q - i)[:, np.newaxis]
        return cum[i] + frac * (cum[i + 1] - cum[i])

    return at(start_min + duration_min) - at(start_min)


class SimbenchProfiles:
    """Profile source from SimBench's yearly household load and PV profiles.

    Parameters
    ----------
    start : pandas.Timestamp
        Tz-aware local midnight of the first simulated day.
    days : int
        Simulation length [days].
    interval_minutes : int
        Interval length [min], a divisor of 1440 (any; see module notes).
    site : Site
        The local time zone is used for the time mapping.
    annual_kwh : numpy.ndarray
        ``(N,)`` annual household consumption [kWh/yr], >= 0.
    pv_kwp : numpy.ndarray
        ``(N,)`` PV peak power [kWp], 0 for no PV.
    seed : int
        Seed of the profile assignment.
    grid_code : str, optional
        SimBench grid whose profiles are used. Default ``"1-LV-rural1--0-sw"``.
    air : AirTemperature, optional
        The outdoor temperature reported with the profiles (heat demand; SimBench's PV
        profiles are given, not modelled).

    Raises
    ------
    ImportError
        If simbench is not installed: ``pip install "p2pgrid[simbench]"``.
    ValueError
        For invalid arguments (all problems listed in one message).
    """

    def __init__(
        self,
        start: pd.Timestamp,
        days: int,
        interval_minutes: int,
        site: Site,
        annual_kwh: np.ndarray,
        pv_kwp: np.ndarray,
        seed: int,
        grid_code: str = DEFAULT_GRID_CODE,
        air: AirTemperature | None = None,
    ) -> None:
        import_simbench()
        self.air = air or AirTemperature(start, days, site.longitude, site.latitude, int(seed))
        timeline, problems = Timeline.build(start, days, interval_minutes, site.timezone)
        annual = household_array("annual_kwh", annual_kwh, None, problems)
        n = annual.shape[0]
        kwp = household_array("pv_kwp", pv_kwp, n, problems)
        if np.any(annual < 0):
            problems.append("annual_kwh: must be >= 0")
        if np.any(kwp < 0):
            problems.append("pv_kwp: must be >= 0")
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            problems.append(f"seed: {seed!r} must be a non-negative integer")
        raise_problems("SimbenchProfiles", problems)
        assert timeline is not None

        self.n_households: int = n
        self.site = site
        self.timeline = timeline
        self.seed = int(seed)
        self.annual_kwh = annual
        self.pv_kwp = kwp
        #: The grid's profiles (cached per grid code).
        self.profiles: SimbenchProfileSet = load_simbench_profiles(grid_code)
        rng = np.random.default_rng([self.seed, STREAM_SIMBENCH_ASSIGN])
        #: Index into ``profiles.load_names`` / ``profiles.pv_names`` per household.
        self.load_profile_index = rng.integers(0, len(self.profiles.load_names), n)
        self.pv_profile_index = rng.integers(0, len(self.profiles.pv_names), n)
        self._cum_load = _cumulative(self.profiles.load_kwh_per_kwh)
        self._cum_pv = _cumulative(self.profiles.pv_kwh_per_kwp)
        self._year_minutes = self.profiles.load_kwh_per_kwh.shape[0] * _GRID_MINUTES
        year = timeline.start.year
        offsets = [
            pd.Timestamp(year, month, 1).tz_localize(timeline.start.tz).utcoffset()
            for month in (1, 7)
        ]
        #: Local standard-time offset from UTC (the smaller of January and July).
        self.standard_offset = min(offsets)

    def profile_position_minutes(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Position of each timestamp in the SimBench profile year [min].

        ``(day of year - 1) * 1440 + minutes since local standard-time midnight``,
        wrapped modulo the profile year.
        """
        std = times.tz_convert("UTC").tz_localize(None) + self.standard_offset
        minute_of_day = (std - std.normalize()) / pd.Timedelta(minutes=1)
        pos = (np.asarray(std.dayofyear, dtype=np.float64) - 1.0) * 1440.0
        pos = pos + np.asarray(minute_of_day, dtype=np.float64)
        return np.mod(pos, self._year_minutes)

    def window(self, first_day: int, n_days: int) -> ProfileWindow:
        """Profiles of days ``first_day .. first_day + n_days - 1``.

        Returns
        -------
        ProfileWindow
            ``(n_days * intervals_per_day, N)`` demand and generation [kWh].
        """
        self.timeline.check_window(first_day, n_days)
        times = self.timeline.timestamps(first_day, n_days)
        pos = self.profile_position_minutes(times)
        dt = self.timeline.interval_minutes
        load = _interval_energy_2d(self._cum_load, pos, dt)
        pv = _interval_energy_2d(self._cum_pv, pos, dt)
        demand = np.maximum(load[:, self.load_profile_index], 0.0) * self.annual_kwh
        generation = np.maximum(pv[:, self.pv_profile_index], 0.0) * self.pv_kwp
        return ProfileWindow(demand, generation, self.air.at(times))
