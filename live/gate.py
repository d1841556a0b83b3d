"""The market's clock: when each interval's gate opens and closes.

Per interval ``t`` the gate publishes the retained ``clock`` ``{run, t, interval_start,
interval_minutes, gate_closes_at}`` and collects (:mod:`live.ingest`) until
``gate_closes_at`` (wall clock, UTC), or, with ``[live] close_when_complete`` (the
default only at ``--speed 0``), until every household is complete: its reading and
orders in, every meter's samples past the interval's end (a meter whose last will says
it is offline is not waited for). It never closes while cut off from the broker, nor
before ``live.reconnect_grace_s`` after a reconnect (after which the clock is published
again with a null gate, asking again). At ``--speed X > 0`` the clock of interval ``t``
comes ``t × interval / X`` after the first, never earlier; unpaced, a gate closes after
``live.complete_timeout_s`` without every household.

After the last interval the gate stays closed while the late meters reach its end (an
interval at most: :meth:`Gate.close_out`), then the clock says ``done``.

Meter samples that carry no time are stamped by :class:`ArrivalClock`, on the simulated
time that the wall clock has reached in the open interval; it never goes back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from live.bus import Bus
from live.clock import clock_payload, done_payload
from live.ingest import Ingest
from live.stats import IngestWindow, MarketStats
from scenarios.config.schema import Scenario

if TYPE_CHECKING:
    from live.market import MarketListener


class ArrivalClock:
    """The simulated time of arrival, for meter samples without a time of their own.

    Paced, simulated time runs on with the wall clock between gates; a gate that closes
    late (a loaded machine) leaves stamps past its interval's end, and the next interval's
    clock starts at its own start: the stamps never go back (the previous one is the
    floor), so a meter's samples stamped on arrival keep their order. Unpaced
    (``speed`` 0), a stamp is at most the open interval's end.

    Parameters
    ----------
    start_s : the scenario's first interval's start (epoch seconds)
    interval_s : an interval's length, simulated seconds
    speed : simulated seconds per wall second (0: unpaced)
    """

    def __init__(self, start_s: float, interval_s: float, speed: float) -> None:
        self.start_s, self.interval_s, self.speed = start_s, interval_s, speed
        self.t, self.wall_start, self.wall_len = 0, time.time(), 1.0
        self.last_s = -math.inf
        """The last stamp given: the next is never earlier."""

    def open(self, t: int, wall_start: float, wall_len: float) -> None:
        """Interval ``t`` runs ``wall_len`` wall seconds from ``wall_start``."""
        self.t, self.wall_start, self.wall_len = t, wall_start, max(wall_len, 1e-9)

    def now(self) -> float:
        """The stamp of a sample arriving now (epoch seconds, simulated)."""
        start = self.start_s + self.t * self.interval_s  # also past the last interval
        frac = (time.time() - self.wall_start) / self.wall_len
        if self.speed <= 0:  # unpaced: the open interval's end at most
            frac = min(max(frac, 0.0), 1.0)
        self.last_s = max(self.last_s, start + frac * self.interval_s)
        return self.last_s


class Gate:
    """Opens and closes every interval's gate, and paces the intervals.

    Parameters
    ----------
    scenario : the validated scenario (its ``[live]`` gate settings)
    stamps : every interval's start (:func:`scenarios.engine.inputs.timeline`)
    speed : simulated seconds per wall second (0: unpaced, each gate as soon as complete)
    run_id : the run, carried in every clock
    bus : the market's connection
    ingest : what is collected while a gate is open
    stats : the market's counters (one :class:`~live.stats.IngestWindow` per gate)
    listeners : told every clock published (the in-process dashboard)
    stop : set to stop waiting
    log : where a gate that closed incomplete is said
    """

    def __init__(
        self,
        scenario: Scenario,
        stamps: pd.DatetimeIndex,
        speed: float,
        run_id: str,
        bus: Bus,
        ingest: Ingest,
        stats: MarketStats,
        listeners: list[MarketListener],
        stop: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        sim, self.live = scenario.simulation, scenario.live
        self.run_id, self.bus, self.ingest, self.stats = run_id, bus, ingest, stats
        self.listeners, self.stop, self.log = listeners, stop, log
        self.stamps = stamps
        self.interval_minutes = sim.interval_minutes
        self.close_early = (
            self.live.close_when_complete
            if self.live.close_when_complete is not None
            else speed == 0
        )
        """Whether a gate closes as soon as every household and meter is in."""
        self.wall_len = sim.interval_minutes * 60.0 / speed if speed > 0 else 0.0
        """An interval's length in wall seconds (0: unpaced)."""
        self.next_start = time.time()
        """When the next clock is due (wall clock, epoch seconds)."""

    def start(self) -> None:
        """The first clock is due now."""
        self.next_start = time.time()

    def publish_clock(self, payload: dict[str, Any]) -> None:
        self.bus.publish(self.ingest.topics.clock, payload, retain=True)
        for listener in self.listeners:
            try:
                listener.clock(payload)
            except Exception as exc:
                self.log(f"listener failed on the clock: {exc!r}")

    def complete(self, t: int) -> bool:
        """Whether every household and every online meter is in for ``t`` (under the
        ingest lock)."""
        ingest = self.ingest
        book, rows = ingest.book, ingest.sim_rows
        if len(book.readings) < rows or len(book.orders) < rows:
            return False
        return all(tr.covers(t) or m in ingest.offline for m, tr in ingest.trackers.items())

    def collect(self, t: int) -> None:
        """Publish the clock of ``t`` (when it is due) and collect until its gate closes."""
        live, ingest, wall_len = self.live, self.ingest, self.wall_len
        wall_start, now = self.next_start, time.time()
        if wall_start > now:  # paced: the clock of t comes when the simulated clock is at t
            if self.stop.wait(wall_start - now):
                return
            now = time.time()
        if wall_start < now:
            wall_start = now
        if wall_len > 0:
            gate = wall_start + live.gate_fraction * wall_len
        else:  # as soon as complete, but a household or meter that never comes cannot stall
            gate = wall_start + live.complete_timeout_s
        ingest.report_dropped()  # what was dropped while the gate was closed
        ingest.open(t, wall_start, wall_len)
        clock = clock_payload(
            self.run_id,
            t,
            self.stamps[t].isoformat(),
            self.interval_minutes,
            datetime.fromtimestamp(gate, UTC).isoformat(),
        )
        opened = time.time()
        self.publish_clock(clock)
        seen_connects = self.bus.connects
        while not self.stop.is_set():
            ingest.changed.clear()
            now = time.time()
            with ingest.lock:
                complete = self.close_early and self.complete(t)
            online = self.bus.connected.is_set()
            if self.bus.connects != seen_connects:  # reconnected: ask again, then wait
                seen_connects = self.bus.connects
                self.publish_clock({**clock, "gate_closes_at": None})
            grace = (
                time.monotonic() - self.bus.reconnected_at >= live.reconnect_grace_s
                or self.bus.connects <= 1
            )
            if online and grace and (complete or now >= gate):
                if wall_len == 0 and self.close_early and not complete:
                    self.log(
                        f"interval {t}: gate closed after {live.complete_timeout_s:g} s "
                        "without every household and meter"
                    )
                break
            ingest.changed.wait(max(min(gate - now, 0.05), 0.001))
        ingest.settle()  # what the verifier pool still checks (arrived in time) goes in
        with ingest.lock:
            book = ingest.book
            book.closed = True
            accepted = sum(book.messages.values()) - sum(book.flooded.values())
        self.stats.ingest.append(IngestWindow(t, opened, time.time(), accepted))
        ingest.report_dropped(book)

    def advance(self) -> None:
        """After an interval is committed: when the next clock is due, counting an
        interval that ended behind its schedule."""
        self.next_start += self.wall_len
        now = time.time()
        lag = now - self.next_start
        if lag > 0 and self.wall_len > 0:
            self.stats.behind += 1
            self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
            self.next_start = now
        elif self.wall_len == 0:
            self.next_start = now

    def close_out(self, end: int) -> None:
        """After the last gate (interval ``end`` - 1): wait, an interval at most, for the
        meters still short of its end to reach it (their samples are accepted, stamped
        past the last interval, no order or reading is)."""
        ingest, last = self.ingest, end - 1
        wait = self.wall_len if self.wall_len > 0 else self.live.complete_timeout_s
        ingest.open(end, time.time(), self.wall_len, closed=True)
        deadline = time.time() + wait
        while not self.stop.is_set() and time.time() < deadline:
            ingest.changed.clear()
            with ingest.lock:
                if all(tr.covers(last) for tr in ingest.trackers.values() if tr.pending):
                    break
            ingest.changed.wait(0.05)

    def done(self, t: int) -> None:
        """The retained clock after the last interval."""
        self.bus.publish(self.ingest.topics.clock, done_payload(self.run_id, t), retain=True)
