"""The on-disk PV generation cache (agents.profiles.cache): a cached window equals the
freshly computed one, every input that changes the generation changes the key, and a
missing, corrupt or unwritable cache falls back to computing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.profiles import cache as profile_cache
from agents.profiles.source import Site, SyntheticProfiles

BERLIN = Site(latitude=52.52, longitude=13.40, altitude_m=34.0, timezone="Europe/Berlin")


def source(seed: int = 3, tilt: float = 35.0, latitude: float = 52.52) -> SyntheticProfiles:
    site = Site(latitude=latitude, longitude=13.40, altitude_m=34.0, timezone="Europe/Berlin")
    return SyntheticProfiles(
        start=pd.Timestamp("2026-06-15", tz="Europe/Berlin"),
        days=2,
        interval_minutes=15,
        site=site,
        annual_kwh=np.full(3, 3000.0),
        pv_kwp=np.array([4.0, 0.0, 7.5]),
        pv_tilt_deg=np.full(3, tilt),
        pv_azimuth_deg=np.array([180.0, 180.0, 120.0]),
        seed=seed,
    )


def entries(directory: Path) -> list[Path]:
    """The PV entries in the cache (not the H0 years, cached once per process)."""
    years = {profile_cache.key(profile="bdew_h0_dyn", year=y) for y in range(2024, 2028)}
    return sorted(p for p in directory.glob("profiles-v*/*.npy") if p.stem not in years)


def test_the_h0_year_is_cached_and_equals_demandlibs(tmp_path, monkeypatch) -> None:
    """The H0 year read back from the cache is demandlib's, bit for bit, sums to 1 kWh,
    and a process that reads it does not call demandlib."""
    import agents.profiles.load as load

    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    load.bdew_h0_kwh_per_kwh.cache_clear()
    direct = load._demandlib_h0(2025)
    computed = load.bdew_h0_kwh_per_kwh(2025)  # builds with demandlib and stores
    assert len(list(tmp_path.glob("profiles-v*/*.npy"))) == 1
    load.bdew_h0_kwh_per_kwh.cache_clear()

    def no_demandlib(year: int) -> np.ndarray:
        raise AssertionError("demandlib called although the year is cached")

    monkeypatch.setattr(load, "_demandlib_h0", no_demandlib)
    cached = load.bdew_h0_kwh_per_kwh(2025)
    load.bdew_h0_kwh_per_kwh.cache_clear()  # later tests get their own
    np.testing.assert_array_equal(computed, direct)
    np.testing.assert_array_equal(cached, direct)
    assert cached.shape == (96 * 365,) and not cached.flags.writeable
    assert abs(cached.sum() - 1.0) < 1e-12


def test_a_cached_window_equals_the_fresh_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("P2PGRID_CACHE_DIR", "off")
    fresh = source().window(0, 2).generation_kwh
    assert fresh.max() > 1.0  # a June day with 4 and 7.5 kWp: there is PV to cache
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    first = source().window(0, 2).generation_kwh  # computes and stores
    assert len(entries(tmp_path)) == 1
    repeated = source()
    cached = repeated.window(0, 2).generation_kwh  # reads
    assert "_pv" not in vars(repeated) and "_sky" not in vars(repeated)  # never built
    np.testing.assert_allclose(cached, fresh, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(first, fresh)


@pytest.mark.parametrize(
    "other", [{"seed": 4}, {"tilt": 30.0}, {"latitude": 48.1}], ids=["seed", "tilt", "site"]
)
def test_an_input_that_changes_the_generation_changes_the_key(tmp_path, monkeypatch, other) -> None:
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    base = source().window(0, 1).generation_kwh
    changed = source(**other).window(0, 1).generation_kwh
    assert len(entries(tmp_path)) == 2
    assert not np.array_equal(base, changed)
    source().window(1, 1)  # another window of the same run: its own entry
    assert len(entries(tmp_path)) == 3


def test_a_corrupt_entry_is_recomputed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    fresh = source().window(0, 1).generation_kwh
    (entry,) = entries(tmp_path)
    entry.write_bytes(b"not an npy file")
    again = source()
    np.testing.assert_array_equal(again.window(0, 1).generation_kwh, fresh)
    assert "_pv" in vars(again)  # it had to compute
    np.testing.assert_array_equal(np.load(entry), fresh)  # and rewrote the entry


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(blocker))
    generation = source().window(0, 1).generation_kwh
    assert generation.shape == (96, 3)
    assert profile_cache.load("anything", (96, 3)) is None


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    assert profile_cache.cache_dir() == tmp_path / f"profiles-v{profile_cache.CACHE_VERSION}"
    monkeypatch.setenv("P2PGRID_CACHE_DIR", "OFF")
    assert profile_cache.cache_dir() is None
    monkeypatch.delenv("P2PGRID_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert profile_cache.cache_dir() == (
        tmp_path / "xdg" / "p2pgrid" / f"profiles-v{profile_cache.CACHE_VERSION}"
    )


def test_key_reads_array_contents_dtype_and_shape() -> None:
    a = np.arange(4.0)
    assert profile_cache.key(x=a) == profile_cache.key(x=a.copy())
    assert profile_cache.key(x=a) != profile_cache.key(x=a + 1e-15 * (a == 3))
    assert profile_cache.key(x=a) != profile_cache.key(x=a.reshape(2, 2))
    assert profile_cache.key(x=a) != profile_cache.key(x=a.astype(np.float32))
    assert profile_cache.key(x=1, y=2) == profile_cache.key(y=2, x=1)


def test_a_window_over_the_size_limit_is_not_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("P2PGRID_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(profile_cache, "MAX_ENTRY_BYTES", 96 * 3 * 8)  # one day fits
    source().window(0, 1)
    assert len(entries(tmp_path)) == 1
    source().window(0, 2)  # 2 days x 96 x 3 float64: over the limit
    assert len(entries(tmp_path)) == 1


def test_prune_deletes_the_least_recently_used(tmp_path) -> None:
    import os

    for age, name in enumerate(["new", "middle", "old"]):
        path = tmp_path / f"{name}.npy"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1e9 - age, 1e9 - age))
    profile_cache.prune(tmp_path, limit=250)
    assert sorted(p.stem for p in tmp_path.glob("*.npy")) == ["middle", "new"]
    profile_cache.prune(tmp_path, limit=100)
    assert [p.stem for p in tmp_path.glob("*.npy")] == ["new"]


def test_prune_deletes_partial_writes_older_than_an_hour(tmp_path) -> None:
    import os
    import time

    stale, fresh = tmp_path / "a.tmp", tmp_path / "b.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half a file")
    os.utime(stale, (time.time() - 3700, time.time() - 3700))
    profile_cache.prune(tmp_path)
    assert [p.name for p in tmp_path.glob("*.tmp")] == ["b.tmp"]
