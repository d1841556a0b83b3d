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
- username/password and TLS from :class:`BrokerConfig`.
"""

from __future__ import annotations

import gc
import re
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from live.protocol import encode

DEFAULT_WINDOW = 2_000


def settle_heap() -> None:
    """Garbage-collector settings for a long-running live process, after its setup.

    Every message allocates a dozen short-lived objects, so the collector's youngest
    generation fills every few messages and the oldest one, which holds the whole
    community and the feeder model, was traversed several times per interval. The
    objects alive after setup are frozen out of collection and the young generation is
    collected less often (reference counting frees nearly all of it anyway).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


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

# CONNACK refusals (MQTT 3.1.1 codes 4 and 5) that retrying cannot cure
_REFUSED_CREDENTIALS = frozenset({"Bad user name or password", "Not authorized"})

_READ_CHUNK = 1 << 16
_WRITE_CHUNK = 1 << 16
_PUBLISH, _PUBACK = int(mqtt.PUBLISH), int(mqtt.PUBACK)
_PUBACK_REASON = ReasonCode(PacketTypes.PUBACK)
_PUBACK_PROPERTIES = Properties(PacketTypes.PUBACK)


def _out_packet(command: int, data: bytes) -> Any:
    """A packet for paho's write queue (its ``_OutPacket`` fields)."""
    return {
        "command": command,
        "mid": 0,
        "qos": 1,
        "pos": 0,
        "to_process": len(data),
        "packet": data,
        "info": None,
    }


