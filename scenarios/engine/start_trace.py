"""When a run's engine reaches its first interval, for measuring start-up.

With ``P2PGRID_TRACE_START=PATH`` in the environment, :func:`mark_first_interval` writes
one line into ``PATH`` when the engine starts its first interval (its inputs are ready:
the first window's profiles read or computed, the feeder built; nothing of the interval
has run): the wall-clock time (``time.time()``, seconds since the epoch) and the CPU
time the process has used so far (``time.process_time()`` [s], its interpreter's
start-up included), separated by a space. Whoever started the process compares the first
with the time it started it (``bench/bench_startup.py``: start-up to the first interval,
wall and CPU). Only the first mark counts: a file that exists already is left as it
is (a district's later feeders, a second run in the same process), so give each process a
new path. Without the variable it does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TRACE_START_ENV = "P2PGRID_TRACE_START"


def mark_first_interval() -> None:
    """Write the time into ``$P2PGRID_TRACE_START``, if that is set (module docstring)."""
    path = os.environ.get(TRACE_START_ENV)
    if not path:
        return
    now, cpu = time.time(), time.process_time()
    try:
        with Path(path).open("x", encoding="utf-8") as file:
            file.write(f"{now!r} {cpu!r}\n")
    except FileExistsError:
        pass
