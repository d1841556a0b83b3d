"""Benchmark: growth of the grid-checked engine in the number of households (issue 18).

1k, 5k and 10k households on ieee33 with the grid check, full PV, over a stressed period
(``--days`` summer days from July 1 plus as many winter days from January 12; default 14
each, i.e. 2 summer + 2 winter weeks). Prints, per N, the wall time per interval, the
grid's share (time in the grid stage's check and recheck) and the clearing LP's share
(time in :meth:`grid.clearing_model.ClearingModel.solve`), the ratio 10k/1k against the
target of at most 12x, and the projected wall time of a year.

    python bench/bench_growth.py                       # 1k, 5k, 10k × (14 + 14) days
    python bench/bench_growth.py --days 2 --households 1000 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenarios import load_scenario, run

TARGET_RATIO = 12.0
PERIODS = (("summer", "2026-07-01"), ("winter", "2026-01-12"))


class Timer:
    """Accumulated wall time of the calls of some methods (wrapped on their class)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, cls: type, name: str, label: str) -> None:
        fn: Callable[..., Any] = getattr(cls, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(cls, name, timed)


def measure(households: int, days: int, timer: Timer) -> tuple[float, int, dict[str, float]]:
    """Wall time [s], intervals and timed parts of the stressed period for ``households``."""
    timer.seconds.clear()
    wall, n_int = 0.0, 0
    for name, start in PERIODS:
        scenario = load_scenario(
            {
                "name": f"bench-growth-{name}",
                "simulation": {"start": start, "days": days, "seed": 1},
                "community": {"households": households, "pv_share": 1.0},
                "grid": {"check": "pyomo", "feeder": "ieee33"},
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run(scenario, Path(tmp))
            wall += time.perf_counter() - t0
        n_int += scenario.simulation.n_intervals
    return wall, n_int, dict(timer.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--days", type=int, default=14, help="days of each season")
    args = parser.parse_args()

    from grid.clearing_model import ClearingModel
    from scenarios.engine.grid_stage import GridStage

    timer = Timer()
    timer.wrap(GridStage, "check", "grid")
    timer.wrap(GridStage, "recheck", "grid")
    timer.wrap(ClearingModel, "solve", "lp")
    per_interval: dict[int, float] = {}
    print(f"ieee33, grid check pyomo, full PV, {args.days} summer + {args.days} winter days")
    for n in args.households:
        wall, n_int, parts = measure(n, args.days, timer)
        ms = 1e3 * wall / n_int
        grid_ms = 1e3 * parts.get("grid", 0.0) / n_int
        lp_ms = 1e3 * parts.get("lp", 0.0) / n_int
        per_interval[n] = ms
        print(
            f"{n:6d} households: {ms:8.2f} ms/interval, grid {grid_ms:7.2f} ms "
            f"({100 * grid_ms / ms:4.1f} %), clearing LP {lp_ms:7.2f} ms "
            f"({100 * lp_ms / ms:4.1f} %); a year ≈ {ms * 35040 / 1e3:7.0f} s"
        )
    lo, hi = min(per_interval), max(per_interval)
    if hi > lo:
        ratio = per_interval[hi] / per_interval[lo]
        print(
            f"ratio {hi}/{lo}: {ratio:.1f}x for {hi / lo:.0f}x the households "
            f"(target <= {TARGET_RATIO:.0f}x for 10k/1k: "
            f"{'PASS' if ratio <= TARGET_RATIO else 'MISS'})"
        )


if __name__ == "__main__":
    main()