class _WakeWriter:
    """paho's wake-up socket (``_sockpairW``), written once until the loop reads it.

    paho writes one byte to it for every packet it queues, so that a ``select`` blocked
    in the network thread returns and writes the packet: a system call per message.
    One unread byte is enough: the loop reads the pair, then writes every queued packet.
    """

    __slots__ = ("pending", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.pending = False

    def send(self, data: bytes) -> int:
        if self.pending:
            return 0
        self.pending = True
        return self.sock.send(data)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class _WakeReader:
    """The read end (``_sockpairR``): reading it re-arms the writer, after the read, so
    a byte sent meanwhile is never lost with the flag still set."""

    __slots__ = ("sock", "writer")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.writer: _WakeWriter | None = None

    def recv(self, size: int) -> bytes:
        try:
            return self.sock.recv(size)
        finally:
            if self.writer is not None:
                self.writer.pending = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class _Client(mqtt.Client):
    """paho's client with fewer system calls per message, the protocol unchanged.

    - reads: paho reads each packet with at least three ``recv`` calls (command byte,
      length bytes one by one, body); here ``recv`` is served from a buffer filled
      64 KiB at a time, and ``loop_read`` goes on until the buffer is empty, so no whole
      packet waits in it for the next ``select``. The buffer belongs to one socket: a
      reconnect starts empty.
    - writes: whole PUBACKs and QoS 1 PUBLISHes queued back to back go out in one
      ``send`` (paho sends packet by packet); packets paho must act on once written
      (QoS 0 publishes, DISCONNECT) still go alone;
    - wake-ups: see :class:`_WakeWriter`.

    At thousands of messages per second these system calls were a third of the time
    of the market and of the agents' gateway.
    """

    _rsock: object = None
    _rbuf: bytes = b""
    _rpos: int = 0
    _wake_r: _WakeReader | None = None
    _wake_w: _WakeWriter | None = None

    # paho assigns these two; wrap whatever it assigns
    @property
    def _sockpairR(self) -> _WakeReader | None:
        return self._wake_r

    @_sockpairR.setter
    def _sockpairR(self, sock: Any) -> None:
        self._wake_r = None if sock is None else _WakeReader(sock)
        self._pair_wake()

    @property
    def _sockpairW(self) -> _WakeWriter | None:
        return self._wake_w

    @_sockpairW.setter
    def _sockpairW(self, sock: Any) -> None:
        self._wake_w = None if sock is None else _WakeWriter(sock)
        self._pair_wake()

    def _pair_wake(self) -> None:
        if self._wake_r is not None:
            self._wake_r.writer = self._wake_w

    connect_error: OSError | None = None
    """Why the last connection attempt failed before MQTT's CONNECT (network thread)."""

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:  # paho's loop retries; its on_connect_fail says not why
            self.connect_error = exc
            raise
        self.connect_error = None
        return rc

    def _ssl_wrap_socket(self, tcp_sock: Any) -> ssl.SSLSocket:
        # paho leaves the TLS socket open when the handshake fails (a certificate that
        # does not verify): one descriptor lost per reconnect attempt
        context = self._ssl_context
        if context is None or not (context.check_hostname or self._tls_insecure):
            return super()._ssl_wrap_socket(tcp_sock)
        sock = context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            sock.settimeout(self._connect_timeout)
            sock.do_handshake()
        except BaseException:
            sock.close()
            raise
        return sock

    def __init__(self, *args: Any, window: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox: deque[tuple[str, bytes | str, int, bool]] = deque()
        self._window_size = window
        self._in_hand = 0  # a message between the queue and paho (see pending)

    def enqueue(self, topic: str, data: bytes | str, qos: int, retain: bool) -> None:
        """Queue a publish for the network thread (any thread)."""
        self._outbox.append((topic, data, qos, retain))
        wake = self._sockpairW
        if wake is not None:
            try:
                wake.send(b"0")
            except OSError:  # full or closed: a wake-up is pending or the loop is gone
                pass

    def _flush(self) -> None:
        """Publish the queue while the window has room (network thread, connected)."""
        box, held, window = self._outbox, self._out_messages, self._window_size
        while box and len(held) < window:
            self._in_hand = 1
            topic, data, qos, retain = box.popleft()
            try:
                super().publish(topic, data, qos=qos, retain=retain)
            except ValueError as exc:  # a topic or payload paho refuses: never the loop
                self._easy_log(mqtt.MQTT_LOG_ERR, "dropped publish to %s: %s", topic, exc)
            finally:
                self._in_hand = 0

    def _loop(self, timeout: float = 1.0) -> mqtt.MQTTErrorCode:
        if self._outbox and self.is_connected():
            self._flush()
        return super()._loop(timeout)

    def pending(self) -> int:
        """Messages queued, being handed to paho, unwritten or unacknowledged."""
        return len(self._outbox) + self._in_hand + len(self._out_packet) + len(self._out_messages)

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # The Bus dispatches by topic itself and never registers paho's per-topic
        # callbacks; paho's lookup of them builds a self-referencing closure for every
        # message, a reference cycle per message that kept the cyclic collector busy.
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> mqtt.MQTTErrorCode:
        # MQTT 3.1.1's PUBACK is just the message id: paho builds a reason code and a
        # properties object for each one, a tenth of a publisher's time
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or self._protocol == mqtt.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, _PUBACK_REASON, _PUBACK_PROPERTIES)
        return mqtt.MQTT_ERR_SUCCESS

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        q = self._out_packet
        if len(q) > 1:
            parts: list[bytes] = []
            size = 0
            try:
                while size < _WRITE_CHUNK:
                    head = q[0]
                    cmd = head["command"] & 0xF0
                    if head["pos"] or cmd not in (_PUBACK, _PUBLISH) or not head["qos"]:
                        break
                    parts.append(q.popleft()["packet"])
                    size += len(parts[-1])
            except IndexError:
                pass
            if parts:  # nothing to do once written: one packet to paho
                q.appendleft(_out_packet(_PUBACK, b"".join(parts)))
        return super()._packet_write()

    _rsock: object = None
    _rbuf: bytes = b""
    _rpos: int = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._rsock:
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        pos = self._rpos
        self._rpos = pos + bufsize
        return self._rbuf[pos : pos + bufsize]

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc == mqtt.MQTT_ERR_SUCCESS
            and self._sock is not None
            and self._sock is self._rsock
            and self._rpos < len(self._rbuf)
        ):
            rc = super().loop_read(max_packets)
        return rc


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
        # an account's status: behind ``use_username_as_clientid`` (p2pgrid acl) the
        # broker names the client after its username whatever id it asked for
        self.status_topic = f"{status_root}/status/{config.username or self.client_id}"
        self._subs: dict[str, int] = {}
        self._handlers: list[tuple[Callable[[str], bool], Any, bool]] = []
        self._queue_limit = 4 * window
        self.connected = threading.Event()
        self.connects = 0
        self.disconnected_at: float | None = None
        self.reconnected_at: float = 0.0
        c = _Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
            window=window,
        )
        # unlimited in paho: the window bounds what is in flight, and paho's own limit
        # rescans every message it holds on each acknowledgement (quadratic)
        c.max_inflight_messages_set(0)
        c.max_queued_messages_set(0)
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
        c.will_set(self.status_topic, encode({"v": 1, "status": "offline"}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
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
        if self.connected.is_set():
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
        if len(c._outbox) > self._queue_limit and threading.current_thread() is not c._thread:
            while len(c._outbox) > self._queue_limit // 2 and c._thread is not None:
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
            return
        self.refused = None
        self.connects += 1
        self.reconnected_at = time.monotonic()
        self.disconnected_at = None
        for pattern, qos in self._subs.items():
            client.subscribe(pattern, qos)
        client.publish(self.status_topic, encode({"v": 1, "status": "online"}), qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not self.connected.is_set() and self.refused is None:
            self.dropped = str(reason)  # closed before accepting the connection
        self.connected.clear()
        self.disconnected_at = time.monotonic()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # MQTT topics are UTF-8; a broker should never pass one
            return
        for matches, handler, retained in self._handlers:
            if matches(topic):
                if retained:
                    handler(topic, msg.payload, msg.retain)  # type: ignore[call-arg]
                else:
                    handler(topic, msg.payload)  # type: ignore[call-arg]
