"""Benchmark: a parameter sweep on Dask, 1 worker against 2 workers.

32 one-week variants on ``ieee33`` with 200 households
(``scenarios/library/sweeps/ieee33-week.toml``: PV share × batteries × V2G × mechanism),
run once on a one-worker and once on a two-worker local cluster, each into a fresh
directory (nothing reused). Prints both wall times, the speed-up (target ≥ 1.7× on 2
workers, issue 7) and the peak resident memory of the worker processes.

    python bench/bench_sweep.py                       # the full benchmark
    python bench/bench_sweep.py --days 1              # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from scenarios.studies.dask_cluster import local_cluster_client
from scenarios.studies.sweep import run_sweep
from scenarios.studies.sweep_file import load_sweep
from scenarios.studies.sweep_variants import SweepSpec

SWEEP = (
    Path(__file__).resolve().parents[1] / "scenarios" / "library" / "sweeps" / "ieee33-week.toml"
)
TARGET_SPEEDUP = 1.7


def timed_sweep(spec: SweepSpec, workers: int, out: Path) -> tuple[float, pd.DataFrame]:
    """Wall time of the whole sweep on a fresh local cluster (cluster start excluded)."""
    client = local_cluster_client(workers)
    try:
        client.wait_for_workers(workers)
        started = time.perf_counter()
        result = run_sweep(spec, out, client=client, report=False)
        wall = time.perf_counter() - started
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    if result.failed:
        raise SystemExit(f"variants failed: {result.failed}")
    return wall, result.table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="override simulation.days")
    parser.add_argument("--households", type=int, default=None)
    args = parser.parse_args()
    sets = []
    if args.days:
        sets.append(f"simulation.days={args.days}")
    if args.households:
        sets.append(f"community.households={args.households}")
    spec = load_sweep(SWEEP, sets)
    n = len(spec.points())
    base = spec.base
    print(
        f"sweep {spec.name}: {n} variants, {base['community']['households']} households × "
        f"{base['simulation']['days']} days on {base['grid']['feeder']} "
        f"(grid check {base['grid']['check']})"
    )
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for workers in (1, 2):
            wall, table = timed_sweep(spec, workers, Path(tmp) / f"w{workers}")
            walls[workers] = wall
            peak = table["peak_rss_mb"].max()
            per_variant = table["wall_time_s"]
            # the share of the variants' wall time their worker had a CPU for: below 1
            # when other processes compete for the cores
            cpu_share = table["cpu_time_s"].sum() / per_variant.sum()
            print(
                f"{workers} worker(s): {wall:7.1f} s wall, {n / wall * 60:5.1f} variants/min, "
                f"variant {per_variant.mean():.2f} s mean ({per_variant.min():.2f}–"
                f"{per_variant.max():.2f}), CPU/wall in variants {cpu_share:.2f}, "
                f"worker peak RSS {peak:,.0f} MB"
            )
    speedup = walls[1] / walls[2]
    verdict = "meets" if speedup >= TARGET_SPEEDUP else "misses"
    print(f"speed-up on 2 workers: {speedup:.2f}× ({verdict} the {TARGET_SPEEDUP}× target)")


if __name__ == "__main__":
    main()
