"""The IEEE Reliability Test System load calendar: the feeder's background load over a year.

A feeder's own loads (``base_p_kw`` / ``base_q_kvar`` in its bus table) are a snapshot: on
``ieee33`` the published case of Baran & Wu. Over a run they are scaled per interval by a
*background factor*, 1.0 being that snapshot. This module holds the utility-level calendar
of the IEEE RTS (IEEE RTS Task Force, "IEEE Reliability Test System", IEEE Trans. PAS-98(6),
2047-2054, 1979; unchanged in Grigg et al., "The IEEE Reliability Test System-1996", IEEE
Trans. Power Syst. 14(3), 1999):

- Table 1, the weekly peak of each of the 52 weeks in per unit of the annual peak;
- Table 2, the daily peak of each weekday in per unit of the weekly peak;
- Table 3, the hourly load in per unit of the daily peak, for winter weeks (1-8 and
  44-52), summer weeks (18-30) and spring/fall weeks (9-17 and 31-43), weekday and weekend.

Their product is the load in per unit of the annual peak, which is 1.0 in week 51 on the
Tuesday from 17:00 to 19:00: so the published case is the annual peak. Mapping onto a real
calendar (documented choices): week ``k`` is days ``7k .. 7k + 6`` of the local calendar
year (day 365, and 366 in leap years, belong to week 52); the weekday is the local date's;
hour ``h`` is local wall-clock time ``[h, h + 1)``. The load is piecewise constant per hour,
as the tables give it.

The residential alternative (the BDEW H0 profile, the households' own shape) lives with the
household load model in :mod:`agents.profiles.load`; the scenario chooses (``[grid] background``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Table 1: weekly peak load, per unit of the annual peak, weeks 1..52.
RTS_WEEKLY_PEAK_PU: tuple[float, ...] = (
    0.862, 0.900, 0.878, 0.834, 0.880, 0.841, 0.832, 0.806, 0.740, 0.737, 0.715, 0.727, 0.704,
    0.750, 0.721, 0.800, 0.754, 0.837, 0.870, 0.880, 0.856, 0.811, 0.900, 0.887, 0.896, 0.861,
    0.755, 0.816, 0.801, 0.880, 0.722, 0.776, 0.800, 0.729, 0.726, 0.705, 0.780, 0.695, 0.724,
    0.724, 0.743, 0.744, 0.800, 0.881, 0.885, 0.909, 0.940, 0.890, 0.942, 0.970, 1.000, 0.952,
)  # fmt: skip

#: Table 2: daily peak load, per unit of the weekly peak, Monday..Sunday.
RTS_DAILY_PEAK_PU: tuple[float, ...] = (0.93, 1.00, 0.98, 0.96, 0.94, 0.77, 0.75)

#: Table 3: hourly load per unit of the daily peak, entry ``h`` = hour ``[h, h+1)``.
RTS_HOURLY_PU: dict[tuple[str, bool], tuple[float, ...]] = {
    ("winter", False): (
        0.67, 0.63, 0.60, 0.59, 0.59, 0.60, 0.74, 0.86, 0.95, 0.96, 0.96, 0.95,
        0.95, 0.95, 0.93, 0.94, 0.99, 1.00, 1.00, 0.96, 0.91, 0.83, 0.73, 0.63,
    ),
    ("winter", True): (
        0.78, 0.72, 0.68, 0.66, 0.64, 0.65, 0.66, 0.70, 0.80, 0.88, 0.90, 0.91,
        0.90, 0.88, 0.87, 0.87, 0.91, 1.00, 0.99, 0.97, 0.94, 0.92, 0.87, 0.81,
    ),
    ("summer", False): (
        0.64, 0.60, 0.58, 0.56, 0.56, 0.58, 0.64, 0.76, 0.87, 0.95, 0.99, 1.00,
        0.99, 1.00, 1.00, 0.97, 0.96, 0.96, 0.93, 0.92, 0.92, 0.93, 0.87, 0.72,
    ),
    ("summer", True): (
        0.74, 0.70, 0.66, 0.65, 0.64, 0.62, 0.62, 0.66, 0.81, 0.86, 0.91, 0.93,
        0.93, 0.92, 0.91, 0.91, 0.92, 0.94, 0.95, 0.95, 1.00, 0.93, 0.88, 0.80,
    ),
    ("spring_fall", False): (
        0.63, 0.62, 0.60, 0.58, 0.59, 0.65, 0.72, 0.85, 0.95, 0.99, 1.00, 0.99,
        0.93, 0.92, 0.90, 0.88, 0.90, 0.92, 0.96, 0.98, 0.96, 0.90, 0.80, 0.70,
    ),
    ("spring_fall", True): (
        0.75, 0.73, 0.69, 0.66, 0.65, 0.65, 0.68, 0.74, 0.83, 0.89, 0.92, 0.94,
        0.91, 0.90, 0.90, 0.86, 0.85, 0.88, 0.92, 1.00, 0.97, 0.95, 0.90, 0.85,
    ),
}  # fmt: skip


def rts_season(week: np.ndarray) -> np.ndarray:
    """Season of Table 3 for 0-based week indices: winter 0-7 and 43-51, summer 17-29."""
    week = np.asarray(week)
    return np.where(
        (week <= 7) | (week >= 43),
        "winter",
        np.where((week >= 17) & (week <= 29), "summer", "spring_fall"),
    )


def rts_factor(local: pd.DatetimeIndex) -> np.ndarray:
    """IEEE RTS background factor (per unit of the annual peak) at each local timestamp.

    Parameters
    ----------
    local : pandas.DatetimeIndex
        Interval starts in the scenario's local time zone (or naive local wall clock).

    Returns
    -------
    numpy.ndarray
        ``(T,)`` weekly x daily x hourly factor, in (0, 1].
    """
    week = np.minimum((local.dayofyear.to_numpy() - 1) // 7, 51)
    weekday = local.dayofweek.to_numpy()
    hour = local.hour.to_numpy()
    weekend = weekday >= 5
    season = rts_season(week)
    hourly = np.empty(len(local))
    for (name, is_weekend), table in RTS_HOURLY_PU.items():
        sel = (season == name) & (weekend == is_weekend)
        hourly[sel] = np.asarray(table)[hour[sel]]
    return np.asarray(RTS_WEEKLY_PEAK_PU)[week] * np.asarray(RTS_DAILY_PEAK_PU)[weekday] * hourly
