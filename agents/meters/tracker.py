"""Interval energy of one meter from its stream of samples, as real meters send them: on
their own clock, late, with gaps, resets, repeats, and now and then an absurd timestamp.

The window (:func:`check_window`): a sample dated more than :data:`PAST_INTERVALS`
intervals before the start of the market's open interval (a pre-NTP ``1970-01-01``
clock, a stale replay) or more than :data:`AHEAD_INTERVALS` interval after its end (a
clock in 2100, a sample a day ahead) is rejected with its reason and never reaches a
tracker.

Counters and power are two streams. A counter sample spreads the difference from the
previous *counter* sample over the time between them, in proportion to time (a counter
that goes backwards was reset: the new value is the energy since the reset). A
power-only sample (Shelly's ``em:0``, which a real Gen2 device sends at another moment
than ``emdata:0``) adds no energy once the meter has sent counters and never becomes the
previous counter; without counters, each sample's power is taken as the average since
the previous one. A sample identical to one already taken is ignored.

Spreading costs O(1) in the gap's length: a gap is spread over at most
:data:`SPREAD_INTERVALS` intervals and never before the oldest interval still open
(:attr:`MeterTracker.floor`); the energy of the gap before that is lumped onto it.

Late energy is never dropped (:meth:`MeterTracker.settle`, :meth:`MeterTracker.corrections`):
at an interval's gate, a meter whose samples do not reach the interval's end is settled
with an estimate (the energy known so far plus the last rate until the interval's end)
and the interval stays open; when the counters reach its end its true energy is handed
out as a correction. An estimate still open :data:`PAST_INTERVALS` intervals later
stands, and the difference between it and the true energy (known when the counters
come back) is settled on the oldest intervals still open: an estimate short of the truth
adds the rest to the first, one beyond it is taken off their energy, oldest first and
none below zero (what cannot be taken yet waits for the meter's next energy). So over
a run the settled energy (the last version of every interval) equals the counters'
difference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.meters.base import MeterPayloadError, Sample

RECENT_INTERVALS = 2
"""How far back (in intervals) a repeated sample is recognised as a repeat."""
RECENT_SAMPLES = 256
"""At most this many recent samples per meter are kept for that."""
PAST_INTERVALS = 4
"""Samples dated more than this many intervals before the open interval are rejected;
an estimated interval stays open for its correction this long."""
AHEAD_INTERVALS = 1
"""Samples dated more than this many intervals after the open interval's end are
rejected."""
SPREAD_INTERVALS = PAST_INTERVALS + AHEAD_INTERVALS + 2
"""A gap is spread over at most this many intervals (the rest is lumped onto the first)."""


def _when(time_s: float) -> str:
    try:
        return datetime.fromtimestamp(time_s, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{time_s:g} s since 1970"


def check_window(time_s: float, open_start_s: float, interval_s: float) -> None:
    """Raise :class:`MeterPayloadError` unless ``time_s`` is inside the window around the
    market's open interval (which starts at ``open_start_s``)."""
    oldest = open_start_s - PAST_INTERVALS * interval_s
    if time_s < oldest:
        raise MeterPayloadError(
            f"sample dated {_when(time_s)} is more than {PAST_INTERVALS} intervals before "
            f"the open interval ({_when(open_start_s)}): a meter clock not set (pre-NTP) "
            "or a stale sample"
        )
    end = open_start_s + interval_s
    if time_s > end + AHEAD_INTERVALS * interval_s:
        raise MeterPayloadError(
            f"sample dated {_when(time_s)} is more than {AHEAD_INTERVALS} interval after "
            f"the end of the open interval ({_when(end)}): the meter's clock is ahead"
        )


def _counters(s: Sample) -> bool:
    return s.import_kwh is not None or s.export_kwh is not None


