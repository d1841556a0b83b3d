"""Benchmark: growth of the grid-checked engine in the number of households (issue 18).

1k, 5k and 10k households on ieee33 with the grid check, full PV, over a stressed period
(``--days`` summer days from July 1 plus as many winter days from January 12; default 14
each, i.e. 2 summer + 2 winter weeks). Prints, per N, the wall time per interval, the
grid stage's share (time in the grid stage's check and recheck), the clearing LP's share
(time in :meth:`grid.clearing_model.ClearingModel.solve`; the LP is part of the grid
stage) and the time spent building clearing models (once per run and its baseline, part of
the grid stage), the projected wall time of a year; then the ratios 10k/1k of the whole
run, of the grid stage and of the LP per interval, each against the target of at most 12x
(issue 18 judges the run and the grid stage; the LP's ratio says where the growth is).

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


def verdict(name: str, ratio: float, lo: int, hi: int) -> str:
    """One line: the ratio hi/lo of ``name`` against the target (only 10k/1k is judged)."""
    judged = (lo, hi) == (1000, 10000)
    mark = ("PASS" if ratio <= TARGET_RATIO else "MISS") if judged else "not the 10k/1k pair"
    return f"  {name:<22s} {ratio:6.1f}x   (target <= {TARGET_RATIO:.0f}x: {mark})"


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
    timer.wrap(ClearingModel, "__init__", "build")
    timer.wrap(ClearingModel, "start", "build")
    rows: dict[int, dict[str, float]] = {}
    print(f"ieee33, grid check pyomo, full PV, {args.days} summer + {args.days} winter days")
    for n in args.households:
        wall, n_int, parts = measure(n, args.days, timer)
        row = {k: 1e3 * parts.get(k, 0.0) / n_int for k in ("grid", "lp")}
        row["run"] = 1e3 * wall / n_int
        rows[n] = row
        print(
            f"{n:6d} households: {row['run']:8.2f} ms/interval, grid stage {row['grid']:7.2f} ms "
            f"({100 * row['grid'] / row['run']:4.1f} %), clearing LP {row['lp']:7.2f} ms "
            f"({100 * row['lp'] / row['run']:4.1f} %), clearing model builds "
            f"{parts.get('build', 0.0):5.2f} s in all; a year ≈ {row['run'] * 35040 / 1e3:7.0f} s"
        )
    lo, hi = min(rows), max(rows)
    if hi > lo:
        print(f"ratio {hi}/{lo} per interval, for {hi / lo:.0f}x the households:")
        for key, name in (("run", "whole run"), ("grid", "grid stage"), ("lp", "clearing LP")):
            print(verdict(name, rows[hi][key] / max(rows[lo][key], 1e-12), lo, hi))
        print(
            "  (the grid stage's ratio includes that more intervals break a limit and are "
            "re-cleared at 10k than at 1k on the same feeder)"
        )


if __name__ == "__main__":
    main()
