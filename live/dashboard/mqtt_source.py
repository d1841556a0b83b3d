"""The dashboard's live source over MQTT: a market's topics (DESIGN.md "MQTT contract")
through live's one transport.

A read-only :class:`live.bus.Bus` (``announce=False``: it publishes nothing) subscribes
to the community's ``clock``, ``market/result``, ``market/book`` (granted to the operator
account only), ``agents/+/settlement``, ``agents/+/reading`` and ``errors``
(:class:`live.protocol.Topics`), reconnecting with backoff while the broker is down; the
page shows the broker's state and recovers when it comes back. Only the clock of one
run drives it (:mod:`live.runfilter`): never a retained clock an earlier run left on the
broker. What the payloads mean is :class:`live.dashboard.live_source.LiveSource`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from live.bus import BrokerConfig, Bus
from live.dashboard.live_source import LiveSource, interval_of
from live.protocol import Rejected, Topics, parse_json
from live.runfilter import RunFilter

#: The largest payload read [bytes] (a result with a large feeder's buses and lines)
MAX_PAYLOAD_BYTES = 64 << 20


class MqttSource(LiveSource):
    """A live market seen through its MQTT topics.

    Parameters
    ----------
    broker
        ``mqtt://[user:pass@]host:port`` (``mqtts://`` for TLS), read by
        :meth:`live.bus.BrokerConfig.from_url`, or a :class:`live.bus.BrokerConfig`
        (certificates, credentials).
    community
        The community name in the topic root ``p2pgrid/<community>/``.
    market, interval_minutes, households
        As for :class:`live.dashboard.live_source.LiveSource`.
    """

    def __init__(
        self,
        broker: str | BrokerConfig = "mqtt://127.0.0.1:1883",
        community: str = "demo",
        market: dict[str, Any] | None = None,
        interval_minutes: int = 15,
        households: pd.DataFrame | None = None,
    ) -> None:
        self.config = BrokerConfig.from_url(broker) if isinstance(broker, str) else broker
        where = f"{self.config.host}:{self.config.port}"
        super().__init__(community, where, market, interval_minutes, households)
        self.topics = Topics(community)
        self.runs = RunFilter()
        self._state = "connecting"
        self._reason = ""
        self.bus = Bus(self.config, "dashboard", self.topics.root, announce=False)
        self.bus.watch(self._set_state)
        t = self.topics
        self.bus.subscribe(t.clock, self._on_clock, retained=True)
        for topic, handler in (
            (t.result, self.on_result),
            (t.book, self.on_book),
            (t.errors, self.on_error),
        ):
            self.bus.subscribe(topic, self._handler(handler))
        self.bus.subscribe(t.settlement("+"), self._agent_handler(self.on_settlement))
        self.bus.subscribe(t.reading("+"), self._agent_handler(self.on_reading))

    # ------------------------------------------------------------------ connection
    def start(self) -> None:
        self.bus.start(timeout=None)

    def stop(self) -> None:
        super().stop()
        self.bus.stop()

    def _set_state(self, state: str, reason: str = "") -> None:
        with self._lock:
            changed = (state, reason) != (self._state, self._reason)
            self._state, self._reason = state, reason
        if changed:
            self.log.append("status", self.latest_t())

    # ------------------------------------------------------------------ messages
    @staticmethod
    def _decode(payload: bytes) -> dict[str, Any] | None:
        try:
            return parse_json(payload, MAX_PAYLOAD_BYTES)
        except Rejected:
            return None

    def _handler(self, handle: Callable[[dict[str, Any]], None]) -> Callable[[str, bytes], None]:
        def on_message(topic: str, payload: bytes) -> None:
            data = self._decode(payload)
            if data is not None:
                _guarded(handle, data)

        return on_message

    def _agent_handler(
        self, handle: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[str, bytes], None]:
        def on_message(topic: str, payload: bytes) -> None:
            data = self._decode(payload)
            if data is not None:
                _guarded(handle, Topics.agent_of(topic), data)

        return on_message

    def _on_clock(self, topic: str, payload: bytes, retained: bool) -> None:
        clock = self._decode(payload)
        if clock is not None and self.runs.accept(clock, retained):
            _guarded(self.on_clock, clock)

    # ------------------------------------------------------------------ the interface
    def status(self) -> dict[str, Any]:
        with self._lock:
            state, reason, errors = self._state, self._reason, self._errors
            clock = self._clock
        where = self.broker
        if state == "connected":
            latest = self.latest_t()
            message = f"live: {self.community} on {where}" + (
                f", interval {latest}" if latest >= 0 else ", waiting for the market"
            )
        elif state == "connecting":
            message = f"connecting to the MQTT broker at {where}…"
        else:
            message = (
                f"MQTT broker at {where} unreachable ({reason}); retrying — the page "
                "resumes when it is back"
            )
        if errors:
            message += f" · {errors} message(s) rejected by the market"
        return {
            "state": state,
            "message": message,
            "latest_t": self.latest_t(),
            "clock_t": interval_of(clock) if clock else None,
            "errors": errors,
            "last_error": self._last_error,
            "intervals": len(self._rows),
        }


def _guarded(handle: Callable[..., None], *args: Any) -> None:
    """A malformed payload must not stop the dashboard (the market reports its own)."""
    try:
        handle(*args)
    except (TypeError, ValueError, KeyError, OverflowError):
        return


def wait_connected(source: MqttSource, timeout: float = 10.0) -> bool:
    """Block until ``source`` is connected to its broker (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if source.status()["state"] == "connected":
            return True
        time.sleep(0.02)
    return False
