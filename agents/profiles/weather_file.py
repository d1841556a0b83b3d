"""Air temperature from a TMY/EPW weather file (``[community] weather_file``).

Read with :func:`pvlib.iotools.read_epw` (EnergyPlus weather format: hourly rows, the
file's own local standard time, pvlib's index at the start of each hour). The
temperature is kept by (month, day, hour) of that clock, so a typical-year file serves a
run in any year (29 February reads 28 February). Every hour a run needs must be in the
file: a missing file, one pvlib cannot read, or one without the run's days is an error
naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def read_epw_temperature(path: str | Path) -> tuple[np.ndarray, float]:
    """The file's air temperature ``(12, 31, 24)`` by month, day, hour [°C] (NaN where
    the file has no row) and its clock's offset from UTC [h]."""
    import pvlib  # pvlib only when a weather file is read

    where = f"weather_file {str(path)!r}"
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{where}: no such file")
    try:
        data, meta = pvlib.iotools.read_epw(file)
    except Exception as exc:  # pvlib raises whatever its parser meets
        raise ValueError(
            f"{where}: not a readable EPW file ({type(exc).__name__}: {exc})"
        ) from None
    temp = pd.to_numeric(data["temp_air"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(temp) | (temp < -90) | (temp > 70)
    if len(temp) == 0 or bad.any():
        first = data.index[np.flatnonzero(bad)[0]] if bad.any() else "no rows"
        raise ValueError(f"{where}: air temperature missing or out of range (at {first})")
    table = np.full((12, 31, 24), np.nan)
    idx = data.index
    table[np.asarray(idx.month) - 1, np.asarray(idx.day) - 1, np.asarray(idx.hour)] = temp
    return table, float(meta["TZ"])


def check_covers(
    table: np.ndarray, times: pd.DatetimeIndex, utc_offset_h: float, path: str
) -> None:
    """Raise unless the file has every hour of ``times``."""
    clock = times.tz_convert("UTC") + pd.Timedelta(hours=utc_offset_h)
    month, day, hour = (np.asarray(x) for x in (clock.month, clock.day, clock.hour))
    day = np.where((month == 2) & (day == 29), 28, day)
    missing = np.isnan(table[month - 1, day - 1, hour])
    if missing.any():
        first = clock[np.flatnonzero(missing)[0]]
        raise ValueError(
            f"weather_file {path!r}: has no hour {first.strftime('%m-%d %H:00')} "
            f"(file clock UTC{utc_offset_h:+g}) of the run; it covers "
            f"{int((~np.isnan(table)).sum())} hours"
        )
