"""Running the dashboard: in the foreground (the CLI) or in a background thread (the live
market, tests, benchmarks).

The dashboard binds to 127.0.0.1 unless told otherwise. Bound to any other address it
requires a token on every request (given, or generated and returned/printed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from live.dashboard.app import create_app
from live.dashboard.sources import Source

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token the server requires: ``token``; a new one beyond the loopback; else None."""
    if token:
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(18)


@dataclass
class DashboardServer:
    """A dashboard running in a background thread (see :func:`start_dashboard`)."""

    source: Source
    host: str
    port: int
    token: str | None
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The page's address (with the token, when one is required)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = f"http://{host}:{self.port}/"
        return base + (f"?token={self.token}" if self.token else "")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the source, end the open event streams, stop the server."""
        self.source.stop()
        self.source.log.close()
        self._server.should_exit = True
        self._thread.join(timeout)


def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on ``sock`` until the server exits, then close every connection still open.

    uvicorn's shutdown closes the connections it knows of and waits for the rest for its
    grace period; one accepted as it began (a browser opens spare connections) is left
    open when its event loop ends, to be closed by the garbage collector with a
    ResourceWarning."""

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            for _ in range(3):  # a connection still being set up registers a moment later
                for connection in list(server.server_state.connections):
                    connection.transport.close()
                await asyncio.sleep(0.02)

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve())


def _config(source: Source, host: str, port: int, token: str | None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(source, token),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        ws="none",
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def start_dashboard(
    source: Source, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None
) -> DashboardServer:
    """Start the dashboard over ``source`` in a background thread and return at once.

    Parameters
    ----------
    source
        A :class:`live.dashboard.sources.RunSource` or
        :class:`live.dashboard.mqtt_source.MqttSource`; it is started here.
    host, port
        Where to listen; ``port=0`` picks a free port (read it from ``.port``).
    token
        Required on every request; generated when ``host`` is not a loopback address and
        no token is given (read it from ``.token`` / ``.url``).

    Returns
    -------
    DashboardServer
        ``.url`` to open, ``.stop()`` to shut down.
    """
    token = resolve_token(host, token)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(_config(source, host, port, token))
    thread = threading.Thread(
        target=_run, args=(server, sock), name="p2pgrid-dashboard", daemon=True
    )
    if source.map is not None:  # the feeder map's layout, before anything is served
        source.map.prepare()
    source.start()
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard did not start on {host}:{port}")
        time.sleep(0.01)
    return DashboardServer(source, host, port, token, server, thread)


def serve_dashboard(
    source: Source, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None
) -> None:
    """Run the dashboard over ``source`` in the foreground until interrupted (Ctrl-C).

    This is what ``p2pgrid dashboard`` runs; ``p2pgrid live … --dashboard`` can call
    :func:`start_dashboard` instead to keep the market in the foreground. A token is
    generated when ``host`` is not a loopback address and none is given; pass one to
    know it in advance.
    """
    token = resolve_token(host, token)
    sock = _bind(host, port)  # an address in use raises OSError here, not inside uvicorn
    if source.map is not None:  # the feeder map's layout, before anything is served
        source.map.prepare()
    source.start()
    try:
        _run(uvicorn.Server(_config(source, host, sock.getsockname()[1], token)), sock)
    finally:
        source.stop()
        sock.close()
