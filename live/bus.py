"""The MQTT transport: paho-mqtt 2.x clients with the habits every live component needs.

- ``CallbackAPIVersion.VERSION2``, MQTT 3.1.1 (Mosquitto and the embedded amqtt broker);
- a unique client id per process (the market's is stable, for its persistent session);
- last will: retained ``{"status": "offline"}`` on ``status/<username or client_id>``,
  replaced by a retained ``online`` after every connect;
- connect in the background and reconnect with exponential backoff (paho's loop); the
  first connect gives up at once, with a message saying why, when retrying cannot help
  (a broker certificate that does not verify, credentials the broker refuses);
- subscriptions are renewed on every connect (the broker may have lost the session);
- publishing only queues: the network thread hands the queue to paho between its reads
  (one thread does all of paho's work, so a burst of publishes never fights the
  acknowledgements for the interpreter), at most ``window`` QoS 1 messages
  unacknowledged at once, so paho's 16-bit message ids never wrap onto a message still
  in flight (paho silently loses QoS 1 messages beyond 65,535 in flight); a publisher
  blocks only while the queue itself is full;
- username/password and TLS from :class:`BrokerConfig`;
- an observer (``announce=False``, the dashboard) publishes nothing, no status either;
  :meth:`Bus.watch` tells it when the connection comes and goes.

The client itself, and everything that knows paho's internals, is in
:mod:`live.paho_client` (an optimised client on tested paho versions, paho's stock
client otherwise or with ``P2PGRID_STOCK_THIRD_PARTY=1``).
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from live.paho_client import client_class
from live.protocol import encode

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
RetainHandler = Callable[[str, bytes, bool], None]
Watcher = Callable[[str, str], None]
"""``watcher(state, reason)``: ``connected`` (reason ""), or ``disconnected`` and why."""

# CONNACK refusals (MQTT 3.1.1 codes 4 and 5) that retrying cannot cure
_REFUSED_CREDENTIALS = frozenset({"Bad user name or password", "Not authorized"})


def topic_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate ``topic -> bool`` for one subscription pattern (``+`` and ``#``).

    Equivalent to ``paho.mqtt.client.topic_matches_sub(pattern, topic)``, which builds a
    matcher tree on every call (the market's hottest line at thousands of messages per
    second); this one is compiled once per subscription, to a regular expression.
    """
    levels = pattern.split("/")
    if "+" not in levels and "#" not in levels:
        return lambda topic: topic == pattern
    tail = levels[-1] == "#"
    fixed = levels[:-1] if tail else levels
    body = "/".join("[^/]*" if lv == "+" else re.escape(lv) for lv in fixed)
    if tail:  # "a/#" also matches "a"
        body = f"{body}(?:/.*)?" if fixed else ".*"
    if not fixed or fixed[0] == "+":  # MQTT: $-topics never match a leading wildcard
        body = r"(?!\$)" + body
    match = re.compile(body + r"\Z", re.DOTALL).match
    return lambda topic: match(topic) is not None


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
    announce : publish the retained online/offline status (and its last will); False
        for a read-only observer
    """

    def __init__(
        self,
        config: BrokerConfig,
        role: str,
        status_root: str,
        client_id: str | None = None,
        persistent: bool = False,
        window: int = DEFAULT_WINDOW,
        announce: bool = True,
    ) -> None:
        if not 1 <= window <= 60_000:
            raise ValueError("window must lie in [1, 60000] (paho's message ids are 16 bit)")
        self.config = config
        self.client_id = client_id or f"p2pgrid-{role}-{uuid.uuid4().hex[:10]}"
        # an account's status: behind ``use_username_as_clientid`` (p2pgrid acl) the
        # broker names the client after its username whatever id it asked for
        self.status_topic = f"{status_root}/status/{config.username or self.client_id}"
        self._subs: dict[str, int] = {}
        self._handlers: list[tuple[Callable[[str], bool], Any, bool]] = []
        self._watchers: list[Watcher] = []
        self.announce = announce
        self._queue_limit = 4 * window
        self.connected = threading.Event()
        self.connects = 0
        self.disconnected_at: float | None = None
        self.reconnected_at: float = 0.0
        c = client_class()(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
            window=window,
        )
        c.reconnect_delay_set(min_delay=1, max_delay=8)
        if config.username is not None:
            c.username_pw_set(config.username, config.password)
        if config.tls:
            try:
                c.tls_set(
                    ca_certs=config.cafile,
                    certfile=config.certfile,
                    keyfile=config.keyfile,
                    cert_reqs=ssl.CERT_NONE if config.insecure else ssl.CERT_REQUIRED,
                )
            except OSError as exc:  # ssl.SSLError included: not PEM, key not the cert's
                files = ", ".join(
                    f"{name} {path}"
                    for name, path in (
                        ("--cafile", config.cafile),
                        ("--certfile", config.certfile),
                        ("--keyfile", config.keyfile),
                    )
                    if path
                )
                raise ConnectionError(
                    f"TLS for {config.url}: cannot load {files or 'the default CAs'}: {exc}"
                ) from exc
            if config.insecure:
                c.tls_insecure_set(True)
        if announce:
            offline = encode({"v": 1, "status": "offline"})
            c.will_set(self.status_topic, offline, qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.on_message = self._on_message
        self.client = c
        self.refused: str | None = None
        """The broker's reason for refusing the last connection (its CONNACK)."""
        self.dropped: str | None = None
        """Why the broker closed a connection before accepting it."""

    # --- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float | None = 10.0) -> Bus:
        """Connect in the background (retrying with backoff); wait up to ``timeout``.

        Raises :class:`ConnectionError` (and stops trying) when there is no connection
        within ``timeout``, or at once when retrying cannot help: the broker's
        certificate does not verify, or the broker refuses the credentials.
        """
        self.client.connect_async(self.config.host, self.config.port, keepalive=15)
        self.client.loop_start()
        if timeout is None:
            return self
        deadline = time.monotonic() + timeout
        while not self.connected.wait(min(0.05, max(deadline - time.monotonic(), 0.0))):
            fatal = self._fatal()
            if fatal is not None or time.monotonic() >= deadline:
                self.client.disconnect()
                self.client.loop_stop()
                raise ConnectionError(
                    fatal or f"no connection to {self.config.url} in {timeout:g} s{self._why()}"
                )
        return self

    def _fatal(self) -> str | None:
        """Why connecting cannot succeed by retrying, or None."""
        error = self.client.connect_error
        url = self.config.url
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate verification failed for {url}: "
                f"{error.verify_message or error} (is the broker's certificate signed by "
                f"the CA in --cafile{f' {self.config.cafile}' if self.config.cafile else ''}, "
                f"and issued for {self.config.host}?)"
            )
        if self.refused in _REFUSED_CREDENTIALS:
            who = f"user {self.config.username!r}" if self.config.username else "no username"
            return (
                f"the broker at {url} refused the connection: {self.refused} "
                f"(wrong username or password? connected with {who})"
            )
        return None

    def _why(self) -> str:
        if self.refused:
            return f" (refused: {self.refused})"
        error = self.client.connect_error
        if error is not None:
            kind = "TLS error" if isinstance(error, ssl.SSLError) else type(error).__name__
            return f" (last attempt: {kind}: {error})"
        if self.dropped is not None:
            hint = "" if self.config.tls else "; does it want TLS (mqtts://)?"
            return f" (the broker closed the connection before accepting it{hint})"
        return ""

    def stop(self, status: str = "offline") -> None:
        """Publish the retained status and disconnect cleanly."""
        if self.connected.is_set() and self.announce:
            self.publish(self.status_topic, {"v": 1, "status": status}, qos=1, retain=True)
            self.drain(5.0)
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(
        self, pattern: str, handler: Handler | RetainHandler, qos: int = 1, retained: bool = False
    ) -> None:
        """Deliver messages on ``pattern`` to ``handler(topic, payload)`` (network thread),
        or with ``retained`` to ``handler(topic, payload, retain)`` (``retain``: the
        broker delivered a retained message on subscribing, not a live one)."""
        self._subs[pattern] = qos
        self._handlers.append((topic_matcher(pattern), handler, retained))
        if self.connected.is_set():
            self.client.subscribe(pattern, qos)

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(state, reason)`` (network thread) on every change of the
        connection: ``connected``, or ``disconnected`` with the broker's reason, its
        refusal (``refused: …``) or ``connection refused or unreachable``."""
        self._watchers.append(watcher)

    def _tell(self, state: str, reason: str = "") -> None:
        for watcher in self._watchers:
            watcher(state, reason)

    # --- publishing ---------------------------------------------------------------
    def publish(
        self, topic: str, payload: dict[str, Any] | bytes | str, qos: int = 1, retain: bool = False
    ) -> None:
        """Queue a message (sent in order, QoS 1 at most ``window`` unacknowledged).

        From any thread, message handlers included. Outside the network thread it waits
        while the queue holds more than four windows (a publisher faster than the broker
        is slowed down, not buffered without end).
        """
        data = encode(payload) if isinstance(payload, dict) else payload
        c = self.client
        if c.queued() > self._queue_limit and not c.in_network_thread():
            while c.queued() > self._queue_limit // 2 and c.looping():
                time.sleep(0.002)
        c.enqueue(topic, data, qos, retain)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued is sent and every QoS 1 message acknowledged."""
        deadline = time.monotonic() + timeout
        while self.client.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    # --- callbacks (paho's network thread) ------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            self._tell("disconnected", f"refused: {reason}")
            return
        self.refused = None
        self.connects += 1
        self.reconnected_at = time.monotonic()
        self.disconnected_at = None
        for pattern, qos in self._subs.items():
            client.subscribe(pattern, qos)
        if self.announce:
            online = encode({"v": 1, "status": "online"})
            client.publish(self.status_topic, online, qos=1, retain=True)
        self.connected.set()
        self._tell("connected")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not self.connected.is_set() and self.refused is None:
            self.dropped = str(reason)  # closed before accepting the connection
        self.connected.clear()
        self.disconnected_at = time.monotonic()
        self._tell("disconnected", str(reason))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._tell("disconnected", "connection refused or unreachable")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # MQTT topics are UTF-8; a broker should never pass one
            return
        for matches, handler, retained in self._handlers:
            if matches(topic):
                if retained:
                    handler(topic, msg.payload, msg.retain)
                else:
                    handler(topic, msg.payload)
