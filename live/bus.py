"""The MQTT transport: paho-mqtt 2.x clients with the habits every live component needs.

- ``CallbackAPIVersion.VERSION2``, MQTT 3.1.1 (Mosquitto and the embedded amqtt broker);
- a unique client id per process (the market's is stable, for its persistent session);
- last will: retained ``{"status": "offline"}`` on ``status/<client_id>``, replaced by a
  retained ``online`` after every connect;
- connect in the background and reconnect with exponential backoff (paho's loop);
- subscriptions are renewed on every connect (the broker may have lost the session);
- QoS 1 publishes go through a bounded window: a publisher blocks while ``window``
  messages are unacknowledged, so paho's 16-bit message ids never wrap onto a
  message still in flight (paho silently loses QoS 1 messages beyond 65,535 in flight);
- username/password and TLS from :class:`BrokerConfig`.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

DEFAULT_WINDOW = 2_000


class BrokerUrlError(ValueError):
    """A broker address that cannot be used; the message says why."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how to connect."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False

    @classmethod
    def from_url(cls, url: str, **tls: Any) -> BrokerConfig:
        """``mqtt://user:pass@host:port`` or ``mqtts://…`` (TLS, default port 8883)."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise BrokerUrlError(f"{url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise BrokerUrlError(f"{url!r}: no host")
        secure = parts.scheme in ("mqtts", "ssl") or bool(tls.get("tls"))
        try:
            port = parts.port or (8883 if secure else 1883)
        except ValueError:
            raise BrokerUrlError(f"{url!r}: the port is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else tls.get("username"),
            password=unquote(parts.password) if parts.password else tls.get("password"),
            tls=secure,
            cafile=tls.get("cafile"),
            certfile=tls.get("certfile"),
            keyfile=tls.get("keyfile"),
            insecure=bool(tls.get("insecure", False)),
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


Handler = Callable[[str, bytes], None]


def topic_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate ``topic -> bool`` for one subscription pattern (``+`` and ``#``).

    Equivalent to ``paho.mqtt.client.topic_matches_sub(pattern, topic)``, which builds a
    matcher tree on every call (the market's hottest line at thousands of messages per
    second); this one is compiled once per subscription.
    """
    levels = pattern.split("/")
    if "+" not in levels and "#" not in levels:
        return lambda topic: topic == pattern
    tail = levels[-1] == "#"
    fixed = levels[:-1] if tail else levels
    n = len(fixed)
    checks = [(i, lv) for i, lv in enumerate(fixed) if lv != "+"]
    wild_first = (bool(fixed) and fixed[0] == "+") or (not fixed and tail)

    def match(topic: str) -> bool:
        if wild_first and topic.startswith("$"):
            return False  # MQTT: $-topics never match a leading wildcard
        parts = topic.split("/")
        if tail:
            if len(parts) < n:
                return False
        elif len(parts) != n:
            return False
        return all(parts[i] == lv for i, lv in checks)

    return match


