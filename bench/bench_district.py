"""Benchmark: a district run (issue 18), 1 worker against 2 workers.

``district:100x100`` (100 LV feeders × 100 households = 10,000 households) for 4 weeks
from 2026-06-01 with all grid checks (every LV feeder's LinDistFlow check and re-clearing,
the MV check) and both market levels, run once on a one-worker and once on a two-worker
local Dask cluster, each into a fresh directory. Prints both wall times (cluster start
excluded), the speed-up (target ≥ 1.7× on 2 workers), the CPU time of every worker and of
the driver and the speed-up they imply on two free cores (on a shared machine the wall
times depend on the other load), the projected time of a year (wall time × 365 / days, on 2
workers) and the peak resident memory of each worker process (target < 2 GB) and of the
driver.

    python bench/bench_district.py                      # the full benchmark
    python bench/bench_district.py --days 1             # a quick look
    python bench/bench_district.py --feeders 4 --households 25 --days 1
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scenarios import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.district import run_district
from scenarios.studies.dask_cluster import close_client, local_cluster_client

TARGET_SPEEDUP = 1.7
TARGET_WORKER_GB = 2.0


def _peak_rss_gb() -> float:
    """This process's peak resident memory since the last :func:`_reset_peak` [GB]."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _reset_peak() -> None:
    """Start this process's peak resident memory afresh (Linux: ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


@dataclass
class Timing:
    """One district run on a fresh local cluster: wall time [s], each worker's peak
    resident memory [GB] and CPU time [s], the driver's CPU time [s] and peak [GB]."""

    wall: float
    peaks: list[float]
    cpu: list[float]
    driver_cpu: float
    driver_peak: float


def timed(scenario: Scenario, workers: int, out: Path) -> Timing:
    """Run the district on a fresh cluster of ``workers`` (:class:`Timing`)."""
    client = local_cluster_client(workers)
    try:
        client.wait_for_workers(workers)
        client.run(_reset_peak)
        _reset_peak()
        cpu0 = client.run(_cpu_s)
        driver0 = _cpu_s()
        started = time.perf_counter()
        run_district(scenario, out, client=client)
        wall = time.perf_counter() - started
        driver = _cpu_s() - driver0
        cpu = [v - cpu0[k] for k, v in client.run(_cpu_s).items()]
        peaks = list(client.run(_peak_rss_gb).values())
        driver_peak = _peak_rss_gb()
    finally:
        close_client(client)
    return Timing(wall, peaks, cpu, driver, driver_peak)


def _scenario(n: int, h: int, days: int, block: int | None) -> Scenario:
    return load_scenario(
        {
            "name": "bench-district",
            "simulation": {"start": "2026-06-01", "days": days, "seed": 1},
            "community": {
                "households": n * h,
                "pv_share": 0.5,
                "battery_share": 0.3,
                "ev_share": 0.2,
            },
            "market": {"levels": ["feeder", "district"], "district_block_intervals": block},
            "grid": {"feeder": f"district:{n}x{h}", "check": "pyomo"},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeders", type=int, default=100)
    parser.add_argument("--households", type=int, default=100, help="per LV feeder")
    parser.add_argument("--days", type=int, nargs="+", default=[28], help="one or more")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="cluster sizes")
    parser.add_argument("--block", type=int, default=None, help="[market] district_block_intervals")
    args = parser.parse_args()
    n, h = args.feeders, args.households
    rows: list[tuple[int, int, Timing]] = []
    for days in args.days:
        scenario = _scenario(n, h, days, args.block)
        with tempfile.TemporaryDirectory() as tmp:
            for w in args.workers:
                rows.append((days, w, timed(scenario, w, Path(tmp) / f"w{w}")))
        _report(n, h, days, {w: r for d, w, r in rows if d == days})
    print(f"district:{n}x{h}: peak resident memory by run length [GB]")
    print("days  workers  wall s   per worker        driver")
    for days, w, r in rows:
        peaks = ", ".join(f"{p:.2f}" for p in r.peaks)
        print(f"{days:4d}  {w:7d}  {r.wall:7.1f}  {peaks:16s}  {r.driver_peak:.2f}")
    worst = max(p for _, _, r in rows for p in r.peaks)
    print(f"largest worker peak {worst:.2f} GB (target < {TARGET_WORKER_GB} GB: ratio "
          f"{worst / TARGET_WORKER_GB:.2f})")  # fmt: skip


def _report(n: int, h: int, days: int, runs: dict[int, Timing]) -> None:
    print(f"district:{n}x{h} ({n * h} households) x {days} days, grid checks on")
    for w, r in runs.items():
        cpu = ", ".join(f"{c:.1f}" for c in r.cpu)
        print(f"{w} worker(s)            : {r.wall:9.1f} s, CPU s {cpu} "
              f"(driver {r.driver_cpu:.1f})")  # fmt: skip
    if 1 in runs and 2 in runs:
        one, two = runs[1], runs[2]
        speedup = one.wall / two.wall
        print(f"speed-up on 2 workers  : {speedup:9.2f}x (target >= {TARGET_SPEEDUP}x: "
              f"ratio {speedup / TARGET_SPEEDUP:.2f})")  # fmt: skip
        # what 2 workers would give on 2 free cores: the longer worker plus the driver's
        # serial part, against 1 worker plus its driver part
        free = (one.cpu[0] + one.driver_cpu) / (max(two.cpu) + two.driver_cpu)
        print(f"speed-up on free cores : {free:9.2f}x (from CPU times; the machine is shared)")
        print(f"projected year, 2 wkrs : {two.wall * 365 / days / 3600:9.2f} h")
    for w, r in runs.items():
        peaks = ", ".join(f"{p:.2f}" for p in r.peaks)
        print(f"peak RSS, {w} worker(s)  : {peaks} GB per worker "
              f"(target < {TARGET_WORKER_GB} GB), driver {r.driver_peak:.2f} GB")  # fmt: skip


if __name__ == "__main__":
    main()
