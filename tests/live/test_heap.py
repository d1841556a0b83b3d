"""The collector tuning is opt-in (P2PGRID_LIVE_GC_TUNING=1) and off by default."""

from __future__ import annotations

import ast
import gc
import os
import subprocess
import sys

from live.heap import GC_SWITCH, freeze_interval, settle_heap

PROBE = (
    "import gc; from live.heap import settle_heap, freeze_interval; "
    "before = gc.get_threshold(); settle_heap(); freeze_interval(); "
    "print((before, gc.get_threshold(), gc.get_freeze_count() > 0))"
)


def _probe(env: dict[str, str]) -> tuple:
    """(threshold before, threshold after, anything frozen) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return ast.literal_eval(out.stdout.strip())


def test_off_by_default(monkeypatch) -> None:
    monkeypatch.delenv(GC_SWITCH, raising=False)
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    settle_heap()
    freeze_interval()
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)


def test_on_when_asked() -> None:
    # in a fresh process: the tuning is process-wide
    env = {k: v for k, v in os.environ.items() if k != GC_SWITCH}
    before, after, frozen = _probe(env)
    assert after == before and not frozen
    _, after, frozen = _probe({**env, GC_SWITCH: "1"})
    assert after == (50_000, 20, 20) and frozen
