"""Benchmark: what heat pumps cost the batch engine (issue 14).

1,000 households, 60 % of them with a heat pump in a 1R1C building, × one year of 15-min
intervals, grid check off, against the same run without heat pumps (same seed, same
community otherwise; every results file and the report written in both). Target: the
heat-pump run takes at most 1.5× the time of the run without.

    python bench/bench_heat_pumps.py                 # 1,000 × 365 days
    python bench/bench_heat_pumps.py --days 14       # a quick run

A small warm-up run of each variant first, so that neither timed run pays for imports
and first-call caches. Wall and CPU time of this process are both printed: on a shared
machine the CPU ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.config.schema import Scenario

TARGET_RATIO = 1.5


def _scenario(households: int, days: int, heat_pump_share: float) -> Scenario:
    return load_scenario(
        {
            "name": "bench-heat-pumps",
            "simulation": {"start": "2026-01-01", "days": days, "seed": 1},
            "community": {"households": households, "heat_pump_share": heat_pump_share},
            "grid": {"check": "off"},
        }
    )


def _timed(scenario: Scenario) -> tuple[float, float]:
    """Wall and CPU seconds of one run into a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        run(scenario, Path(tmp))
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--share", type=float, default=0.6, help="heat-pump share")
    args = parser.parse_args()

    for share in (0.0, args.share):
        _timed(_scenario(20, 1, share))
    without = _timed(_scenario(args.households, args.days, 0.0))
    with_hp = _timed(_scenario(args.households, args.days, args.share))
    n_t = _scenario(args.households, args.days, 0.0).simulation.n_intervals
    full = args.households >= 1000 and args.days >= 365
    print(
        f"households × intervals : {args.households} × {n_t} = {args.households * n_t:,}"
        f" household-intervals, grid check off{'' if full else ' (not the full size)'}"
    )
    print(f"without heat pumps     : {without[0]:8.1f} s wall, {without[1]:8.1f} s CPU")
    label = f"with {args.share:.0%} heat pumps"
    print(f"{label:<23}: {with_hp[0]:8.1f} s wall, {with_hp[1]:8.1f} s CPU")
    wall_ratio, cpu_ratio = with_hp[0] / without[0], with_hp[1] / without[1]
    verdict = "PASS" if wall_ratio <= TARGET_RATIO else "MISS"
    print(
        f"ratio                  : {wall_ratio:8.2f} × wall, {cpu_ratio:8.2f} × CPU "
        f"(target ≤ {TARGET_RATIO} ×: {verdict})"
    )


if __name__ == "__main__":
    main()
