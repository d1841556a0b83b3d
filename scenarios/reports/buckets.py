"""Time buckets of the report's time-series figures, so that a figure's points (and the
page, and the report step's memory) do not grow with the run's length.

A run of at most :data:`MAX_POINTS` intervals is drawn interval by interval, as it is.
A longer one is drawn in buckets of consecutive intervals, the shortest of
:data:`BUCKET_HOURS` that gives at most :data:`MAX_POINTS` buckets (a year of 15-min
intervals: 1,460 buckets of 6 h). Each series says how a bucket summarises it:

- limits and bands by their envelope (``"max"`` of the highest voltage, of a loading, of
  the limits broken; ``"min"`` of the lowest voltage), so that no interval's violation
  is hidden;
- energies [kWh] by their ``"sum"`` over the bucket, powers, prices and stored energy by
  their ``"mean"`` over the intervals that have a value.

The figure's title or axis names the bucketing ("15-min intervals, max per 6 h"), and a
bucket is drawn at its first interval's timestamp.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_POINTS = 2000
"""The most points a time series of the report draws."""
BUCKET_HOURS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 12.0, 24.0, 48.0, 168.0)
"""The bucket lengths [h] to choose from, shortest first."""

_REDUCE: dict[str, Callable[..., np.ndarray]] = {
    "min": np.nanmin, "max": np.nanmax, "sum": np.nansum, "mean": np.nanmean
}  # fmt: skip


def _hours(h: float) -> str:
    if h < 1:
        return f"{h * 60:g} min"
    return f"{h / 24:g} d" if h >= 24 and h % 24 == 0 else f"{h:g} h"


@dataclass(frozen=True)
class Buckets:
    """Consecutive intervals grouped for drawing: ``size`` intervals per bucket (1: every
    interval as it is), ``n`` intervals of ``interval_hours`` each."""

    n: int
    size: int
    interval_hours: float

    @classmethod
    def of(cls, timestamps: pd.Series, interval_hours: float | None = None) -> Buckets:
        """The buckets of a run's intervals (``interval_hours`` from the timestamps'
        spacing when not given)."""
        n = len(timestamps)
        if interval_hours is None:
            stamps = pd.to_datetime(timestamps)
            interval_hours = (
                (stamps.iloc[1] - stamps.iloc[0]) / pd.Timedelta(hours=1) if n > 1 else 1.0
            )
        dt = float(interval_hours)
        if n <= MAX_POINTS:
            return cls(n, 1, dt)
        for hours in BUCKET_HOURS:
            size = round(hours / dt)
            if size >= 1 and abs(size * dt - hours) < 1e-9 and -(-n // size) <= MAX_POINTS:
                return cls(n, size, dt)
        return cls(n, -(-n // MAX_POINTS), dt)

    @property
    def bucketed(self) -> bool:
        return self.size > 1

    @property
    def count(self) -> int:
        """The number of buckets (points drawn)."""
        return -(-self.n // self.size)

    @property
    def hours(self) -> float:
        """A bucket's length [h]."""
        return self.size * self.interval_hours

    def per(self) -> str:
        """ "per 6 h": one bucket's length."""
        return f"per {_hours(self.hours)}"

    def note(self, how: str = "") -> str:
        """What one point is, for a title or axis: "" when every interval is drawn,
        else e.g. "15-min intervals, max per 6 h" (``how`` left out: "in 6-h buckets")."""
        if not self.bucketed:
            return ""
        each = f"{_hours(self.interval_hours).replace(' ', '-')} intervals"
        if not how:
            return f"{each} in {_hours(self.hours).replace(' ', '-')} buckets"
        return f"{each}, {how} {self.per()}"

    def suffix(self, how: str = "") -> str:
        """:meth:`note` in parentheses after a title, "" when every interval is drawn."""
        note = self.note(how)
        return f" ({note})" if note else ""

    def x(self, timestamps: pd.Series) -> pd.Series:
        """Each bucket's first timestamp (``timestamps`` itself when not bucketed)."""
        if not self.bucketed:
            return timestamps
        return timestamps.iloc[:: self.size].reset_index(drop=True)

    def reduce(self, values: pd.Series | np.ndarray, how: str) -> pd.Series | np.ndarray:
        """``values`` (one per interval) summarised per bucket by ``how`` (NaN ignored;
        a bucket without a value is NaN, a sum too); ``values`` itself when not bucketed."""
        if how not in _REDUCE:
            raise ValueError(f"buckets: how = {how!r} is not one of {', '.join(_REDUCE)}")
        if not self.bucketed:
            return values
        v = np.asarray(values, dtype=np.float64)
        if len(v) != self.n:
            raise ValueError(f"buckets: {len(v)} values for {self.n} intervals")
        padded = np.full(self.count * self.size, np.nan)
        padded[: self.n] = v
        grid = padded.reshape(self.count, self.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bucket: NaN
            out = _REDUCE[how](grid, axis=1)
        if how == "sum":
            out[np.isnan(grid).all(axis=1)] = np.nan
        return out