class Bus:
    """One MQTT connection.

    Parameters
    ----------
    config : broker address and credentials
    role : used in the client id (``p2pgrid-<role>-<random>``)
    status_root : topic prefix of the retained status (``p2pgrid/<community>``)
    client_id : a fixed id (the market's, for its persistent session)
    persistent : keep the session at the broker across reconnects (clean_session False)
    window : most QoS 1 messages unacknowledged at once
    """

    def __init__(
        self,
        config: BrokerConfig,
        role: str,
        status_root: str,
        client_id: str | None = None,
        persistent: bool = False,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if not 1 <= window <= 60_000:
            raise ValueError("window must lie in [1, 60000] (paho's message ids are 16 bit)")
        self.config = config
        self.client_id = client_id or f"p2pgrid-{role}-{uuid.uuid4().hex[:10]}"
        self.status_topic = f"{status_root}/status/{self.client_id}"
        self._subs: dict[str, int] = {}
        self._handlers: list[tuple[Callable[[str], bool], Handler]] = []
        self._window = threading.BoundedSemaphore(window)
        self._size = window
        self._lock = threading.Lock()
        self._counted: set[int] = set()
        self._uncounted: set[int] = set()
        self._early: set[int] = set()
        self.connected = threading.Event()
        self.connects = 0
        self.disconnected_at: float | None = None
        self.reconnected_at: float = 0.0
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        c.max_inflight_messages_set(min(window, 1000))
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=1, max_delay=8)
        if config.username is not None:
            c.username_pw_set(config.username, config.password)
        if config.tls:
            c.tls_set(
                ca_certs=config.cafile,
                certfile=config.certfile,
                keyfile=config.keyfile,
                cert_reqs=ssl.CERT_NONE if config.insecure else ssl.CERT_REQUIRED,
            )
            if config.insecure:
                c.tls_insecure_set(True)
        c.will_set(self.status_topic, json.dumps({"v": 1, "status": "offline"}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        self.client = c
        self.refused: str | None = None

    # --- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float | None = 10.0) -> Bus:
        """Connect in the background (retrying with backoff); wait up to ``timeout``."""
        self.client.connect_async(self.config.host, self.config.port, keepalive=15)
        self.client.loop_start()
        if timeout is not None and not self.connected.wait(timeout):
            why = f" ({self.refused})" if self.refused else ""
            raise ConnectionError(f"no connection to {self.config.url} in {timeout} s{why}")
        return self

    def stop(self, status: str = "offline") -> None:
        """Publish the retained status and disconnect cleanly."""
        if self.connected.is_set():
            info = self.client.publish(
                self.status_topic, json.dumps({"v": 1, "status": status}), qos=1, retain=True
            )
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, pattern: str, handler: Handler, qos: int = 1) -> None:
        """Deliver messages on ``pattern`` to ``handler(topic, payload)`` (network thread)."""
        self._subs[pattern] = qos
        self._handlers.append((topic_matcher(pattern), handler))
        if self.connected.is_set():
            self.client.subscribe(pattern, qos)

    # --- publishing ---------------------------------------------------------------
    def publish(
        self, topic: str, payload: dict[str, Any] | bytes | str, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish; QoS 1 and 2 block while the in-flight window is full.

        Never call with QoS > 0 from a message handler (the acknowledgements that free
        the window arrive on that same thread).
        """
        data = json.dumps(payload, separators=(",", ":")) if isinstance(payload, dict) else payload
        if qos > 0:
            self._window.acquire()
        info = self.client.publish(topic, data, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            if qos > 0:
                self._window.release()
            raise ConnectionError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self._track(info.mid, qos > 0)

    def _track(self, mid: int, counted: bool) -> None:
        # the acknowledgement may arrive before client.publish returns (network thread)
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
                if counted:
                    self._window.release()
            elif counted:
                self._counted.add(mid)
            else:
                self._uncounted.add(mid)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every QoS 1 message has been acknowledged."""
        deadline = time.monotonic() + timeout
        taken = 0
        try:
            while taken < self._size:
                if not self._window.acquire(timeout=max(deadline - time.monotonic(), 0)):
                    return False
                taken += 1
            return True
        finally:
            for _ in range(taken):
                self._window.release()

    # --- callbacks (paho's network thread) ------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            return
        self.connects += 1
        self.reconnected_at = time.monotonic()
        self.disconnected_at = None
        for pattern, qos in self._subs.items():
            client.subscribe(pattern, qos)
        info = client.publish(
            self.status_topic, json.dumps({"v": 1, "status": "online"}), qos=1, retain=True
        )
        self._track(info.mid, False)
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        self.disconnected_at = time.monotonic()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if mid in self._counted:
                self._counted.discard(mid)
                self._window.release()
            elif mid in self._uncounted:
                self._uncounted.discard(mid)
            else:
                self._early.add(mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        for matches, handler in self._handlers:
            if matches(topic):
                handler(topic, msg.payload)
