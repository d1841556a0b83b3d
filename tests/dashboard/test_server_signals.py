"""The dashboard in a background thread leaves the process's signal handlers alone.

uvicorn (0.29 on, the versions pyproject allows) installs its SIGINT/SIGTERM handlers only
when it runs in the main thread, so ``start_dashboard`` needs no patch of uvicorn's
internals: ``p2pgrid live --dashboard`` keeps Ctrl-C for the market.
"""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

from live.dashboard import RunSource, read_run, start_dashboard


def test_background_dashboard_keeps_the_signal_handlers(run_dir: Path) -> None:
    def mine(signum, frame):  # pragma: no cover - never delivered
        raise AssertionError("not delivered in this test")

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = start_dashboard(RunSource(read_run(run_dir), replay_speed=None), port=0)
        try:
            with urllib.request.urlopen(server.url + "api/meta", timeout=10) as response:
                assert response.status == 200
            assert signal.getsignal(signal.SIGINT) is mine
            assert signal.getsignal(signal.SIGTERM) is mine
        finally:
            server.stop()
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
