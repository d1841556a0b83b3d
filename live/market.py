"""The live market service: the clock, gate closure, clearing with the grid check,
the ledger, results and settlements, over MQTT.

Per interval ``t``:

1. publish the retained ``clock`` ``{t, interval_start, interval_minutes, gate_closes_at}``;
2. collect readings, orders and meter samples for ``t`` (checked by :mod:`live.protocol`;
   every rejected message is counted and reported on ``errors``); an agent's later
   message replaces its earlier one, so re-sent orders are never counted twice;
3. close the gate at ``gate_closes_at`` (wall clock, UTC), or, with
   ``[live] close_when_complete`` (the default only at ``--speed 0``), as soon as every
   household is complete; never while cut off from the broker, and not before
   ``live.reconnect_grace_s`` after a reconnect. At ``--speed X > 0`` the clock of
   interval ``t`` comes ``t × interval / X`` after the first, never earlier;
4. build the book in a canonical order (kind, household, order in message) — arrival
   order never matters — and run it through the batch engine's own step
   (:class:`scenarios.engine.interval.MarketStep`: clear, grid check and re-clear, settle);
   every household is billed on its metered net (its reading; zero without one), its
   orders being commitments: the difference is imbalance (:mod:`market.settlement`);
5. append the interval to the ledger (fsync), then publish the anonymous
   ``market/result``, the operator's ``market/book`` (:mod:`live.book`) and every
   household's ``agents/<id>/settlement``, and the corrections of earlier settlements
   whose late meter energy has come (:mod:`live.corrections`).

Meter-backed households' readings come from their meters (:mod:`agents.meters.formats`,
:mod:`agents.meters.tracker`: samples outside the window around the market's clock are
rejected); the market places their orders (price takers unless the scenario names a
strategy). After the last interval it waits up to an interval for late meters' energy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

# the readings' storage (plan.battery_self_kwh / ev_self_kwh) plus the flexible fills,
# less postponed EV charging: the households' metered flows as the market knows them
from agents.households.community import KIND_NET, TINY_KWH, Plan
from agents.households.community import device_flows as market_flows
from agents.meters.formats import MeterPayloadError, is_companion, online_state, read_meter
from agents.meters.tracker import MeterTracker, check_window
from live.book import book_curve, full_book
from live.bus import DEFAULT_WINDOW, BrokerConfig, Bus
from live.corrections import MeterCorrections
from live.heap import freeze_interval, settle_heap
from live.ledger import Ledger, LedgerError, fingerprint, rng_from_json, rng_to_json
from live.payloads import result_payload, settlement_payloads
from live.protocol import (
    Order,
    Reading,
    Rejected,
    Topics,
    community_slug,
    parse_json,
    read_orders,
    read_reading,
)
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.inputs import CommunityInputs, price_band, timeline
from scenarios.engine.interval import MarketStep

Log = Callable[[str], None]
RESULTS_KEPT = 200


def topics_for(scenario: Scenario) -> Topics:
    return Topics(scenario.live.community or community_slug(scenario.name))


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


@dataclass
class IntervalBook:
    """What has been accepted for the interval being collected."""

    t: int
    readings: dict[int, Reading] = field(default_factory=dict)
    orders: dict[int, list[Order]] = field(default_factory=dict)
    messages: Counter = field(default_factory=Counter)
    order_messages: int = 0
    closed: bool = False
    flooded: Counter = field(default_factory=Counter)
    """Messages dropped per sender beyond its limit."""
    reports: int = 0
    unreported: Counter = field(default_factory=Counter)
    """Rejections per category beyond the interval's report budget."""
    flooded_reported: Counter = field(default_factory=Counter)
    unreported_reported: Counter = field(default_factory=Counter)
    dropped_reported: bool = False
    """What :meth:`MarketService._report_dropped` has reported (at gate closure)."""
    estimated: set[int] = field(default_factory=set)
    """Meter-backed households settled with an estimate (their meter was late)."""


@dataclass(frozen=True, slots=True)
class IngestWindow:
    """One interval's collection: when the gate opened and closed (wall clock, epoch
    seconds) and how many messages were accepted in between."""

    t: int
    opened_at: float
    closed_at: float
    messages: int


