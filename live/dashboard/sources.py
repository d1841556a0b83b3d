"""Where the dashboard's data comes from: one interface, several sources.

A :class:`Source` answers the REST API (intervals, KPIs, households, trades, order
book, feeder state) and keeps an :class:`EventLog` of what it pushes to browsers each
interval. Sources:

- :class:`RunSource` — a finished run directory, browsed whole, or replayed interval by
  interval as if live (``replay_speed`` intervals per second);
- :class:`live.dashboard.mqtt_source.MqttSource` — a live market over MQTT.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import pandas as pd

from live.dashboard.feeder_map import MapBuilder, opening_interval
from live.dashboard.records import records
from live.dashboard.rundata import RunData

MAX_T = 10_000_000
"""The largest interval index a source serves (the API's bound, a payload's ``t``)."""


@dataclass(frozen=True)
class Event:
    """One pushed event: ``kind`` is ``interval`` (interval ``t`` is new or revised) or
    ``status`` (the source's state changed)."""

    seq: int
    kind: str
    t: int
    at: float  # wall time [s since the epoch] the source produced it


class EventLog:
    """Append-only, thread-safe log of events; async readers wait for new ones.

    Sources append from any thread (a replay thread, paho's network thread); the
    Server-Sent-Events handlers wait on the server's event loop and are woken with
    ``call_soon_threadsafe``. Sequence numbers start at 1, so a client that has seen
    nothing asks for events after 0.
    """

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False

    def _wake(self, waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that loop is closed: its reader is gone
                pass

    def close(self) -> None:
        """End every reader's wait (the server is shutting down)."""
        with self._lock:
            self.closed = True
            waiters = list(self._waiters)
        self._wake(waiters)

    def append(self, kind: str, t: int) -> Event:
        with self._lock:
            event = Event(len(self._events) + 1, kind, t, time.time())
            self._events.append(event)
            waiters = list(self._waiters)
        self._wake(waiters)
        return event

    @property
    def last_seq(self) -> int:
        return len(self._events)

    def after(self, seq: int) -> list[Event]:
        """Events with a sequence number above ``seq``, oldest first."""
        with self._lock:
            return self._events[max(seq, 0) :]

    async def wait(self, seq: int, timeout: float) -> bool:
        """Wait until an event after ``seq`` exists (True) or ``timeout`` passes (False)."""
        flag = asyncio.Event()
        key = (asyncio.get_running_loop(), flag)
        with self._lock:
            if len(self._events) > seq or self.closed:
                return len(self._events) > seq
            self._waiters.add(key)
        try:
            await asyncio.wait_for(flag.wait(), timeout)
            return True
        except TimeoutError:
            return len(self._events) > seq
        finally:
            with self._lock:
                self._waiters.discard(key)


class Source(ABC):
    """The dashboard's view of a market: finished run or live."""

    kind: str = "source"

    def __init__(self) -> None:
        self.log = EventLog()
        self.map: MapBuilder | None = None
        """The feeder map (:mod:`live.dashboard.feeder_map`), None without a feeder."""

    def start(self) -> None:  # noqa: B027 — optional hook, nothing to start by default
        """Begin producing events (replay thread, MQTT connection)."""

    def stop(self) -> None:  # noqa: B027 — optional hook, nothing to stop by default
        """Stop producing events and release connections."""

    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """Name, currency, tariffs, voltage limits, interval length, household count."""

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """``state`` (browsing, replaying, finished, connected, disconnected,
        connecting), a ``message`` for the user, and ``latest_t``."""

    @abstractmethod
    def latest_t(self) -> int:
        """The newest interval visible so far; -1 before the first."""

    @abstractmethod
    def has_interval(self, t: int) -> bool:
        """Whether interval ``t`` is visible."""

    @abstractmethod
    def interval_rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Visible interval rows with ``start <= t <= stop``."""

    @abstractmethod
    def kpis(self, t: int) -> dict[str, Any]:
        """KPIs over the intervals up to ``t``."""

    @abstractmethod
    def households(self, t: int) -> pd.DataFrame:
        """Each household's position in interval ``t`` and its bill up to ``t``."""

    @abstractmethod
    def household(self, agent_id: str) -> dict[str, Any] | None:
        """One household: static attributes and its series so far; None if unknown."""

    @abstractmethod
    def trades(self, t_from: int, t_to: int, agent_id: str | None) -> pd.DataFrame:
        """Trades of the visible intervals ``t_from..t_to``, optionally of one household."""

    @abstractmethod
    def book(self, t: int) -> dict[str, Any] | None:
        """Supply and demand curves of interval ``t`` and its clearing point."""

    @abstractmethod
    def feeder(self, t: int) -> dict[str, Any] | None:
        """Voltage at every bus, line loadings, nodal prices at ``t``; None if unknown."""

    def feeder_view(self, t: int) -> dict[str, Any] | None:
        """:meth:`feeder` plus ``map``, the feeder map's restyle arrays of ``t`` (left out
        while the map is not built)."""
        data = self.feeder(t)
        if data is not None and self.map is not None:
            arrays = self.map.arrays(data)
            if arrays is not None:
                data = {**data, "map": arrays}
        return data

    def event_payload(self, event: Event, full: bool) -> dict[str, Any]:
        """What an SSE client receives for ``event``.

        Every interval event carries its interval row; ``full`` (the newest event of a
        batch sent to one client) adds the KPIs, the order book and the feeder state of
        that interval, so a client that catches up after a reconnect draws only the
        newest snapshot.
        """
        payload: dict[str, Any] = {
            "seq": event.seq,
            "kind": event.kind,
            "t": event.t,
            "at": event.at,
        }
        if event.kind == "interval":
            payload["rows"] = self.interval_rows(event.t, event.t)
        if full:
            latest = self.latest_t()
            payload["status"] = self.status()
            if latest >= 0 and (event.kind != "interval" or event.t == latest):
                payload["kpis"] = self.kpis(latest)
                payload["book"] = self.book(latest)
                payload["feeder"] = self.feeder_view(latest)
        return payload


def _household_bus(households: pd.DataFrame) -> dict[str, str]:
    """Household id → bus label of a static household table (empty without buses)."""
    if "bus" not in households or "agent_id" not in households:
        return {}
    known = households[households["bus"].notna()]
    return dict(zip(known["agent_id"].astype(str), known["bus"].astype(str), strict=True))


class RunSource(Source):
    """A finished run: browsed whole, or replayed interval by interval.

    Parameters
    ----------
    run
        The opened run (:func:`live.dashboard.rundata.read_run`).
    replay_speed
        ``None`` to browse (every interval visible at once); otherwise replay at this
        many intervals per wall-clock second [1/s], starting before the first interval.
    """

    kind = "run"

    def __init__(self, run: RunData, replay_speed: float | None = None) -> None:
        super().__init__()
        if replay_speed is not None and not replay_speed > 0:
            raise ValueError("replay_speed must be a positive number of intervals per second")
        self.run = run
        self.replay_speed = replay_speed
        self._cursor = -1 if replay_speed else run.n_intervals - 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        spec = run.grid.get("feeder")
        if run.feeder is not None:
            self.map = MapBuilder(
                str(spec) if spec else None,
                run.n_households,
                _household_bus(run.households),
                (run.grid.get("v_min_pu"), run.grid.get("v_max_pu")),
                run.market.get("currency", "EUR"),
            )
        self.opening_t = opening_interval(
            run.intervals, (run.grid.get("v_min_pu"), run.grid.get("v_max_pu"))
        )

    # ---------------------------------------------------------------- replay
    def start(self) -> None:
        if self.replay_speed is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._replay, name="p2pgrid-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _replay(self) -> None:
        assert self.replay_speed is not None
        step = 1.0 / self.replay_speed
        began = time.perf_counter()
        for t in range(self.run.n_intervals):
            delay = began + (t + 1) * step - time.perf_counter()
            if self._stop.wait(max(delay, 0.0)):
                return
            self._cursor = t
            self.log.append("interval", t)
        self.log.append("status", self._cursor)

    # ---------------------------------------------------------------- the interface
    def meta(self) -> dict[str, Any]:
        run = self.run
        return {
            "kind": "replay" if self.replay_speed else "run",
            "name": run.name,
            "path": str(run.path),
            "currency": run.market.get("currency", "EUR"),
            "retail_price_per_kwh": run.market.get("retail_price_per_kwh"),
            "feed_in_price_per_kwh": run.market.get("feed_in_price_per_kwh"),
            "mechanism": run.market.get("mechanism"),
            "v_min_pu": run.grid.get("v_min_pu"),
            "v_max_pu": run.grid.get("v_max_pu"),
            "interval_minutes": run.interval_minutes,
            "households": run.n_households,
            "intervals": run.n_intervals,
            "replay_speed": self.replay_speed,
            "has_feeder": run.feeder is not None,
            "has_map": self.map is not None,
            # a finished run opens on its most telling interval (browsing only)
            "opening_t": None if self.replay_speed else self.opening_t,
            "book_source": "order book" if run.books is not None else "revealed from fills",
        }

    def status(self) -> dict[str, Any]:
        latest = self._cursor
        if self.replay_speed is None:
            state, message = "browsing", f"browsing {self.run.n_intervals} intervals"
        elif latest >= self.run.n_intervals - 1:
            state, message = "finished", "replay finished"
        else:
            state = "replaying"
            message = f"replaying at {self.replay_speed:g} intervals/s"
        return {
            "state": state,
            "message": message,
            "latest_t": latest,
            "intervals": self.run.n_intervals,
        }

    def latest_t(self) -> int:
        return self._cursor

    def has_interval(self, t: int) -> bool:
        return 0 <= t <= self._cursor

    def interval_rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        lo, hi = max(start, 0), min(stop, self._cursor)
        return self.run.interval_records[lo : hi + 1] if hi >= lo else []

    def kpis(self, t: int) -> dict[str, Any]:
        return self.run.kpis_at(t)

    def households(self, t: int) -> pd.DataFrame:
        return self.run.household_table(t)

    def household(self, agent_id: str) -> dict[str, Any] | None:
        index = pd.Index(self.run.agent_ids).get_indexer([agent_id])[0]
        if index < 0:
            return None
        static = records(self.run.households.iloc[[index]])[0]
        series = self.run.household_series(index).iloc[: self._cursor + 1]
        return {"agent_id": agent_id, "static": static, "series": records(series)}

    def trades(self, t_from: int, t_to: int, agent_id: str | None) -> pd.DataFrame:
        t_to = min(t_to, self._cursor)
        if t_to < t_from:
            return self.run.trades.iloc[0:0]
        frame = self.run.trades_between(t_from, t_to)
        if agent_id is not None:
            frame = frame[(frame["buyer_id"] == agent_id) | (frame["seller_id"] == agent_id)]
        return frame

    def book(self, t: int) -> dict[str, Any] | None:
        return self.run.book(t)

    def feeder(self, t: int) -> dict[str, Any] | None:
        return self.run.feeder_state(t)
