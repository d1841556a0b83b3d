"""Benchmark: results size and the run's memory (issue 18 item 5).

Targets: under 20 bytes per household-interval of ``agents.parquet`` with agents =
"full"; the peak memory of a run does not grow with its length (the report step read
whole buses/lines tables before: 2.2 GB for 300 households × a year on radial:300,
against 370 MB during the simulation).

Part 1 runs ``--households`` × ``--days`` with the feeder check and prints the bytes per
household-interval of agents.parquet (and of every file), and of the other modes'
files. Part 2 runs 300 households on radial:300 for each of ``--weeks`` in a fresh
process each and prints its peak RSS at the end of the simulation and at the end of the
run (report included): flat means the same for 1, 4 and 12 weeks.

    python bench/bench_output.py                          # 100 × 7 days; 1, 4, 12 weeks
    python bench/bench_output.py --weeks 1,4,12,52        # and a year
    python bench/bench_output.py --weeks ""               # size only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.results.schema import AGENTS_DAILY_FILE, AGENTS_FILE

TARGET_BYTES = 20.0


def _scenario(households: int, days: int, agents: str = "full", feeder: str = "") -> dict:
    grid = {"check": "pyomo", **({"feeder": feeder} if feeder else {})}
    return {
        "name": "bench-output",
        "simulation": {"start": "2026-06-01", "days": days, "seed": 1},
        "community": {"households": households},
        "grid": grid,
        "output": {"agents": agents},
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(weeks: int) -> None:
    """One run of 300 households × ``weeks`` on radial:300: print its peaks as JSON."""
    scenario = load_scenario(_scenario(300, 7 * weeks, feeder="radial:300"))
    peaks: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        if done == total:
            peaks["simulation_mb"] = _rss_mb()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run(scenario, Path(tmp), progress=progress)
        peaks["run_mb"] = _rss_mb()
        peaks["buses_lines_mb"] = (
            sum((Path(tmp) / f).stat().st_size for f in ("buses.parquet", "lines.parquet")) / 2**20
        )
    peaks["wall_s"] = time.perf_counter() - started
    print(json.dumps(peaks))


def sizes(households: int, days: int) -> None:
    hi = 0
    for mode, file in (("full", AGENTS_FILE), ("daily", AGENTS_DAILY_FILE), ("none", "")):
        scenario = load_scenario(_scenario(households, days, mode))
        hi = households * scenario.simulation.n_intervals
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            run(scenario, out)
            total = sum(p.stat().st_size for p in out.iterdir() if p.suffix == ".parquet")
            agents = (out / file).stat().st_size if file else 0
        if mode == "full":
            print(f"household-intervals        : {hi:,} ({households} × {days} days, grid check)")
            print(f"agents.parquet             : {agents:,} B = {agents / hi:.1f} B per "
                  "household-interval")  # fmt: skip
            print(f"ratio to target (<{TARGET_BYTES:.0f} B)    : {agents / hi / TARGET_BYTES:.2f}")
        elif mode == "daily":
            print(f"agents_daily.parquet       : {agents:,} B = {agents / hi:.2f} B per "
                  "household-interval")  # fmt: skip
        print(f"all .parquet ({mode:5s})      : {total / hi:.1f} B per household-interval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--weeks", default="1,4,12", help="comma-separated; empty: skip")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sizes(args.households, args.days)
    weeks = [int(w) for w in args.weeks.split(",") if w.strip()]
    if not weeks:
        return
    print("peak RSS, 300 households on radial:300 (a fresh process per run):")
    print("  weeks  simulation  whole run  buses+lines files  wall")
    for w in weeks:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(w)], capture_output=True, text=True
        )
        if done.returncode:
            print(f"  {w:5d}  failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        p = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {w:5d}  {p['simulation_mb']:7.0f} MB  {p['run_mb']:6.0f} MB  "
              f"{p['buses_lines_mb']:10.0f} MB  {p['wall_s']:6.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
