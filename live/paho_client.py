"""The paho-mqtt client behind :class:`live.bus.Bus`, the one module that knows paho's
internals.

Two clients with the same small interface (``enqueue``, ``queued``, ``pending``,
``in_network_thread``, ``looping``, ``connect_error``):

- :class:`FastClient` overrides about ten of paho's private methods and attributes to
  spend fewer system calls and allocations per message (a third of the live market's
  time at thousands of messages per second). It is used on the paho versions it was
  tested with, :data:`TESTED_PAHO`.
- :class:`StockClient` uses paho's public API only: the fallback on any other paho
  version (with a warning) and whenever ``P2PGRID_STOCK_THIRD_PARTY=1`` is set (a CI
  step runs the live tests so). It publishes through ``Client.publish`` from the
  caller's thread and lets paho's in-flight limit (the window) hold the rest back.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import warnings
from collections import deque
from importlib.metadata import version
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: The paho-mqtt versions FastClient's private overrides were tested with: [low, high).
TESTED_PAHO = ((2, 2), (2, 3))
#: Set to 1, every module that relies on a third party's internals takes its plain path.
STOCK_SWITCH = "P2PGRID_STOCK_THIRD_PARTY"

_log = logging.getLogger(__name__)


def _release(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def client_class(paho_version: str | None = None) -> type[FastClient] | type[StockClient]:
    """FastClient on a tested paho version, else StockClient (warning once why)."""
    if os.environ.get(STOCK_SWITCH) == "1":
        return StockClient
    installed = paho_version or version("paho-mqtt")
    low, high = TESTED_PAHO
    if low <= _release(installed) < high:
        return FastClient
    warnings.warn(
        f"paho-mqtt {installed} is outside the range the live transport's optimised client "
        f"was tested with ({'.'.join(map(str, low))} to before {'.'.join(map(str, high))}): "
        "using paho's stock client (correct, slower at thousands of messages per second)",
        RuntimeWarning,
        stacklevel=2,
    )
    return StockClient


class _Common(mqtt.Client):
    """What both clients add to paho through its public API."""

    connect_error: OSError | None = None
    """Why the last connection attempt failed before MQTT's CONNECT (network thread)."""

    network_thread: threading.Thread | None = None

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:  # paho's loop retries; its on_connect_fail says not why
            self.connect_error = exc
            raise
        self.connect_error = None
        return rc

    def loop_forever(self, *args: Any, **kwargs: Any) -> mqtt.MQTTErrorCode:
        # loop_start runs this in paho's network thread
        self.network_thread = threading.current_thread()
        try:
            return super().loop_forever(*args, **kwargs)
        finally:
            self.network_thread = None

    def in_network_thread(self) -> bool:
        return threading.current_thread() is self.network_thread

    def looping(self) -> bool:
        """Whether the network thread runs."""
        return self.network_thread is not None


class StockClient(_Common):
    """paho's client through its public API only (see the module docstring)."""

    def __init__(self, *args: Any, window: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_inflight_messages_set(window)
        self.max_queued_messages_set(0)
        self._lock = threading.Lock()
        self._unacked: set[int] = set()  # message ids published, not yet acknowledged
        self._early: set[int] = set()  # acknowledged before enqueue saw its id
        self._publishing = 0  # enqueue calls between publish and recording the id
        self.on_publish = self._acknowledged

    def enqueue(self, topic: str, data: bytes | str, qos: int, retain: bool) -> None:
        """Publish (any thread): paho holds back what the window does not let through."""
        with self._lock:
            self._publishing += 1
        try:
            info = self.publish(topic, data, qos=qos, retain=retain)
        except ValueError as exc:  # a topic or payload paho refuses: dropped, logged
            _log.error("dropped publish to %s: %s", topic, exc)
            info = None
        with self._lock:
            self._publishing -= 1
            # QoS 0 without a connection: paho drops it, nothing to wait for
            if info is not None and (qos or info.rc == mqtt.MQTT_ERR_SUCCESS):
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._unacked.add(info.mid)
            if not self._publishing:
                self._early.clear()  # acknowledgements of publishes enqueue never saw

    def _acknowledged(self, client: Any, userdata: Any, mid: int, *_: Any) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            elif self._publishing:
                self._early.add(mid)

    def queued(self) -> int:
        """Messages published and not yet written (QoS 0) or acknowledged (QoS 1)."""
        return len(self._unacked)

    def pending(self) -> int:
        """Messages not yet written (QoS 0) or acknowledged (QoS 1)."""
        return len(self._unacked)


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


class FastClient(_Common):
    """paho's client with fewer system calls per message, the protocol unchanged.

    It overrides paho's private methods and attributes: used only on the paho versions
    in :data:`TESTED_PAHO` (see :func:`client_class`).

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
    @property  # type: ignore[override]  # paho's socket, wrapped: same methods used
    def _sockpairR(self) -> _WakeReader | None:
        return self._wake_r

    @_sockpairR.setter
    def _sockpairR(self, sock: Any) -> None:
        self._wake_r = None if sock is None else _WakeReader(sock)
        self._pair_wake()

    @property  # type: ignore[override]  # paho's socket, wrapped: same methods used
    def _sockpairW(self) -> _WakeWriter | None:
        return self._wake_w

    @_sockpairW.setter
    def _sockpairW(self, sock: Any) -> None:
        self._wake_w = None if sock is None else _WakeWriter(sock)
        self._pair_wake()

    def _pair_wake(self) -> None:
        if self._wake_r is not None:
            self._wake_r.writer = self._wake_w

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
        # unlimited in paho: the window bounds what is in flight, and paho's own limit
        # rescans every message it holds on each acknowledgement (quadratic)
        self.max_inflight_messages_set(0)
        self.max_queued_messages_set(0)
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

    def queued(self) -> int:
        """Messages queued and not yet handed to paho."""
        return len(self._outbox)

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
            parts: list[bytes | bytearray] = []
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
