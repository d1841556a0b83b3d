"""The feeder's own (background) load over the run: a factor per interval.

A feeder's bus table holds its background load at the annual peak (on ``ieee33`` the
published case of Baran & Wu 1989). ``[grid] background`` picks the calendar that scales
it per interval, always 1.0 at the annual peak:

- ``bdew_h0`` (default): the BDEW H0 standard load profile of German households, dynamised
  over the year (:func:`agents.profiles.load.h0_peak_factor`; seasons, workday/Saturday/Sunday and
  holidays, on the local wall clock). The shape of a residential feeder, the same as its
  households'. Annual load factor about 0.43; a June day peaks near 0.67.
- ``rts``: the IEEE Reliability Test System's weekly x daily x hourly calendar
  (:func:`grid.background.rts_factor`), a utility's system load: flatter (annual load
  factor about 0.61), a June weekday near 0.85 from 10:00 to 16:00.
- ``peak``: the snapshot on every interval, the worst case a planner may want to check.

On ``ieee33`` the background alone (0.913 p.u. at its peak under AC) falls below 0.95 p.u.
above about 0.59 of its peak in AC, and below the checked limit ``v_min_pu + v_margin_pu``
(0.96 by default) above about half of it: in the library's ``ieee33-summer`` week (1-7 June
2026) the feeder's own loads break a limit in 20 % of the intervals with ``bdew_h0`` (the
evening peaks), 79 % with ``rts`` and all of them with ``peak``
(``violations_background`` in intervals.parquet counts them per interval).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.profiles.load import h0_peak_factor
from grid.background import rts_factor


def background_factor(kind: str, local: pd.DatetimeIndex, interval_minutes: int) -> np.ndarray:
    """Background load per unit of its annual peak at each interval start ``local``."""
    if kind == "bdew_h0":
        return h0_peak_factor(local, interval_minutes)
    if kind == "rts":
        return rts_factor(local)
    if kind == "peak":
        return np.ones(len(local))
    raise ValueError(f"grid.background: unknown calendar {kind!r} (bdew_h0, rts or peak)")
