"""What a process speaking for many households over one MQTT connection holds: the
connection (a :class:`live.bus.Bus` of its own, or one lent by its owner), the filter
that lets only its run's clock through (:mod:`live.runfilter`), one queue of events and
the worker thread that takes them in order; started and stopped (the connection drained)
the same way. :class:`live.fleet.AgentFleet` (the simulated households of the central
market) and :class:`live.p2p_peers.PeerFleet` (the peers of the decentralised one) are
built on it; each subscribes its own topics and writes its own :meth:`FleetBase._work`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Self

from live.bus import BrokerConfig, Bus
from live.clock import read_clock
from live.runfilter import RunFilter

Event = tuple[str, str, bytes]
"""(kind, topic, payload): ``clock``, ``stop``, ``tick`` (nothing came) or the kinds a
fleet adds."""


class FleetBase:
    """The connection, the run filter, the event queue and the worker thread."""

    def __init__(
        self,
        broker: BrokerConfig,
        root: str,
        clock_topic: str,
        name: str,
        run: str | None = None,
        bus: Bus | None = None,
    ) -> None:
        """``name``: the connection's client name and the thread's. ``bus``: speak
        through that (started and stopped by its owner) instead of a connection of the
        fleet's own. Subscribes ``clock_topic`` (retained clocks too): every clock of the
        run (given, or adopted) goes on the queue as a ``clock`` event."""
        self.done = threading.Event()
        """Set once the run is over (its last clock) or the fleet is stopped."""
        self._events: queue.Queue[Event] = queue.Queue()
        self._own_bus = bus is None
        self.bus = bus if bus is not None else Bus(broker, name, root)
        self.runs = RunFilter(run)
        """Only the clock of this run (given, or adopted: :mod:`live.runfilter`)."""
        self.bus.subscribe(clock_topic, self._on_clock, retained=True)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def _on_clock(self, topic: str, payload: bytes, retained: bool) -> None:
        clock = read_clock(payload)
        if clock is not None and self.runs.accept(clock, retained):
            self._events.put(("clock", topic, payload))

    def _enqueue(self, kind: str) -> Callable[[str, bytes], None]:
        """A bus handler that puts each message on the queue as a ``kind`` event."""
        return lambda topic, payload: self._events.put((kind, topic, payload))

    def _next(self, timeout: float) -> Event:
        """The next event, or a ``tick`` after ``timeout`` seconds without one."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return "tick", "", b""

    def _work(self) -> None:
        raise NotImplementedError  # each fleet's worker

    def start(self, timeout: float = 30.0) -> Self:
        """Start the worker, then the connection (if the fleet's own)."""
        self._thread.start()
        if self._own_bus:
            self.bus.start(timeout)
        return self

    def stop(self) -> None:
        """Stop the worker (it ends at the ``stop`` event), then drain and close the
        connection (if the fleet's own)."""
        self.done.set()
        self._events.put(("stop", "", b""))
        self._thread.join(10)
        if self._own_bus:
            self.bus.drain(10)
            self.bus.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the run is over; False after ``timeout`` seconds if it is not."""
        return self.done.wait(timeout)
