"""What the market accepts for the interval it collects (paho's network thread).

Every incoming message is parsed here (or, with the verifier pool, in its workers): a
household's reading or orders (:mod:`live.protocol`), a meter's sample
(:mod:`agents.meters.formats`, dated by the meter or, without a date, by the arrival
clock :class:`live.gate.ArrivalClock`) or a meter's
companion message (STATE, last will: not energy). An agent's later message replaces its
earlier one, so re-sent orders are never counted twice. A message's signature is
checked before it can touch the book (:mod:`live.signatures`: under the key of the
identity its topic names), as it arrives or, with ``[live] verify_workers``, in the
verifier pool (:mod:`live.verifier`): readings and orders are then also decoded there
(the market stores the records), meter samples checked there and decoded here; both
taken in arrival order (a pooled sample that carries no time is stamped when its
verdict is taken, within the pool's latency).

Flood control: a sender's messages beyond ``[live] max_messages_per_interval`` (four
times that for a meter) in an interval are dropped unparsed once the sender is complete,
or, with the pool, while that many of its messages wait there for their verdicts; until
then every message is parsed (junk on another household's topic must not use up that
household's budget). The error-report budget: every rejection is counted and
reported on ``errors`` up to ``[live] max_error_reports_per_interval`` per interval; what
was dropped or not reported is reported once, with counts, when the gate closes
(:meth:`Ingest.report_dropped`).

Duplicates: a byte-identical copy of a reading or orders message the interval before
(or the one whose gate has just closed) took, arriving once that gate has closed (QoS 1
redelivery; the households' answers to a clock a restarted market repeats, when its
persistent session had queued the first ones), is dropped and counted in
``stats.duplicates``, not rejected.

Every rejection and every flood drop is also counted against the household whose topic
(or meter) it came on (:meth:`Ingest.rejected_rows`): its reliability's
``rejected_per_interval`` (:mod:`market.reliability`). It counts in the interval the
message arrived for, whenever the verdict comes: before an interval is cleared the
market waits (briefly) for the pool's verdicts on what came for it after its gate
closed, as those are refused at once without the pool; a refusal decided once its
interval is cleared counts in the next one; one before the session's first gate, none
(:meth:`Ingest.count_against`). Without an ACL anyone may publish
on a household's topic, so that count is the household's only where the broker
authenticates publishers (:mod:`live.acl`).

For the audit ledger, the raw bytes of every signed reading, orders message and meter
sample accepted (a sample: taken as energy) are kept until the interval is settled
(:attr:`Ingest.provenance`, :mod:`live.provenance`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from agents.meters.formats import is_companion, online_state, read_meter
from agents.meters.tracker import MeterTracker, check_window
from live.bus import Bus
from live.interval_book import IntervalBook
from live.protocol import Order, Reading, Rejected, Topics, parse_json, read_orders, read_reading
from live.provenance import Provenance
from live.rejections import Rejections
from live.signatures import SignatureRejected, Signatures, check_run
from live.stats import MarketStats
from live.verifier import VerifierPool, worker_count
from live.verify_worker import METER, ORDERS, READING, Verdict
from scenarios.config.schema import Scenario

if TYPE_CHECKING:
    from live.gate import ArrivalClock

Arrived = tuple[str, str, str, int | None, bytes, int, int]
"""A pooled message's context: its kind (:data:`live.verify_worker.READING`, …), topic,
sender (agent or meter id), row, body, and the interval and serial of the book it
arrived for (:meth:`Ingest.flooding`)."""
DRAIN_TIMEOUT_S = 10.0  # the longest a gate waits for the verifier pool's messages [s]
REFUSALS_WAIT_S = 1.0  # the longest a clearing waits for the pool's late refusals [s]


class Ingest(Rejections):
    """The messages of the interval being collected, for the book of that interval.

    Parameters
    ----------
    scenario : the validated scenario (its ``[live]`` limits and meters)
    topics : the community's topics
    bus : where rejections are reported (``errors``)
    stats : the market's counters
    row : each household's row, by agent id
    metered : whether each row is backed by a meter (its readings come from the meter)
    trackers : each meter's tracker, by meter id
    arrival : the arrival clock, which stamps samples that carry no time
    """

    def __init__(
        self,
        scenario: Scenario,
        topics: Topics,
        bus: Bus,
        stats: MarketStats,
        row: dict[str, int],
        metered: np.ndarray,
        trackers: dict[str, MeterTracker],
        arrival: ArrivalClock,
    ) -> None:
        sim, self.live = scenario.simulation, scenario.live
        self.topics, self.bus, self.stats = topics, bus, stats
        self.row, self.metered, self.trackers, self.arrival = row, metered, trackers, arrival
        self.meters = {m.id: m for m in self.live.meters}
        self.max_kwh = self.live.max_power_kw * sim.interval_hours
        self.tz = ZoneInfo(sim.timezone)
        self.sim_rows = int((~metered).sum())
        """Households whose reading and orders come as messages (not from a meter)."""
        self.lock = threading.Lock()
        """Guards the book, the trackers, the offline meters and the arrival clock."""
        self.changed = threading.Event()
        """Set when the book may have become complete (the gate looks again)."""
        self.offline: set[str] = set()
        """Meters whose last will says they are offline: a gate does not wait for them."""
        self.book = IntervalBook(0, closed=True)
        self.closed_inputs: dict[str, bytes] = {}
        """What the book before the open one took, by topic (:attr:`IntervalBook.accepted`)."""
        self.opened = 0
        self.carried: Counter[int] = Counter()
        self._run: str | None = None
        self.signatures = Signatures.for_live(self.live)
        """Checks each message's signature as it arrives (:mod:`live.signatures`)."""
        self.provenance = Provenance()
        """The raw signed messages each household's accepted inputs came from, until the
        interval is settled (:mod:`live.provenance`)."""
        workers = worker_count(self.live)
        self._lagging = False
        """Whether the pool still had messages when the last gate stopped waiting."""
        self.verifier = (
            VerifierPool(self.live, sim.interval_hours, workers, self._verified, self._said)
            if workers
            else None
        )
        """The processes that check (and decode) readings, orders and meter samples
        (``[live] verify_workers``, :mod:`live.verifier`); None: checked here as they
        arrive."""

    def open(
        self, t: int, wall_start: float | None = None, wall_len: float = 1.0, closed: bool = False
    ) -> None:
        """Start collecting for interval ``t`` (``closed``: meter samples only, after the
        last interval); the arrival clock runs it ``wall_len`` wall seconds from
        ``wall_start`` (default: now)."""
        with self.lock:
            self.closed_inputs = self.book.accepted
            self.book = IntervalBook(t, closed=closed)
            self.opened += 1
            self.first_gate = self.first_gate or (None if closed else self.opened)
            self.arrival.open(t, time.time() if wall_start is None else wall_start, wall_len)

    @property
    def run(self) -> str | None:
        """The market's run id (set by the market): a message naming another is refused."""
        return self.verifier.run if self.verifier is not None else self._run

    @run.setter
    def run(self, run: str | None) -> None:
        self._run = run
        if self.verifier is not None:
            self.verifier.run = run

    # --- messages ----------------------------------------------------------------------
    def on_agent(self, topic: str, payload: bytes) -> None:
        """A household's ``reading`` or ``orders``; with a verifier pool, its check and
        its taking come later, in arrival order (:meth:`_verified`)."""
        agent = self.topics.agent_of(topic)
        live, verifier = self.live, self.verifier
        row = None
        try:
            row = self.row.get(agent)
            if row is None:
                raise Rejected(f"unknown agent {agent!r}")
            if self.metered[row]:
                raise Rejected(
                    f"{agent} is backed by a meter; its readings and orders come from the meter"
                )
            book = self.book
            if payload in (self.closed_inputs.get(topic), book.closed and book.accepted.get(topic)):
                # MQTT's at-least-once copy, or the answer to a clock the market repeated
                # after a restart, of what a closed interval took: nothing to refuse
                self.stats.duplicates += 1
                return
            limit = self.live.max_messages_per_interval
            arrived = self.flooding(
                topic,
                agent,
                limit,
                lambda b: row in b.readings and row in b.orders,
                verifier is not None,
            )
            if arrived is None:
                return
            if verifier is not None:  # checked and decoded in a worker (flood cut above)
                kind = READING if topic.endswith("/reading") else ORDERS
                context = (kind, topic, agent, row, payload, *arrived)
                verifier.submit((kind, agent, arrived[0], payload), context)
                return
            data = parse_json(payload, live.max_payload_bytes)
            signed = self.signatures.check(data, agent)  # the topic's agent, outside the lock
            with self.lock:
                full = self._put(topic, agent, row, payload, data, signed)
        except Exception as exc:
            self._refuse(topic, row, exc)
            return
        if full:  # wake the gate only when the book may be complete (not per message)
            self.changed.set()

    def _verified(self, contexts: list[Arrived], verdicts: list[Verdict]) -> None:
        """The pool's verdicts (:data:`live.verify_worker.Verdict`) on a batch, in arrival
        order: each reading or orders message taken into the book it arrived for, if that
        gate is still open, under one hold of the lock (its record only stored: the worker
        decoded it); then the meter samples, in order, as :meth:`on_meter` takes them."""
        refused: list[tuple[str, int | None, Exception, int]] = []
        samples: list[tuple[str, bytes, Verdict, int]] = []
        with self.lock:
            book, opened, full = self.book, self.opened, False
            inflight, provenance = book.inflight, self.provenance
            for context, v in zip(contexts, verdicts, strict=True):
                kind, topic, sender, row, payload, t, serial = context
                if serial == opened:
                    inflight[sender] -= 1
                if kind[0] == METER:
                    samples.append((topic, payload, v, serial))
                    continue
                assert row is not None
                if isinstance(v, str):
                    refused.append((topic, row, Rejected(v), serial))
                    continue
                signed, digest, record = v
                if book.closed or serial != opened:
                    refused.append((topic, row, Rejected(f"the gate of t={t} is closed"), serial))
                elif kind == READING:
                    book.readings[row] = Reading(*record)
                    book.accepted[topic] = payload
                    provenance.reading(row, payload, signed, digest)
                else:
                    book.orders[row] = [Order(*o) for o in record]
                    book.accepted[topic] = payload
                    book.order_messages += 1
                    provenance.order(row, payload, signed, digest)
            full = len(book.readings) >= self.sim_rows and len(book.orders) >= self.sim_rows
        for topic, row, error, serial in refused:
            self._refuse(topic, row, error, serial)
        for topic, payload, v, serial in samples:
            self._sample_verdict(topic, payload, v, serial)
        if full or samples:
            self.changed.set()

    def _refuse(
        self, topic: str, row: int | None, exc: Exception, serial: int | None = None
    ) -> None:
        self.count_against(row, serial)
        if isinstance(exc, Rejected):
            reason = str(exc)
            self.reject(topic, reason, reason.split(" ")[0].split(":")[0])
        else:
            self.reject(topic, f"internal error handling the message: {exc!r}", "internal")

    def _put(
        self, topic: str, agent: str, row: int, payload: bytes, data: dict[str, Any], signed: bool
    ) -> bool:
        """Take a checked reading or orders into the open book (under :attr:`lock`);
        whether the book may be complete now."""
        live = self.live
        check_run(data, self.run)
        book = self.book
        if book.closed:
            raise Rejected(f"the gate of t={book.t} is closed")
        if topic.endswith("/reading"):
            book.readings[row] = read_reading(data, agent, book.t, self.max_kwh)
            self.provenance.reading(row, payload, signed)
        else:
            book.orders[row] = read_orders(
                data,
                agent,
                book.t,
                self.max_kwh,
                live.max_price_per_kwh,
                live.max_orders_per_message,
            )
            book.order_messages += 1
            self.provenance.order(row, payload, signed)
        book.accepted[topic] = payload
        return len(book.readings) >= self.sim_rows and len(book.orders) >= self.sim_rows

    def settle(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Before a gate closes: wait (``timeout`` s at most) for the verifier pool's
        messages; those still being checked are reported on ``errors`` (refused later)."""
        if self.verifier is None:
            return
        left = self.verifier.drain(timeout)
        self._lagging = left > 0
        if left:
            self._said(
                f"verifier: {left} messages still being checked {timeout:g} s after the "
                f"gate of t={self.book.t} began to close; they are not in that interval",
                count=left,
            )

    def settle_refusals(self, timeout: float = REFUSALS_WAIT_S) -> None:
        """Before the interval whose gate has closed is cleared: wait (``timeout`` s at
        most; not at all when the pool lagged at the gate) for the pool's verdicts on
        what arrived for it after the gate closed, so that their refusals count in that
        interval as they do without the pool (:meth:`count_against`); a refusal still
        out counts in the next interval."""
        if self.verifier is not None and not self._lagging:
            self.verifier.drain(timeout, count_timeout=False)

    def _said(self, said: str, **extra: Any) -> None:
        self.report(f"{self.topics.root}/#", said, **extra)

    def close(self) -> None:  # the verifier pool
        if self.verifier is not None:
            self.verifier.close()

    def on_meter(self, topic: str, payload: bytes) -> None:
        """A meter's sample, or a companion message of a real device."""
        fmt, meter_id, suffix = self.topics.meter_of(topic)
        meter = self.meters.get(meter_id)
        row = self.row.get(meter.household) if meter is not None else None
        try:
            if meter is None:
                raise Rejected(f"unknown meter {meter_id!r}")
            if meter.format != fmt:
                raise Rejected(f"meter {meter_id!r} is a {meter.format} meter, not {fmt}")
            if is_companion(fmt, suffix):  # a real device's STATE, LWT, …: not energy
                self.stats.meter_companions += 1
                online = online_state(fmt, suffix, payload)
                if online is not None:
                    with self.lock:
                        if online:
                            self.offline.discard(meter_id)
                        else:
                            self.offline.add(meter_id)
                    self.changed.set()
                return
            tracker = self.trackers[meter_id]
            verifier = self.verifier
            limit = 4 * self.live.max_messages_per_interval
            arrived = self.flooding(
                topic, meter_id, limit, lambda b: tracker.covers(b.t), verifier is not None
            )
            if arrived is None:
                return
            if len(payload) > self.live.max_payload_bytes:
                raise Rejected(f"payload of {len(payload)} bytes is above the limit")
            if verifier is not None:  # its signature checked in a worker, taken in order
                t, serial = arrived
                verifier.submit(
                    (METER + suffix, meter_id, t, payload),
                    (METER, topic, meter_id, row, payload, t, serial),
                )
                return
            unwrapped, signed = self.signatures.meter_payload(payload, meter, suffix)
            self._take_sample(fmt, suffix, meter_id, payload, unwrapped, signed)
        except Exception as exc:
            self._meter_refused(topic, row, exc)
            return
        self.changed.set()

    def _sample_verdict(self, topic: str, raw: bytes, v: Verdict, serial: int) -> None:
        """A meter sample's verdict from the pool, taken as :meth:`on_meter` would
        (``serial``: the book it arrived for, whose interval a refusal counts in)."""
        fmt, meter_id, suffix = self.topics.meter_of(topic)
        meter = self.meters[meter_id]
        try:
            if isinstance(v, str):
                raise SignatureRejected(v) if v.startswith("signature:") else RuntimeError(v)
            signed, _, unwrapped = v
            self._take_sample(fmt, suffix, meter_id, raw, unwrapped or raw, signed)
        except Exception as exc:
            self._meter_refused(topic, self.row.get(meter.household), exc, serial)

    def _take_sample(
        self, fmt: str, suffix: str, meter_id: str, raw: bytes, payload: bytes, signed: bool
    ) -> None:
        """A sample whose signature was checked (``payload``: without its ``"sig"``; ``raw``:
        as received, for the audit ledger's private store, a natively signed OCMF record
        as a wrapped sample) into its meter's tracker."""
        meter, tracker = self.meters[meter_id], self.trackers[meter_id]
        sample = read_meter(fmt, suffix, payload, self.tz)
        with self.lock:
            time_s = sample.time_s
            if time_s is None:  # stamp it with the simulated time of arrival
                time_s = self.arrival.now()
                sample = replace(sample, time_s=time_s)
            clock = self.arrival
            check_window(time_s, clock.start_s + self.book.t * clock.interval_s, clock.interval_s)
            tracker.add(sample)
            if signed and tracker.last is sample:  # taken as energy: an input
                self.provenance.sample(self.row[meter.household], raw)
            self.offline.discard(meter_id)
            self.stats.meter_samples += 1
