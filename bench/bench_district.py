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
from pathlib import Path

from scenarios import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.district import run_district
from scenarios.studies.dask_cluster import close_client, local_cluster_client

TARGET_SPEEDUP = 1.7
TARGET_WORKER_GB = 2.0


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def timed(
    scenario: Scenario, workers: int, out: Path
) -> tuple[float, list[float], list[float], float]:
    """Wall time of the district run on a fresh local cluster, each worker's peak
    resident memory [GB] and CPU time of the run [s], and the driver's CPU time [s]."""
    client = local_cluster_client(workers)
    try:
        client.wait_for_workers(workers)
        cpu0 = client.run(_cpu_s)
        driver0 = _cpu_s()
        started = time.perf_counter()
        run_district(scenario, out, client=client)
        wall = time.perf_counter() - started
        driver = _cpu_s() - driver0
        cpu = [v - cpu0[k] for k, v in client.run(_cpu_s).items()]
        peaks = list(client.run(_peak_rss_gb).values())
    finally:
        close_client(client)
    return wall, peaks, cpu, driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeders", type=int, default=100)
    parser.add_argument("--households", type=int, default=100, help="per LV feeder")
    parser.add_argument("--days", type=int, default=28)
    args = parser.parse_args()
    n, h = args.feeders, args.households
    scenario = load_scenario(
        {
            "name": "bench-district",
            "simulation": {"start": "2026-06-01", "days": args.days, "seed": 1},
            "community": {
                "households": n * h,
                "pv_share": 0.5,
                "battery_share": 0.3,
                "ev_share": 0.2,
            },
            "market": {"levels": ["feeder", "district"]},
            "grid": {"feeder": f"district:{n}x{h}", "check": "pyomo"},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        one, peaks1, cpu1, drv1 = timed(scenario, 1, Path(tmp) / "one")
        two, peaks2, cpu2, drv2 = timed(scenario, 2, Path(tmp) / "two")
    speedup = one / two
    year = two * 365 / args.days
    worst = max(peaks1 + peaks2)
    print(f"district:{n}x{h} ({n * h} households) x {args.days} days, grid checks on")
    print(f"1 worker               : {one:9.1f} s")
    print(f"2 workers              : {two:9.1f} s")
    print(f"speed-up on 2 workers  : {speedup:9.2f}x (target >= {TARGET_SPEEDUP}x: "
          f"ratio {speedup / TARGET_SPEEDUP:.2f})")  # fmt: skip
    print(f"CPU s, 1 worker        : {cpu1[0]:9.1f} (driver {drv1:.1f})")
    print(f"CPU s, 2 workers       : {', '.join(f'{c:.1f}' for c in cpu2)} (driver {drv2:.1f})")
    # what 2 workers would give on 2 free cores: the longer worker plus the driver's serial
    # part, against 1 worker plus its driver part
    free = (cpu1[0] + drv1) / (max(cpu2) + drv2)
    print(f"speed-up on free cores : {free:9.2f}x (from CPU times; the machine is shared)")
    print(f"projected year, 2 wkrs : {year / 3600:9.2f} h")
    print(f"peak RSS per worker    : {', '.join(f'{p:.2f}' for p in peaks1 + peaks2)} GB "
          f"(target < {TARGET_WORKER_GB} GB: ratio {worst / TARGET_WORKER_GB:.2f})")  # fmt: skip
    print(f"peak RSS of the driver : {_peak_rss_gb():9.2f} GB")


if __name__ == "__main__":
    main()
