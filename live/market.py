"""The live market service: the interval loop over MQTT, in three rooms.

- :mod:`live.ingest`: every incoming message (readings, orders, meter samples and
  companions) parsed and accepted into the interval's book, flood control, the
  error-report budget;
- :mod:`live.gate`: the market's clock (publishing ``clock``, closing the gate, the
  arrival clock, pacing) and the close-out after the last interval;
- here, the service loop: per interval ``t``, once its gate has closed,

  1. build the book in a canonical order (:mod:`live.plan`: kind, household, order in
     message; arrival order never matters; meter-backed households' readings come from
     their meters, :mod:`agents.meters.tracker`) and run it through the batch engine's own
     step (:class:`scenarios.engine.interval.MarketStep`: clear, grid check and re-clear,
     settle); every household is billed on its metered net (its reading; zero without
     one), its orders being commitments: the difference is imbalance
     (:mod:`market.settlement`);
  2. enter the interval in the audit ledger (:mod:`live.audit`: its inputs, raw messages,
     clearing, settlements and corrections), append it to the state ledger (fsync: the
     commit point), then publish the anonymous ``market/result``, the operator's
     ``market/book`` (:mod:`live.book`) and every household's
     ``agents/<id>/settlement``, and the corrections of earlier settlements whose late
     meter energy has come (:mod:`live.corrections`); when a checkpoint is due, the
     signed checkpoint (retained) and every household's bill.

  After a restart it resumes from the state ledger: the step's random state, the meters'
  counters and open estimates, the households' reliability window (each record holds
  its interval's contribution, :mod:`market.reliability`; the last
  ``[market] reliability_window`` records rebuild the window exactly), the last interval
  published again; the audit ledger is cut back to what the state ledger committed and
  continues in a new session.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# the readings' storage (plan.battery_self_kwh / ev_self_kwh) plus the flexible fills,
# less postponed EV charging: the households' metered flows as the market knows them
from agents.households.community import device_flows as market_flows
from agents.meters.tracker import MeterTracker
from live.audit import LiveAudit
from live.book import full_book
from live.bus import DEFAULT_WINDOW, BrokerConfig, Bus
from live.corrections import MeterCorrections
from live.gate import ArrivalClock, Gate
from live.heap import freeze_interval, settle_heap
from live.ingest import Ingest
from live.ledger import Ledger, LedgerError, fingerprint, recent_values
from live.plan import Planner
from live.protocol import Topics, reading_payload, topics_for
from live.stats import MarketStats
from market.reliability import Conduct, slot_from_json, slot_to_json
from scenarios.audit.leaves import rng_from_json, rng_to_json
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.inputs import timeline
from scenarios.engine.interval import MarketStep
from scenarios.results.payloads import book_curve, result_payload, settlement_payloads

Log = Callable[[str], None]
RESULTS_KEPT = 200


def market_client_id(topics: Topics) -> str:
    return f"p2pgrid-market-{topics.community}"


class MarketListener(Protocol):
    """Sees what the market publishes, in-process (payloads as on the wire)."""

    def clock(self, payload: dict[str, Any]) -> None:
        """The ``clock`` payload of an interval whose gate opens."""

    def interval(
        self,
        result: dict[str, Any],
        settlements: dict[str, dict[str, Any]],
        readings: dict[str, dict[str, Any]],
        book: dict[str, Any],
    ) -> None:
        """A committed interval: its ``market/result``, every household's settlement,
        the readings the market accepted for it (by agent id) and its ``market/book``."""


class MarketService:
    """The live market of one scenario.

    Parameters
    ----------
    scenario : the validated scenario (its ``[live]`` section included)
    broker : where to connect
    state_dir : the ledger (live/ledger.py)
    speed : simulated seconds per wall second (900 = one 15-min interval per second)
    intervals : how many intervals to run from ``t = 0`` (default: the whole scenario)
    """

    def __init__(
        self,
        scenario: Scenario,
        broker: BrokerConfig,
        state_dir: Path,
        speed: float = 900.0,
        intervals: int | None = None,
        log: Log | None = None,
    ) -> None:
        sim, live = scenario.simulation, scenario.live
        self.scenario = scenario
        self.log = log or (lambda _msg: None)
        self.topics = topics_for(scenario)
        self.speed = speed
        self.end = min(intervals if intervals is not None else sim.n_intervals, sim.n_intervals)
        self.interval_s = sim.interval_minutes * 60.0
        self.stamps = timeline(scenario)
        n = scenario.community.households
        self.n = n
        self.ids = household_ids(n)
        self.row = row = {a: i for i, a in enumerate(self.ids)}
        metered = np.zeros(n, dtype=bool)
        metered[[row[m.household] for m in live.meters]] = True
        start_s = self.stamps[0].timestamp()
        self.trackers = {m.id: MeterTracker(start_s, self.interval_s) for m in live.meters}
        self.planner = Planner(scenario, row, self.trackers)
        self.grid = (
            GridStage(scenario, n, state_dir / "grid") if scenario.grid.check != "off" else None
        )
        self.step = MarketStep(scenario, n, self.grid)
        self.corrections = MeterCorrections(
            {m.id: m.household for m in live.meters}, self.step.fees.tariffs
        )
        self.ledger = Ledger(
            state_dir, self.topics.community, fingerprint(scenario.model_dump_json())
        )
        self.run_id = self.ledger.run
        """Carried in every ``clock``: clients ignore the clock of another run."""
        if self.ledger.next_t >= self.end:
            self._close()
            raise LedgerError(
                f"{state_dir} holds run {self.run_id}, which has already settled intervals "
                f"0-{self.ledger.next_t - 1}: nothing left to run up to interval {self.end}. "
                "Use another --state for a new run (or more --intervals to extend this one)"
            )
        if self.ledger.last is not None and "rng" in self.ledger.last:
            self.step.rng.bit_generator.state = rng_from_json(self.ledger.last["rng"])
        if self.ledger.last is not None:
            self._restore_reliability(state_dir)
        latest = self.ledger.latest
        if latest is not None and "meters" in latest:
            self._restore_meters(latest["meters"])
            self.corrections.restore(latest.get("estimates", []))
        self.meter_rows = np.flatnonzero(metered).tolist()
        self.audit = LiveAudit(scenario, state_dir, self.topics.community, self.run_id, latest)
        """The audit ledger, ``<state>/ledger/`` (:mod:`live.audit`)."""
        self.stats = MarketStats()
        self._stop = threading.Event()
        self.bus = Bus(
            broker,
            "market",
            self.topics.root,
            client_id=market_client_id(self.topics),
            persistent=True,
            # one settlement per household per interval: a window that holds a whole
            # interval's settlements lets them drain while the next gate is open
            window=min(max(DEFAULT_WINDOW, 2 * n + 100), 60_000),
        )
        self.arrival = ArrivalClock(start_s, self.interval_s, speed)
        """Stamps the meter samples that carry no time (:mod:`live.gate`)."""
        self.ingest = Ingest(
            scenario, self.topics, self.bus, self.stats, row, metered, self.trackers, self.arrival
        )
        """Every message received, into the open interval's book (:mod:`live.ingest`)."""
        self.ingest.run = self.run_id
        self.ingest.open(self.ledger.next_t, closed=True)
        self.bus.subscribe(self.topics.reading("+"), self.ingest.on_agent)
        self.bus.subscribe(self.topics.orders("+"), self.ingest.on_agent)
        self.bus.subscribe(self.topics.meters, self.ingest.on_meter)
        self.results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        """The last :data:`RESULTS_KEPT` intervals' ``market/result`` (the ledger holds
        every one)."""
        self.books: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        """The same intervals' ``market/book`` (:func:`live.book.full_book`)."""
        self.listeners: list[MarketListener] = []
        """Told every clock and every interval the market publishes, after the ledger
        commit (the in-process dashboard)."""
        self.gate = Gate(
            scenario,
            self.stamps,
            speed,
            self.run_id,
            self.bus,
            self.ingest,
            self.stats,
            self.listeners,
            self._stop,
            self.log,
        )
        """The market's clock: each interval's gate (:mod:`live.gate`)."""
        self._told_readings: dict[str, dict[str, Any]] = {}

    def stop(self) -> None:
        self._stop.set()
        self.ingest.changed.set()

    def collecting(self, t: int) -> bool:
        """Whether the gate of interval ``t`` is open (its clock has been published)."""
        with self.ingest.lock:
            return self.ingest.book.t == t and not self.ingest.book.closed

    def run(self) -> MarketStats:
        """Run until ``intervals`` are settled (or :meth:`stop`)."""
        if self.grid is not None:
            self.grid.prepare()
        settle_heap()  # opt-in (live/heap.py)
        self.log(self.audit.open())
        try:
            self.bus.start(timeout=30.0)
        except ConnectionError:
            self._close()
            raise
        try:
            if self.ledger.last is not None:
                self._republish(self.ledger.last)
            t = self.ledger.next_t
            self.gate.start()
            while t < self.end and not self._stop.is_set():
                self.gate.collect(t)
                if self._stop.is_set():
                    break
                began = time.perf_counter()
                record, entry = self._clear(t)
                if self.trackers:
                    record |= self._meter_state()
                record["audit_seq"] = self.audit.enter(
                    entry, record.get("corrections", []), self.row
                )
                self.ledger.append(record)
                self._publish(record)
                self.stats.checkpoints += self.audit.publish(self.bus, self.topics)
                freeze_interval()  # opt-in (live/heap.py)
                self.stats.clear_s.append(time.perf_counter() - began)
                self.stats.intervals += 1
                self.gate.advance()
                t += 1
            self.ingest.report_dropped()
            if t >= self.end:
                self._close_out()
            # the session's last checkpoint (the run's when it is complete) and bills
            self.stats.checkpoints += self.audit.publish(self.bus, self.topics, last=True)
            if t >= self.end:
                self.gate.done(t)
            self.bus.drain(30.0)
        finally:
            self.bus.stop("done" if t >= self.end else "offline")
            self._close()
        return self.stats

    def _close(self) -> None:
        if hasattr(self, "ingest"):
            self.ingest.close()
        if hasattr(self, "audit"):
            self.audit.close(self.ledger.latest)
        self.ledger.close()
        if self.grid is not None:
            self.grid.close()

    # --- restart -----------------------------------------------------------------------
    def _meter_state(self) -> dict[str, Any]:
        """Every meter tracker's state (last sample, energy not yet final, open
        estimates, counter resets and gaps), committed with the interval so that a
        restarted market continues each meter's counters where they were."""
        with self.ingest.lock:
            return {
                "meters": {meter_id: tr.state() for meter_id, tr in self.trackers.items()},
                "estimates": self.corrections.state(),
            }

    def _restore_meters(self, state: dict[str, Any]) -> None:
        for meter_id, st in state.items():
            tr = self.trackers.get(meter_id)
            if tr is not None:  # else the scenario no longer maps that meter
                tr.restore(st)

    def _restore_reliability(self, state_dir: Path) -> None:
        """The reliability window from the last ``window`` interval records' slots (a
        ledger written before the scores has none: its window starts afresh)."""
        window = self.step.reliability
        for saved in recent_values(state_dir, "reliability", window.window):
            window.push(slot_from_json(saved, self.n))

    def _republish(self, record: dict[str, Any]) -> None:
        """After a restart: the last committed interval again (agents ignore repeats)."""
        self.stats.republished += 1
        self.log(f"resuming after committed interval {record['t']}")
        self._publish(record)
        for tail in self.ledger.tail:
            self._publish_corrections(tail)
        self.audit.republish(self.bus, self.topics)

    # --- clearing and publishing -------------------------------------------------------
    def _clear(self, t: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state ledger record of interval ``t``, whose gate has closed, and its
        audit entry (:meth:`live.audit.LiveAudit.interval`'s arguments)."""
        ingest = self.ingest
        ingest.settle_refusals()  # what came for t after its gate closed counts in t
        with ingest.lock:
            book = ingest.book
            corrections = self.corrections.due(self.trackers)  # before t's gate expires any
            plan, where, counts = self.planner.plan(book, t)
            rejected = ingest.rejected_rows(book)
            conduct = Conduct.of(self.n, book.estimated, rejected)
            taken = ingest.provenance.take()
            counts["meter_corrections"] = len(corrections)
            if self.listeners:  # the in-process dashboard also sees the readings
                self._told_readings = {
                    self.ids[row]: reading_payload(t, r) for row, r in book.readings.items()
                }
        if not (counts["readings"] or counts["order_messages"] or counts["meter_readings"]):
            self.stats.unattended += 1
        self.stats.readings += counts["readings"]
        self.stats.order_messages += counts["order_messages"]
        self.stats.orders += counts["orders"]
        rng_before = rng_to_json(dict(self.step.rng.bit_generator.state))
        if self.grid is not None:
            bg_p, bg_q = self.grid.background(self.stamps[t : t + 1])
            res = self.step.run(plan, market_flows, bg_p[0], bg_q[0], t=t, conduct=conduct)
        else:
            res = self.step.run(plan, market_flows, t=t, conduct=conduct)
        grid_rows = self.grid.rows(res.outcome) if self.grid is not None and res.outcome else None
        start = self.stamps[t].isoformat()
        result = result_payload(t, start, res, grid_rows, counts, book_curve(plan))
        settlements = settlement_payloads(t, self.ids, res, where, book.estimated)
        with ingest.lock:
            for m in self.scenario.live.meters:
                if t in self.trackers[m.id].pending:
                    self.corrections.hold(m.id, settlements[m.household])
        record = {
            "t": t,
            "result": result,
            "book": full_book(t, start, self.ids, plan, res),
            "settlements": settlements,
            "rng": rng_to_json(dict(self.step.rng.bit_generator.state)),
            "reliability": slot_to_json(self.step.reliability.last_slot),
            **({"corrections": corrections} if self.trackers else {}),
        }
        entry = {
            "t": t,
            "plan": plan,
            "where": where,
            "readings": sorted({*book.readings, *self.meter_rows}),
            "settlements": settlements,
            "clearing": result,
            "rng_before": rng_before,
            "messages": taken.messages(self.ids, rejected),
            "estimated": [self.ids[row] for row in sorted(book.estimated)],
        }
        return record, entry

    def _publish(self, record: dict[str, Any]) -> None:
        self.results.append(record["result"])
        self.books.append(record["book"])
        self.bus.publish(self.topics.result, record["result"])
        self.bus.publish(self.topics.book, record["book"])
        for agent, payload in record["settlements"].items():
            self.bus.publish(self.topics.settlement(agent), payload)
        self._publish_corrections(record)
        readings, self._told_readings = self._told_readings, {}
        for listener in self.listeners:
            try:
                listener.interval(record["result"], record["settlements"], readings, record["book"])
            except Exception as exc:  # a listener never stops the market
                self.log(f"listener failed on interval {record['t']}: {exc!r}")

    def _publish_corrections(self, record: dict[str, Any]) -> None:
        for item in record.get("corrections", []):
            self.bus.publish(self.topics.settlement(item["agent"]), item["settlement"])
            self.stats.corrections += 1

    def _close_out(self) -> None:
        """After the last gate: wait (an interval at most) for the late meters to reach the
        last interval (:meth:`live.gate.Gate.close_out`), then commit and publish the
        corrections they allow."""
        if not self.corrections.pending():
            return
        self.gate.close_out(self.end)
        with self.ingest.lock:
            corrections = self.corrections.due(self.trackers)
            taken = self.ingest.provenance.take()
        if corrections:
            seq = self.audit.corrections(corrections, self.row, taken.messages(self.ids))
            record = {"corrections": corrections, **self._meter_state(), "audit_seq": seq}
            self.ledger.append_corrections(record)
            self._publish_corrections(record)
