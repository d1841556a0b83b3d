"""The embedded broker: amqtt (pure Python, MQTT 3.1.1) in a background thread, so the
live demo needs nothing installed. Real deployments and the tests use Mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BrokerStartError(RuntimeError):
    """The embedded broker could not start (its address in use, not ours, ...)."""


class EmbeddedBroker:
    """amqtt listening on ``host:port`` (anonymous), started and stopped from sync code."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise BrokerStartError(f"the embedded broker did not start in {timeout} s")
        if self._error is not None:
            raise BrokerStartError(
                f"the embedded broker cannot listen on {self.host}:{self.port}: {self._error}"
            ) from self._error
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{self.host}:{self.port}",
                    "max_connections": 10_000,
                }
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        # a failed start is raised by start(); amqtt would also log it with a traceback
        startup_log = logging.getLogger("amqtt.broker")
        startup_log.setLevel(logging.CRITICAL)
        try:
            self._broker = Broker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        finally:
            startup_log.setLevel(logging.WARNING)
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._broker.shutdown())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"
