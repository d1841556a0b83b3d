"""On-disk cache of computed profiles, so a repeated run neither imports pvlib and SciPy nor
builds the H0 year again.

:class:`agents.profiles.source.SyntheticProfiles` stores each window's ``(T, N)`` PV
generation [kWh] (pvlib's model chain under the seeded cloud model) in one ``.npy`` file
named by the SHA-256 of everything that determines it (:func:`key`): the site, the
interval, every household's kWp, tilt and azimuth, the window's instants, the seed and the
sky, the air temperature model, the source of the modules that compute it
(``pv.py``, ``weather.py``, ``load.py``), the installed pvlib, SciPy, NumPy, pandas and
demandlib versions and :data:`CACHE_VERSION`. Any change to those gives another key, so a
stale entry is never read; an unreadable entry counts as a miss and is recomputed. The
dynamised BDEW H0 profile of a calendar year (:func:`agents.profiles.load.bdew_h0_kwh_per_kwh`,
demandlib, ~0.15 s of CPU per year) is kept the same way, keyed by its year.

Where: ``$P2PGRID_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/p2pgrid`` (``~/.cache/p2pgrid``),
in ``profiles-v<CACHE_VERSION>/``. The directory is safe to delete at any time. Only
windows of at most :data:`MAX_ENTRY_BYTES` are cached (the cache is for small runs, whose
time is start-up; a long or large run is dominated by its simulation), and when the entries
exceed :data:`MAX_TOTAL_BYTES` the least recently used are deleted (and any partial
write older than an hour).
``P2PGRID_CACHE_DIR=off`` turns the cache off. A cache that cannot be written (read-only
home) is skipped silently: the run computes as without it.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_VERSION", "MAX_ENTRY_BYTES", "MAX_TOTAL_BYTES", "cache_dir", "cacheable", "key",
           "load", "store"]  # fmt: skip

#: Bumped by hand when the file format or the meaning of a key changes.
CACHE_VERSION = 1
#: Largest window cached [bytes] (8 MiB: e.g. 100 households x 1 year of hours).
MAX_ENTRY_BYTES = 8 * 2**20
#: Size the cache is pruned to, least recently used first [bytes].
MAX_TOTAL_BYTES = 256 * 2**20
#: Modules whose source is part of every key (a code change invalidates the cache).
_MODEL_SOURCES = ("pv.py", "weather.py", "load.py")
_LIBRARIES = ("pvlib", "scipy", "numpy", "pandas", "demandlib")


def cacheable(shape: tuple[int, ...]) -> bool:
    """Whether a float64 array of ``shape`` is small enough to cache."""
    return 8 * math.prod(shape) <= MAX_ENTRY_BYTES and cache_dir() is not None


def cache_dir() -> Path | None:
    """The profile cache directory, or None when ``P2PGRID_CACHE_DIR=off``."""
    configured = os.environ.get("P2PGRID_CACHE_DIR", "")
    if configured.lower() == "off":
        return None
    if configured:
        base = Path(configured)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "p2pgrid"
    return base / f"profiles-v{CACHE_VERSION}"


@cache
def _environment_digest() -> bytes:
    """The model sources and library versions, hashed once per process."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _MODEL_SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    for library in _LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}\0".encode())
    return digest.digest()


def key(**parts: Any) -> str:
    """Hex SHA-256 of ``parts`` (arrays by dtype, shape and bytes; others by ``repr``),
    the model sources, the library versions and :data:`CACHE_VERSION`."""
    digest = hashlib.sha256(_environment_digest())
    digest.update(f"v{CACHE_VERSION}".encode())
    for name in sorted(parts):
        value = parts[name]
        digest.update(name.encode() + b"=")
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            digest.update(f"{array.dtype.str}{array.shape}".encode() + array.tobytes())
        else:
            digest.update(repr(value).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def load(entry: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached float64 array ``entry`` of ``shape``, or None (absent, unreadable, other
    shape, cache off)."""
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / f"{entry}.npy"
    try:
        array = np.load(path, allow_pickle=False)
        os.utime(path)  # recently used: pruned last
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype != np.float64:
        return None
    return array


def store(entry: str, array: np.ndarray) -> None:
    """Write ``array`` as ``entry`` (atomically: a reader never sees half a file); a cache
    that cannot be written is skipped."""
    directory = cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as tmp:
            np.save(tmp, np.asarray(array, dtype=np.float64), allow_pickle=False)
        os.replace(tmp.name, directory / f"{entry}.npy")
        prune(directory)
    except OSError:
        return


def prune(directory: Path, limit: int = MAX_TOTAL_BYTES) -> None:
    """Delete the least recently used entries until the rest fit in ``limit`` bytes, and
    any partial write left for an hour (a process killed while storing)."""
    for partial in directory.glob("*.tmp"):
        try:
            if partial.stat().st_mtime < time.time() - 3600:
                partial.unlink(missing_ok=True)
        except OSError:
            continue
    found = []
    for path in directory.glob("*.npy"):
        try:
            stat = path.stat()
        except OSError:  # deleted by another process meanwhile
            continue
        found.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in found)
    for _, size, path in sorted(found):
        if total <= limit:
            break
        path.unlink(missing_ok=True)
        total -= size