@dataclass
class MarketStats:
    intervals: int = 0
    readings: int = 0
    order_messages: int = 0
    orders: int = 0
    meter_samples: int = 0
    meter_companions: int = 0
    """Messages a real meter sends besides its energy (Tasmota STATE, LWT, …), ignored."""
    corrections: int = 0
    """Settlements re-issued with the late meters' true energy."""
    rejected: Counter = field(default_factory=Counter)
    behind: int = 0
    max_lag_s: float = 0.0
    clear_s: list[float] = field(default_factory=list)
    republished: int = 0
    unattended: int = 0
    """Intervals in which no household or meter sent anything the market accepted."""
    ingest: list[IngestWindow] = field(default_factory=list)


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
        if scenario.grid.controllable_share > 0 and scenario.grid.dimming:
            raise ValueError(
                "grid.controllable_share: §14a dimming is not in the live market yet (a "
                "settlement cannot tell an agent its dimmed charging); set grid.dimming = false"
            )
        self.scenario = scenario
        self.log = log or (lambda _msg: None)
        self.topics = topics_for(scenario)
        self.speed = speed
        self.close_early = (
            live.close_when_complete if live.close_when_complete is not None else speed == 0
        )
        """Whether a gate closes as soon as every household and meter is in."""
        self.end = min(intervals if intervals is not None else sim.n_intervals, sim.n_intervals)
        self.interval_s = sim.interval_minutes * 60.0
        self.max_kwh = live.max_power_kw * sim.interval_hours
        self.stamps = timeline(scenario)
        n = scenario.community.households
        self.n = n
        self.ids = household_ids(n)
        self.row = {a: i for i, a in enumerate(self.ids)}
        self.meters = {m.id: m for m in live.meters}
        self.meter_row = np.array([self.row[m.household] for m in live.meters], dtype=np.int64)
        self.metered = np.zeros(n, dtype=bool)
        self.metered[self.meter_row] = True
        self._sim_rows = n - len(self.meter_row)
        self.band = price_band(scenario)
        self._inputs = (
            CommunityInputs(scenario)
            if any(m.strategy != "price_taker" for m in live.meters)
            else None
        )
        self.tz = ZoneInfo(sim.timezone)
        self._start_s = self.stamps[0].timestamp()
        self.trackers = {m.id: MeterTracker(self._start_s, self.interval_s) for m in live.meters}
        self.grid = (
            GridStage(scenario, n, state_dir / "grid") if scenario.grid.check != "off" else None
        )
        self.step = MarketStep(scenario, n, self.grid)
        self._offline: set[str] = set()
        """Meters whose last will says they are offline: a gate does not wait for them."""
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
        latest = self.ledger.latest
        if latest is not None and "meters" in latest:
            self._restore_meters(latest["meters"])
            self.corrections.restore(latest.get("estimates", []))
        self.stats = MarketStats()
        self._lock = threading.Lock()
        self._book = IntervalBook(self.ledger.next_t)
        self._book.closed = True
        self._changed = threading.Event()
        self._wall_start, self._wall_len = time.time(), 1.0
        self._arrival_s = -math.inf  # the last arrival stamp: the arrival clock never goes back
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
        root = self.topics.root
        self.bus.subscribe(f"{root}/agents/+/reading", self._on_agent)
        self.bus.subscribe(f"{root}/agents/+/orders", self._on_agent)
        self.bus.subscribe(f"{root}/meters/#", self._on_meter)
        self.results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        """The last :data:`RESULTS_KEPT` intervals' ``market/result`` (the ledger holds
        every one)."""
        self.books: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        """The same intervals' ``market/book`` (:func:`live.book.full_book`)."""
        self.listeners: list[MarketListener] = []
        """Told every clock and every interval the market publishes, after the ledger
        commit (the in-process dashboard)."""
        self._told_readings: dict[str, dict[str, Any]] = {}

    # --- ingestion (paho's network thread) -------------------------------------------
    def _reject(self, topic: str, reason: str, category: str) -> None:
        self.stats.rejected[category] += 1
        with self._lock:
            book = self._book
            if book.reports >= self.scenario.live.max_error_reports_per_interval:
                book.unreported[category] += 1
                return
            book.reports += 1
        self._report(topic, reason)

    def _report(self, topic: str, reason: str, **extra: Any) -> None:
        self.bus.publish(
            self.topics.errors,
            {"v": 1, "topic": topic[:300], "reason": reason[:500], **extra},
            qos=0,
        )

    def _flooding(
        self, topic: str, sender: str, limit: int, complete: Callable[[IntervalBook], bool]
    ) -> bool:
        """Count a message of ``sender``; True (and counted, the first one reported) when
        it is beyond ``limit`` this interval and ``complete(book)`` (the sender's reading
        and orders, or its meter's samples, are in). Checked before anything is parsed.

        Until a sender is complete its messages are always parsed: anyone may publish on
        a topic when the broker has no ACL, and junk on another household's topic must
        not use up that household's budget and silence it."""
        with self._lock:
            book = self._book
            book.messages[sender] += 1
            if book.messages[sender] <= limit or not complete(book):
                return False
            book.flooded[sender] += 1
            first, t = book.flooded[sender] == 1, book.t
        if first:
            self._reject(
                topic,
                f"flood: more than {limit} messages from {sender} in interval {t}; the rest "
                "are dropped, counted, and reported once when the gate closes",
                "flood",
            )
        else:
            self.stats.rejected["flood"] += 1
        return True

    def _report_dropped(self, book: IntervalBook) -> None:
        """At gate closure: one report per flooding sender and one for the rejections
        beyond the report budget, with their counts; called again when the next clock
        opens, for what was dropped while the gate was closed (reported as such)."""
        with self._lock:
            flooded, book.flooded_reported = book.flooded - book.flooded_reported, +book.flooded
            unreported = book.unreported - book.unreported_reported
            book.unreported_reported = +book.unreported
            late, book.dropped_reported = book.dropped_reported, True
        when = f"after the gate closed, interval {book.t}" if late else f"in interval {book.t}"
        root = self.topics.root
        for sender, k in sorted(flooded.items()):
            where = "meters/+" if sender in self.meters else "agents"
            self._report(
                f"{root}/{where}/{sender}/#",
                f"flood: {k} messages from {sender} dropped {when}",
                count=k,
            )
        if unreported:
            k = sum(unreported.values())
            self._report(
                f"{root}/#",
                f"{k} more messages rejected {when} than reported one by one",
                count=k,
                by_category=dict(sorted(unreported.items())),
            )

    def _on_agent(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        agent, kind = parts[-2], parts[-1]
        live = self.scenario.live
        try:
            row = self.row.get(agent)
            if row is None:
                raise Rejected(f"unknown agent {agent!r}")
            if self.metered[row]:
                raise Rejected(
                    f"{agent} is backed by a meter; its readings and orders come from the meter"
                )
            if self._flooding(
                topic,
                agent,
                live.max_messages_per_interval,
                lambda b: row in b.readings and row in b.orders,
            ):
                return
            data = parse_json(payload, live.max_payload_bytes)
            with self._lock:
                book = self._book
                if book.closed:
                    raise Rejected(f"the gate of t={book.t} is closed")
                if kind == "reading":
                    book.readings[row] = read_reading(data, agent, book.t, self.max_kwh)
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
                # wake the gate only when the book may be complete (not per message)
                full = len(book.readings) >= self._sim_rows and len(book.orders) >= self._sim_rows
        except Rejected as exc:
            reason = str(exc)
            self._reject(topic, reason, reason.split(" ")[0].split(":")[0])
            return
        except Exception as exc:
            self._reject(topic, f"internal error handling the message: {exc!r}", "internal")
            return
        if full:
            self._changed.set()

    def _on_meter(self, topic: str, payload: bytes) -> None:
        rest = topic[len(self.topics.root) + len("/meters/") :]
        fmt, _, tail = rest.partition("/")
        meter_id, _, suffix = tail.partition("/")
        try:
            meter = self.meters.get(meter_id)
            if meter is None:
                raise Rejected(f"unknown meter {meter_id!r}")
            if meter.format != fmt:
                raise Rejected(f"meter {meter_id!r} is a {meter.format} meter, not {fmt}")
            if is_companion(fmt, suffix):  # a real device's STATE, LWT, …: not energy
                self.stats.meter_companions += 1
                online = online_state(fmt, suffix, payload)
                if online is not None:
                    with self._lock:
                        if online:
                            self._offline.discard(meter_id)
                        else:
                            self._offline.add(meter_id)
                    self._changed.set()
                return
            tracker = self.trackers[meter_id]
            if self._flooding(
                topic,
                meter_id,
                4 * self.scenario.live.max_messages_per_interval,
                lambda b: tracker.covers(b.t),
            ):
                return
            if len(payload) > self.scenario.live.max_payload_bytes:
                raise Rejected(f"payload of {len(payload)} bytes is above the limit")
            sample = read_meter(fmt, suffix, payload, self.tz)
            with self._lock:
                if sample.time_s is None:  # stamp it with the simulated time of arrival
                    sample = replace(sample, time_s=self._sim_now())
                open_start = self._start_s + self._book.t * self.interval_s
                check_window(sample.time_s, open_start, self.interval_s)
                tracker.add(sample)
                self._offline.discard(meter_id)
                self.stats.meter_samples += 1
        except (Rejected, MeterPayloadError) as exc:
            self._reject(topic, f"meter: {exc}", "meter")
            return
        except Exception as exc:
            self._reject(topic, f"internal error handling the message: {exc!r}", "internal")
            return
        self._changed.set()

    def _sim_now(self) -> float:
        """The simulated time of arrival (called under the lock), for samples without one.

        Paced, simulated time runs on with the wall clock between gates; a gate that closes
        late (a loaded machine) leaves stamps past its interval's end, and the next interval's
        clock starts at its own start: the stamps never go back (the previous one is the
        floor), so a meter's samples stamped on arrival keep their order.
        """
        start = self._start_s + self._book.t * self.interval_s  # also past the last interval
        frac = (time.time() - self._wall_start) / self._wall_len
        if self.speed <= 0:  # unpaced: the open interval's end at most
            frac = min(max(frac, 0.0), 1.0)
        self._arrival_s = max(self._arrival_s, start + frac * self.interval_s)
        return self._arrival_s

    # --- the interval loop ------------------------------------------------------------
    def _complete(self, t: int) -> bool:
        book = self._book
        if len(book.readings) < self._sim_rows or len(book.orders) < self._sim_rows:
            return False
        return all(tr.covers(t) or m in self._offline for m, tr in self.trackers.items())

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()

    def run(self) -> MarketStats:
        """Run until ``intervals`` are settled (or :meth:`stop`)."""
        if self.grid is not None:
            self.grid.prepare()
        settle_heap()  # opt-in (live/heap.py)
        try:
            self.bus.start(timeout=30.0)
        except ConnectionError:
            self._close()
            raise
        try:
            if self.ledger.last is not None:
                self._republish(self.ledger.last)
            t = self.ledger.next_t
            wall_len = self.interval_s / self.speed if self.speed > 0 else 0.0
            next_start = time.time()
            while t < self.end and not self._stop.is_set():
                self._collect(t, next_start, wall_len)
                if self._stop.is_set():
                    break
                began = time.perf_counter()
                record = self._clear(t)
                if self.trackers:
                    record |= self._meter_state()
                self.ledger.append(record)
                self._publish(record)
                freeze_interval()  # opt-in (live/heap.py)
                self.stats.clear_s.append(time.perf_counter() - began)
                self.stats.intervals += 1
                next_start += wall_len
                lag = time.time() - next_start
                if lag > 0 and wall_len > 0:
                    self.stats.behind += 1
                    self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
                    next_start = time.time()
                elif wall_len == 0:
                    next_start = time.time()
                t += 1
            self._report_dropped(self._book)
            if t >= self.end:
                self._close_out(wall_len)
                self.bus.publish(
                    self.topics.clock,
                    {"v": 1, "run": self.run_id, "t": t, "done": True},
                    retain=True,
                )
            self.bus.drain(30.0)
        finally:
            self.bus.stop("done" if t >= self.end else "offline")
            self._close()
        return self.stats

    def _close(self) -> None:
        self.ledger.close()
        if self.grid is not None:
            self.grid.close()

    def _collect(self, t: int, wall_start: float, wall_len: float) -> None:
        live = self.scenario.live
        now = time.time()
        if wall_start > now:  # paced: the clock of t comes when the simulated clock is at t
            if self._stop.wait(wall_start - now):
                return
            now = time.time()
        if wall_start < now:
            wall_start = now
        if wall_len > 0:
            gate = wall_start + live.gate_fraction * wall_len
        else:  # as soon as complete, but a household or meter that never comes cannot stall
            gate = wall_start + live.complete_timeout_s
        self._report_dropped(self._book)  # what was dropped while the gate was closed
        with self._lock:
            self._book = IntervalBook(t)
            self._wall_start, self._wall_len = wall_start, max(wall_len, 1e-9)
        clock = {
            "v": 1,
            "run": self.run_id,
            "t": t,
            "interval_start": self.stamps[t].isoformat(),
            "interval_minutes": self.scenario.simulation.interval_minutes,
            "gate_closes_at": datetime.fromtimestamp(gate, UTC).isoformat(),
        }
        opened = time.time()
        self._publish_clock(clock)
        seen_connects = self.bus.connects
        while not self._stop.is_set():
            self._changed.clear()
            now = time.time()
            with self._lock:
                complete = self.close_early and self._complete(t)
            online = self.bus.connected.is_set()
            if self.bus.connects != seen_connects:  # reconnected: ask again, then wait
                seen_connects = self.bus.connects
                self._publish_clock({**clock, "gate_closes_at": None})
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
            self._changed.wait(max(min(gate - now, 0.05), 0.001))
        with self._lock:
            book = self._book
            book.closed = True
            accepted = sum(book.messages.values()) - sum(book.flooded.values())
        self.stats.ingest.append(IngestWindow(t, opened, time.time(), accepted))
        self._report_dropped(book)

    def _meter_state(self) -> dict[str, Any]:
        """Every meter tracker's state (last sample, energy not yet final, open
        estimates, counter resets and gaps), committed with the interval so that a
        restarted market continues each meter's counters where they were."""
        with self._lock:
            return {
                "meters": {meter_id: tr.state() for meter_id, tr in self.trackers.items()},
                "estimates": self.corrections.state(),
            }

    def _restore_meters(self, state: dict[str, Any]) -> None:
        for meter_id, st in state.items():
            tr = self.trackers.get(meter_id)
            if tr is not None:  # else the scenario no longer maps that meter
                tr.restore(st)

    def collecting(self, t: int) -> bool:
        """Whether the gate of interval ``t`` is open (its clock has been published)."""
        with self._lock:
            return self._book.t == t and not self._book.closed

    def _plan(self, t: int) -> tuple[Plan, list[tuple[int, int]], dict[str, int]]:
        """The book in canonical order, and each order's (household, index in message)."""
        book, n = self._book, self.n
        gen, demand, deferrable = np.zeros(n), np.zeros(n), np.zeros(n)
        battery, ev = np.zeros(n), np.zeros(n)
        for row, r in book.readings.items():
            gen[row], demand[row], deferrable[row], battery[row], ev[row] = (
                r.generation_kwh,
                r.demand_kwh,
                r.ev_deferrable_kwh,
                r.battery_kwh,
                r.ev_kwh,
            )
        incomplete = 0
        bids = asks = None
        if self._inputs is not None:
            win = self._inputs.at(t)
            bids, asks = win.bids[t - win.t0], win.asks[t - win.t0]
        meter_orders: dict[int, Order] = {}
        for m in self.scenario.live.meters:
            row = self.row[m.household]
            imp, exp, estimated = self.trackers[m.id].settle(t)
            if estimated:
                incomplete += 1
                book.estimated.add(row)
            gen[row], demand[row] = exp, imp
            net = exp - imp
            if m.strategy == "price_taker" or bids is None or asks is None:
                bid, ask = self.band.high, self.band.low
            else:
                bid, ask = float(bids[row]), float(asks[row])
            if abs(net) > TINY_KWH:
                meter_orders[row] = Order(net < 0, abs(net), bid if net < 0 else ask, KIND_NET)
        entries = []  # (kind, row, index, order)
        for row, orders in book.orders.items():
            for i, o in enumerate(orders):
                entries.append((o.kind, row, i, o))
        for row, o in meter_orders.items():
            entries.append((o.kind, row, 0, o))
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        m = len(entries)
        household = np.fromiter((e[1] for e in entries), np.int64, m)
        is_buy = np.fromiter((e[3].is_buy for e in entries), bool, m)
        energy = np.fromiter((e[3].energy_kwh for e in entries), float, m)
        price = np.fromiter((e[3].price_per_kwh for e in entries), float, m)
        kind = np.fromiter((e[0] for e in entries), np.int8, m)
        signed_net = np.where(is_buy, -energy, energy) * (kind == KIND_NET)
        net_kwh = np.bincount(household, signed_net, n)
        plan = Plan(
            generation_kwh=gen,
            demand_kwh=demand,
            self_kwh={"battery": battery, "ev": ev},
            drawn_kwh={},
            ev_deferrable_kwh=deferrable,
            net_kwh=net_kwh,
            household=household,
            is_buy=is_buy,
            energy_kwh=energy,
            price_per_kwh=price,
            kind=kind,
        )
        counts = {
            "readings": len(book.readings),
            "order_messages": book.order_messages,
            "orders": sum(len(v) for v in book.orders.values()),
            "meter_readings": len(self.trackers) - incomplete,
            "meters_incomplete": incomplete,
            "missing_agents": int(
                n - len(self.meter_row) - len(set(book.readings) | set(book.orders))
            ),
        }
        return plan, [(e[1], e[2]) for e in entries], counts

    def _clear(self, t: int) -> dict[str, Any]:
        with self._lock:
            corrections = self.corrections.due(self.trackers)  # before t's gate expires any
            plan, where, counts = self._plan(t)
            counts["meter_corrections"] = len(corrections)
            if self.listeners:  # the in-process dashboard also sees the readings
                self._told_readings = {
                    self.ids[row]: {
                        "v": 1,
                        "t": t,
                        "generation_kwh": r.generation_kwh,
                        "demand_kwh": r.demand_kwh,
                        **({} if r.soc_kwh is None else {"soc_kwh": r.soc_kwh}),
                        **({} if r.ev_soc_kwh is None else {"ev_soc_kwh": r.ev_soc_kwh}),
                    }
                    for row, r in self._book.readings.items()
                }
        if not (counts["readings"] or counts["order_messages"] or counts["meter_readings"]):
            self.stats.unattended += 1
        self.stats.readings += counts["readings"]
        self.stats.order_messages += counts["order_messages"]
        self.stats.orders += counts["orders"]
        if self.grid is not None:
            bg_p, bg_q = self.grid.background(self.stamps[t : t + 1])
            res = self.step.run(plan, market_flows, bg_p[0], bg_q[0], t=t)
        else:
            res = self.step.run(plan, market_flows, t=t)
        grid_rows = self.grid.rows(res.outcome) if self.grid is not None and res.outcome else None
        start = self.stamps[t].isoformat()
        result = result_payload(t, start, res, grid_rows, counts, book_curve(plan))
        settlements = settlement_payloads(t, self.ids, res, where, self._book.estimated)
        with self._lock:
            for m in self.scenario.live.meters:
                if t in self.trackers[m.id].pending:
                    self.corrections.hold(m.id, settlements[m.household])
        return {
            "t": t,
            "result": result,
            "book": full_book(t, start, self.ids, plan, res),
            "settlements": settlements,
            "rng": rng_to_json(self.step.rng.bit_generator.state),
            **({"corrections": corrections} if self.trackers else {}),
        }

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

    def _publish_clock(self, payload: dict[str, Any]) -> None:
        self.bus.publish(self.topics.clock, payload, retain=True)
        for listener in self.listeners:
            try:
                listener.clock(payload)
            except Exception as exc:
                self.log(f"listener failed on the clock: {exc!r}")

    def _republish(self, record: dict[str, Any]) -> None:
        """After a restart: the last committed interval again (agents ignore repeats)."""
        self.stats.republished += 1
        self.log(f"resuming after committed interval {record['t']}")
        self._publish(record)
        for tail in self.ledger.tail:
            self._publish_corrections(tail)

    def _publish_corrections(self, record: dict[str, Any]) -> None:
        for item in record.get("corrections", []):
            self.bus.publish(self.topics.settlement(item["agent"]), item["settlement"])
            self.stats.corrections += 1

    def _close_out(self, wall_len: float) -> None:
        """After the last gate: wait (an interval at most) for the late meters to reach the
        last interval, then commit and publish the corrections they allow."""
        if not self.corrections.pending():
            return
        live, last = self.scenario.live, self.end - 1
        wait = wall_len if wall_len > 0 else live.complete_timeout_s
        with self._lock:
            self._book = IntervalBook(self.end, closed=True)
            self._wall_start, self._wall_len = time.time(), max(wall_len, 1e-9)
        deadline = time.time() + wait
        while not self._stop.is_set() and time.time() < deadline:
            self._changed.clear()
            with self._lock:
                if all(tr.covers(last) for tr in self.trackers.values() if tr.pending):
                    break
            self._changed.wait(0.05)
        with self._lock:
            corrections = self.corrections.due(self.trackers)
        if corrections:
            record = {"corrections": corrections, **self._meter_state()}
            self.ledger.append_corrections(record)
            self._publish_corrections(record)
