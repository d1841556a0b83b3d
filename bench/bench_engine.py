"""Benchmark: the batch engine, N households × D days of 15-min intervals.

Targets on a 2-core machine, 1,000 households × one year (35 million
household-intervals, all results files written):
- without the grid (issue 2): under 60 s, peak memory under 4 GB;
- with the grid check on ieee33 (issue 3): under 120 s.

    python bench/bench_engine.py                          # no grid, 1,000 × 365 days
    python bench/bench_engine.py --check pyomo            # ieee33 feeder in the loop
    python bench/bench_engine.py --households 200 --days 30
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from scenarios import load_scenario, run

TARGET_S = {"off": 60.0, "pyomo": 120.0, "pyomo+ac": float("inf")}
TARGET_PEAK_GB = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--check", choices=("off", "pyomo", "pyomo+ac"), default="off")
    parser.add_argument("--feeder", default="ieee33")
    parser.add_argument("--out", type=Path, default=None, help="keep the results here")
    args = parser.parse_args()

    scenario = load_scenario(
        {
            "name": "bench-engine",
            "simulation": {"start": "2026-01-01", "days": args.days, "seed": 1},
            "community": {"households": args.households},
            "grid": {"check": args.check, "feeder": args.feeder},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run(scenario, out)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    hi = args.households * scenario.simulation.n_intervals
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    full = args.households >= 1000 and args.days >= 365
    target = TARGET_S[args.check]
    grid = f"grid check {args.check}" + (f" on {args.feeder}" if args.check != "off" else "")
    print(
        f"households × intervals : {args.households} × {scenario.simulation.n_intervals}"
        f" = {hi:,} household-intervals, {grid}"
    )
    print(
        f"wall time              : {wall:8.1f} s   (target < {target:.0f} s for 1,000 × 1 "
        f"year: {'PASS' if wall < target else 'MISS'}{'' if full else ', not the full size'})"
    )
    print(
        f"CPU time of this process: {cpu:7.1f} s   (on a shared machine, the wall time "
        f"without contention is close to it)"
    )
    print(f"throughput             : {hi / wall:,.0f} household-intervals/s")
    print(
        f"peak memory (RSS)      : {peak_gb:8.2f} GB (target < {TARGET_PEAK_GB:.0f} GB: "
        f"{'PASS' if peak_gb < TARGET_PEAK_GB else 'MISS'})"
    )
    k = result.kpis
    print(f"traded                 : {k['p2p_kwh']:,.0f} kWh")
    if args.check != "off":
        print(
            f"re-cleared intervals   : {k['recleared_intervals']:,} of "
            f"{scenario.simulation.n_intervals:,}; violation hours {k['violation_hours']:,.1f};"
            f" curtailed {k['curtailed_kwh']:,.0f} kWh"
        )
    for name, size in sorted(sizes.items()):
        print(f"  {name:20s} {size / 1e6:10.1f} MB")


if __name__ == "__main__":
    main()
