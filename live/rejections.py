"""Rejections, the error-report budget and flood control of the ingest
(:class:`live.ingest.Ingest`, whose module says the rules): what is refused is counted,
reported on ``errors`` within the interval's budget, and what was dropped or not
reported one by one is summed up when the gate closes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from agents.meters.formats import MeterPayloadError
from live.bus import Bus
from live.interval_book import IntervalBook
from live.protocol import VERSION, Rejected, Topics
from live.signatures import SignatureRejected
from live.stats import MarketStats
from scenarios.config.schema_live import LiveSection, Meter


class Rejections:
    """The ingest's rejections (the attributes are the ingest's)."""

    live: LiveSection
    topics: Topics
    bus: Bus
    stats: MarketStats
    lock: threading.Lock
    book: IntervalBook
    meters: dict[str, Meter]
    row: dict[str, int]
    opened: int
    """Books opened so far (a book's serial)."""
    carried: Counter[int]
    """Rejections decided after the interval their message arrived for was cleared,
    per household row: counted in the next interval cleared."""
    first_gate: int | None = None
    """The serial of the session's first book that collects (None: none opened yet)."""

    def reject(self, topic: str, reason: str, category: str) -> None:
        self.stats.rejected[category] += 1
        with self.lock:
            book = self.book
            if book.reports >= self.live.max_error_reports_per_interval:
                book.unreported[category] += 1
                return
            book.reports += 1
        self.report(topic, reason)

    def report(self, topic: str, reason: str, **extra: Any) -> None:
        self.bus.publish(
            self.topics.errors,
            {"v": VERSION, "topic": topic[:300], "reason": reason[:500], **extra},
            qos=0,
        )

    def flooding(
        self,
        topic: str,
        sender: str,
        limit: int,
        complete: Callable[[IntervalBook], bool],
        pooled: bool = False,
    ) -> tuple[int, int] | None:
        """Count a message of ``sender``; None (and counted, the first one reported) when
        it is beyond ``limit`` this interval and ``complete(book)`` (the sender's reading
        and orders, or its meter's samples, are in) or, ``pooled`` (it would go to the
        verifier pool), ``limit`` of the sender's messages are in the pool already
        (:attr:`IntervalBook.inflight`: counted here, taken off as their verdicts are
        applied); else the book's interval and serial (:attr:`opened`: what a message
        handed to the verifier pool is taken against). Checked before anything is parsed.

        Until a sender is complete its messages are parsed: anyone may publish on a topic
        when the broker has no ACL, and junk on another household's topic must not use
        up that household's budget and silence it. With the pool, such junk beyond the
        limit can hold a household's own message back only while ``limit`` messages on
        its topic wait for their verdicts (a burst sent before the first verdict reaches
        the pool ``limit`` at a time, not all)."""
        with self.lock:
            book = self.book
            book.messages[sender] += 1
            if book.messages[sender] <= limit or not (
                complete(book) or (pooled and book.inflight[sender] >= limit)
            ):
                if pooled:
                    book.inflight[sender] += 1
                return book.t, self.opened
            book.flooded[sender] += 1
            first, t = book.flooded[sender] == 1, book.t
        if first:
            self.reject(
                topic,
                f"flood: more than {limit} messages from {sender} in interval {t}; the rest "
                "are dropped, counted, and reported once when the gate closes",
                "flood",
            )
        else:
            self.stats.rejected["flood"] += 1
        return None

    def report_dropped(self, book: IntervalBook | None = None) -> None:
        """At gate closure: one report per flooding sender and one for the rejections
        beyond the report budget, with their counts; called again when the next clock
        opens, for what was dropped while the gate was closed (reported as such).
        ``book``: the interval's (default: the current one)."""
        with self.lock:
            book = self.book if book is None else book
            flooded, book.flooded_reported = book.flooded - book.flooded_reported, +book.flooded
            unreported = book.unreported - book.unreported_reported
            book.unreported_reported = +book.unreported
            late, book.dropped_reported = book.dropped_reported, True
        when = f"after the gate closed, interval {book.t}" if late else f"in interval {book.t}"
        root = self.topics.root
        for sender, k in sorted(flooded.items()):
            where = "meters/+" if sender in self.meters else "agents"
            self.report(
                f"{root}/{where}/{sender}/#",
                f"flood: {k} messages from {sender} dropped {when}",
                count=k,
            )
        if unreported:
            k = sum(unreported.values())
            self.report(
                f"{root}/#",
                f"{k} more messages rejected {when} than reported one by one",
                count=k,
                by_category=dict(sorted(unreported.items())),
            )

    def count_against(self, row: int | None, serial: int | None = None) -> None:
        """Count a rejected message against household ``row`` (None: no household's), in
        the interval it arrived for: the book of ``serial`` (:meth:`flooding`'s, for a
        verdict of the verifier pool; None: the current book). A rejection decided once
        that interval is cleared counts in the next one cleared (:attr:`carried`).

        One that arrived before the session's first gate opened (:attr:`first_gate`) is
        not counted: that is what the broker queued for the market's persistent session
        while the market was down, the household's answers to a clock of the market's
        previous life (the gate it answered never closed; it answers the repeated clock
        again), not a late or bad message of the household's."""
        if row is None:
            return
        with self.lock:
            arrived = self.opened if serial is None else serial
            if self.first_gate is None or arrived < self.first_gate:
                return
            book = self.book
            if book.cleared or (serial is not None and serial != self.opened):
                self.carried[row] += 1
            else:
                book.rejected[row] += 1

    def rejected_rows(self, book: IntervalBook) -> dict[int, int]:
        """The messages rejected in ``book``'s interval per household row: those refused
        on its topic (or from its meter), those dropped as its (or its meter's) flood,
        and those :attr:`carried` from the interval before. Marks the book cleared: what
        is refused later counts in the next interval. Call under :attr:`lock`."""
        book.cleared = True
        out = Counter(book.rejected) + self.carried
        self.carried.clear()
        for sender, k in book.flooded.items():
            meter = self.meters.get(sender)
            row = self.row.get(meter.household if meter is not None else sender)
            if row is not None:
                out[row] += k
        return dict(out)

    def _meter_refused(
        self, topic: str, row: int | None, exc: Exception, serial: int | None = None
    ) -> None:
        if isinstance(exc, SignatureRejected):
            self.reject(topic, str(exc), "signature")
        elif isinstance(exc, Rejected | MeterPayloadError):
            self.count_against(row, serial)
            self.reject(topic, f"meter: {exc}", "meter")
        else:
            self.count_against(row, serial)
            reason = str(exc) if isinstance(exc, RuntimeError) else None
            self.reject(
                topic, reason or f"internal error handling the message: {exc!r}", "internal"
            )
