"""glibc's allocator held steady: what the engine frees goes back to the system.

A run allocates and frees arrays of a few hundred KiB every interval (the feeder model's
parameters and solutions, the clearing's books, the results blocks). glibc serves those
by ``mmap`` at first, but raises its threshold each time such a block is freed, after
which they come from the heap, where the small objects that outlive them pin the space:
it is free but not returned. Over a run the resident memory then grew with the run's
length though what was allocated did not (300 households on ``radial:300``, 4 weeks:
179 -> 222 MB anonymous memory, of which ``malloc_trim`` handed back 46 MB at the end;
with the thresholds fixed, 139 -> 141 MB; the run's time unchanged within noise).

So the ``p2pgrid`` command fixes both thresholds at its start (:func:`steady_malloc`,
``mallopt``), and local Dask workers get them from their environment (:data:`MALLOC_ENV`,
read by glibc as a process starts). A program that embeds the engine decides for
itself: the library does not change its process's allocator. ``P2PGRID_MALLOC_TUNING=0``
leaves glibc's defaults to the command too. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 256 * 1024
"""Blocks of this size or more are mapped, and unmapped when freed [B]."""
TRIM_THRESHOLD = 1024 * 1024
"""Free space at the heap's top beyond this is returned at once [B]."""
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
}
"""The same settings as glibc reads them from a new process's environment."""
SWITCH = "P2PGRID_MALLOC_TUNING"

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def steady_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; whether they were set
    (not on another C library, nor with ``P2PGRID_MALLOC_TUNING=0``)."""
    if os.environ.get(SWITCH) == "0" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