@dataclass
class MeterTracker:
    """Interval energy of one meter.

    Parameters
    ----------
    start_s : unix time of interval 0 [s]
    interval_s : interval length [s]
    """

    start_s: float
    interval_s: float
    last: Sample | None = None
    """The previous sample of the energy stream (the last counter sample once the meter
    has sent counters)."""
    energy: dict[int, list[float]] = field(default_factory=dict)
    """``[import, export]`` [kWh] of the intervals not yet final."""
    pending: dict[int, list[float]] = field(default_factory=dict)
    """Estimated intervals still open for correction: the estimate settled."""
    debt: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """Estimates that stood (no correction within the window) minus the energy they
    had by then: settled on the energy that comes in when the counters come back."""
    settled: int | None = None
    """The last interval settled at its gate."""
    rate: list[float] | None = None
    """``[import, export]`` [kWh/s] of the last spread: the substitute for a late meter."""
    resets: int = 0
    gaps: int = 0
    lumped: int = 0
    """Spreads whose energy before the oldest open interval was lumped onto it."""
    duplicates: int = 0
    """Samples ignored because they were identical to one already taken."""
    _recent: dict[Sample, None] = field(default_factory=dict, repr=False, compare=False)
    """The samples taken in the last :data:`RECENT_INTERVALS` intervals (at most
    :data:`RECENT_SAMPLES`), oldest first: what a re-sent interval is checked against."""

    def add(self, sample: Sample) -> None:
        """Take a sample with a time; raises :class:`MeterPayloadError` if it is stale.

        A sample identical (time, counters and power) to the last one or to a recent
        one is a repeat: it is ignored and counted in :attr:`duplicates`, never as a
        gap, a reset or energy.
        """
        if sample.time_s is None:
            raise MeterPayloadError("sample without a time")
        prev = self.last
        if sample == prev or sample in self._recent:
            self.duplicates += 1
            return
        counters = _counters(sample)
        if prev is not None and not counters and _counters(prev):
            self._remember(sample)  # power beside counters: not energy, not a counter
            return
        if prev is not None:
            assert prev.time_s is not None
            if sample.time_s < prev.time_s:
                raise MeterPayloadError("sample is older than the previous one")
            if sample.time_s == prev.time_s:
                raise MeterPayloadError("sample is not newer than the previous one")
            if counters == _counters(prev):  # else the meter's first counters: a baseline
                self._spread(prev, sample)
        self.last = sample
        self._remember(sample)

    def _remember(self, sample: Sample) -> None:
        assert sample.time_s is not None
        recent = self._recent
        recent[sample] = None
        cutoff = sample.time_s - RECENT_INTERVALS * self.interval_s
        while recent:
            oldest = next(iter(recent))
            assert oldest.time_s is not None
            if oldest.time_s >= cutoff and len(recent) <= RECENT_SAMPLES:
                break
            del recent[oldest]

    @property
    def floor(self) -> int | None:
        """The oldest interval that still takes energy (None before the first gate)."""
        if self.pending:
            return min(self.pending)
        return None if self.settled is None else self.settled + 1

    def _index(self, time_s: float) -> float:
        return (time_s - self.start_s) / self.interval_s

    def _spread(self, prev: Sample, cur: Sample) -> None:
        assert prev.time_s is not None and cur.time_s is not None
        a, b = prev.time_s, cur.time_s
        imp = self._delta(prev.import_kwh, cur.import_kwh)
        exp = self._delta(prev.export_kwh, cur.export_kwh)
        if imp is None and exp is None:
            if cur.power_kw is None:
                return
            kwh = cur.power_kw * (b - a) / 3600.0
            imp, exp = max(kwh, 0.0), max(-kwh, 0.0)
        imp, exp = imp or 0.0, exp or 0.0
        self.rate = [imp / (b - a), exp / (b - a)]
        if b - a > 1.5 * self.interval_s:
            self.gaps += 1
        first = math.floor(self._index(a) + 1e-9)
        last = math.ceil(self._index(b) - 1e-9) - 1
        lo = last - SPREAD_INTERVALS + 1
        if self.floor is not None:
            lo = max(lo, self.floor)
        for t in range(max(first, lo), last + 1):
            t0 = self.start_s + t * self.interval_s
            share = (min(b, t0 + self.interval_s) - max(a, t0)) / (b - a)
            if share > 0:
                acc = self.energy.setdefault(t, [0.0, 0.0])
                acc[0] += imp * share
                acc[1] += exp * share
        before = max(min(b, self.start_s + lo * self.interval_s) - a, 0.0) / (b - a)
        if before > 0:
            self.lumped += 1
            acc = self.energy.setdefault(lo, [0.0, 0.0])
            acc[0] += imp * before
            acc[1] += exp * before
        self._settle_debt(range(lo, max(lo, last) + 1))

    def _settle_debt(self, intervals: range) -> None:
        """Take :attr:`debt` off the energy of ``intervals`` (oldest first, none below
        zero; what is left waits for more energy); a negative debt is energy, added to
        the first."""
        for j in (0, 1):
            if self.debt[j] < 0:
                self.energy.setdefault(intervals[0], [0.0, 0.0])[j] -= self.debt[j]
                self.debt[j] = 0.0
            for k in intervals:
                acc = self.energy.get(k)
                if self.debt[j] <= 0:
                    break
                if acc is not None:
                    paid = min(acc[j], self.debt[j])
                    acc[j] -= paid
                    self.debt[j] -= paid

    def _delta(self, before: float | None, after: float | None) -> float | None:
        if before is None or after is None:
            return None
        if after < before:
            self.resets += 1
            return after
        return after - before

    def covers(self, t: int) -> bool:
        """Whether the samples reach the end of interval ``t``."""
        return (
            self.last is not None
            and self.last.time_s is not None
            and self.last.time_s >= self.start_s + (t + 1) * self.interval_s - 1e-6
        )

    def settle(self, t: int) -> tuple[float, float, bool]:
        """``(import_kwh, export_kwh, estimated)`` of interval ``t`` at its gate.

        When the samples reach the end of ``t`` this is its energy, final. Otherwise it
        is an estimate (the energy known so far, plus the last rate until the end of
        ``t``) and ``t`` stays open until :meth:`corrections` hands out its true energy;
        estimates older than :data:`PAST_INTERVALS` intervals stand (see :attr:`debt`).
        """
        self.settled = t
        for k in [k for k in self.pending if k < t - PAST_INTERVALS]:
            est, now = self.pending.pop(k), self.energy.pop(k, [0.0, 0.0])
            self.debt = [self.debt[0] + est[0] - now[0], self.debt[1] + est[1] - now[1]]
        for k in [k for k in self.energy if k < t and k not in self.pending]:
            del self.energy[k]  # before this market's first interval
        if self.covers(t):
            imp, exp = self.energy.pop(t, [0.0, 0.0])
            return imp, exp, False
        imp, exp = self.energy.get(t, [0.0, 0.0])
        if self.last is not None:
            assert self.last.time_s is not None
            end = self.start_s + (t + 1) * self.interval_s
            rest = end - max(self.last.time_s, end - self.interval_s)
            if self.rate is not None:
                imp, exp = imp + self.rate[0] * rest, exp + self.rate[1] * rest
            self.pending[t] = [imp, exp]
        return imp, exp, True

    def corrections(self) -> list[tuple[int, float, float]]:
        """``(t, import_kwh, export_kwh)`` of every estimated interval whose samples now
        reach its end: its true energy, final."""
        out = []
        for k in sorted(self.pending):
            if not self.covers(k):
                break
            del self.pending[k]
            imp, exp = self.energy.pop(k, [0.0, 0.0])
            out.append((k, imp, exp))
        return out

    def state(self) -> dict[str, Any]:
        """What a restarted market needs to continue this meter (for the ledger)."""
        return {
            "last": None if self.last is None else asdict(self.last),
            "energy": {str(k): list(v) for k, v in self.energy.items()},
            "pending": {str(k): list(v) for k, v in self.pending.items()},
            "debt": list(self.debt),
            "settled": self.settled,
            "rate": self.rate,
            "resets": self.resets,
            "gaps": self.gaps,
        }

    def restore(self, st: dict[str, Any]) -> None:
        """The inverse of :meth:`state` (older ledgers hold only some of the keys)."""

        def table(key: str) -> dict[int, list[float]]:
            return {int(k): [float(x) for x in v] for k, v in st.get(key, {}).items()}

        self.last = None if st.get("last") is None else Sample(**st["last"])
        self.energy, self.pending = table("energy"), table("pending")
        self.debt = [float(x) for x in st.get("debt", [0.0, 0.0])]
        self.settled = st.get("settled")
        self.rate = st.get("rate")
        self.resets, self.gaps = int(st.get("resets", 0)), int(st.get("gaps", 0))
