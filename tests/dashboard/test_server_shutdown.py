"""Stopping the dashboard closes every connection it accepted, including those a browser
opens as the server begins to shut down (Chromium keeps spare connections): none is left
to the garbage collector, which would close it with a ResourceWarning after the server's
event loop has ended."""

from __future__ import annotations

import gc
import socket
import sys
import threading
import time
from typing import Any

import pytest

from live.dashboard.market_source import MarketSource
from live.dashboard.server import start_dashboard


def ended(s: socket.socket) -> bool:
    """Whether the server closed ``s``: end of stream, or reset (one still waiting in the
    listening socket's backlog when that closed)."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_stop_closes_the_connections_opened_while_it_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    held: list[socket.socket] = []
    try:
        for _ in range(5):
            server = start_dashboard(MarketSource("c", market={}, interval_minutes=15), port=0)
            done = threading.Event()

            def connect(port: int = server.port, done: threading.Event = done) -> None:
                while not done.is_set():  # idle connections, as fast as they are accepted
                    try:
                        held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
                    except OSError:
                        time.sleep(0.001)

            opener = threading.Thread(target=connect)
            opener.start()
            time.sleep(0.05)
            server.stop()
            done.set()
            opener.join()
            assert not server._thread.is_alive()
        gc.collect()
        assert len(held) > 10
        assert [repr(u.exc_value) for u in unraisable] == []
        for s in held:  # and each was closed by the server, not left open
            assert ended(s)
    finally:
        for s in held:
            s.close()
