"""The load of a building open on weekdays (a school, an office): ``load =
"weekday_daytime"`` of a ``[[community.members]]`` entry.

Power is flat while the building is open (Monday to Friday, local ``[open, close)``
hours) and ``base_frac`` of that power at all other times (standby, ventilation); public
and school holidays are not modelled. The open power ``p`` [kW] follows from the yearly
energy: with ``h_open = 5 (close − open)`` open hours and ``168 − h_open`` closed hours a
week, ``annual_kwh = 52.1775 · p · (h_open + base_frac (168 − h_open))`` (52.1775 = the
mean number of weeks in a Gregorian year).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKS_PER_YEAR = 365.2425 / 7


def weekday_daytime_kwh(
    stamps: pd.DatetimeIndex,
    annual_kwh: float,
    hours: tuple[float, float],
    base_frac: float,
    interval_hours: float,
) -> np.ndarray:
    """Energy per interval [kWh] at the local interval starts ``stamps`` (module docstring)."""
    start, end = hours
    h_open = 5.0 * (end - start)
    power_kw = annual_kwh / (WEEKS_PER_YEAR * (h_open + base_frac * (168.0 - h_open)))
    hour = np.asarray(stamps.hour + stamps.minute / 60.0, dtype=np.float64)
    weekday = np.asarray(stamps.dayofweek) < 5
    open_now = weekday & (hour >= start) & (hour < end)
    return np.where(open_now, power_kw, base_frac * power_kw) * interval_hours
