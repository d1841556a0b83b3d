"""glibc's allocator held steady (:mod:`scenarios.engine.malloc`): blocks of a few hundred
KiB freed between small objects that stay are returned to the system with the thresholds
fixed, and kept without them (what made a run's memory grow with its length)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scenarios.engine.malloc import MALLOC_ENV, SWITCH, steady_malloc
from scenarios.studies.dask_cluster import WORKER_ENV

PATTERN = """
import sys
from pathlib import Path

def anon():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "steady":
    from scenarios.engine.malloc import steady_malloc
    assert steady_malloc()
import numpy as np
x = np.ones(64 * 1024)
del x  # a freed block of 512 KiB: glibc raises its mmap threshold past it
start = anon()
big, small = [], []
for _ in range(200):
    big.append(np.ones(64 * 1024))  # 512 KiB each, 100 MiB in all
    small.append(np.ones(1024))  # 8 KiB each, kept: they pin the heap between
peak = anon()
del big
print(peak - start, anon() - start)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")


def _kept_mb(mode: str, env: dict[str, str]) -> tuple[float, float]:
    """The pattern in a fresh process: MiB allocated, MiB still resident once freed."""
    # the allocator's settings only from ``env``: none inherited from the test's process
    # (a local Dask cluster's worker environment, glibc tunables, the switch)
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MALLOC_", "GLIBC_TUNABLES")) and k != SWITCH
    }
    out = subprocess.run(
        [sys.executable, "-c", PATTERN, mode],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def test_freed_blocks_go_back_with_the_thresholds_fixed() -> None:
    default = _kept_mb("default", {})
    assert default[0] > 90 and default[1] > 90  # glibc's defaults: all of it kept
    for mode, env in (("steady", {}), ("default", MALLOC_ENV)):
        allocated, kept = _kept_mb(mode, env)
        assert allocated > 90 and kept < 10, (mode, allocated, kept)


def test_local_workers_get_the_settings_and_the_switch_turns_them_off(monkeypatch) -> None:
    assert MALLOC_ENV.items() <= WORKER_ENV.items()
    monkeypatch.setenv(SWITCH, "0")
    assert steady_malloc() is False
