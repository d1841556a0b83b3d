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
    """Accumulated wall time and number of the calls of some functions (wrapped on the
    class or module that holds them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner: object, name: str, label: str) -> None:
        fn: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, name, timed)


def measure(households: int, days: int, timer: Timer) -> tuple[float, int, dict[str, float]]:
    """Wall time [s], intervals and timed parts of the stressed period for ``households``
    (``lp_solves``: the clearing LP's solves, run and baseline)."""
    timer.seconds.clear()
    timer.calls.clear()
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
    return wall, n_int, {**timer.seconds, "lp_solves": float(timer.calls.get("lp", 0))}


def verdict(name: str, ratio: float, lo: int, hi: int, judged: bool = True) -> str:
    """One line: the ratio hi/lo of ``name``, against the target where it is judged (the
    10k/1k pair of a cost per interval)."""
    if not judged:
        mark = "for information"
    elif (lo, hi) != (1000, 10000):
        mark = f"target <= {TARGET_RATIO:.0f}x is for 10k/1k"
    else:
        mark = f"target <= {TARGET_RATIO:.0f}x: {'PASS' if ratio <= TARGET_RATIO else 'MISS'}"
    return f"  {name:<22s} {ratio:6.1f}x   ({mark})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--days", type=int, default=14, help="days of each season")
    args = parser.parse_args()

    from grid.clearing_model import ClearingModel
    from scenarios.engine import runner
    from scenarios.engine.grid_stage import GridStage

    timer = Timer()
    timer.wrap(runner, "simulate", "loop")
    timer.wrap(GridStage, "check", "grid")
    timer.wrap(GridStage, "recheck", "grid")
    timer.wrap(ClearingModel, "solve", "lp")
    timer.wrap(ClearingModel, "__init__", "build")
    timer.wrap(ClearingModel, "start", "build")
    # imports and first-use caches are paid once here, not by the first N
    measure(50, 1, timer)
    rows: dict[int, dict[str, float]] = {}
    print(f"ieee33, grid check pyomo, full PV, {args.days} summer + {args.days} winter days")
    print(
        "per interval: the whole run (loading the feeder, simulation loop, report), the\n"
        "simulation loop, its grid stage (check, re-clearing, recheck) and the clearing LP\n"
        "in it; 'a year' = the run's fixed part + 35040 x the loop's per interval"
    )
    for n in args.households:
        wall, n_int, parts = measure(n, args.days, timer)
        row = {k: 1e3 * parts.get(k, 0.0) / n_int for k in ("loop", "grid", "lp")}
        row["run"] = 1e3 * wall / n_int
        solves = parts["lp_solves"]
        row["solves"] = solves
        row["per_solve"] = 1e3 * parts.get("lp", 0.0) / max(solves, 1.0)
        rows[n] = row
        fixed_s = (wall - parts.get("loop", 0.0)) / len(PERIODS)
        year_s = fixed_s + row["loop"] * 35040 / 1e3
        print(
            f"{n:6d} households: run {row['run']:7.2f} ms, loop {row['loop']:7.2f} ms, "
            f"grid stage {row['grid']:7.2f} ms ({100 * row['grid'] / row['loop']:4.1f} % of the "
            f"loop), clearing LP {row['lp']:6.2f} ms ({solves:.0f} solves of "
            f"{row['per_solve']:5.2f} ms); model builds {parts.get('build', 0.0):5.2f} s in all; "
            f"a year ≈ {year_s:6.0f} s"
        )
    lo, hi = min(rows), max(rows)
    if hi > lo:
        print(f"ratio {hi}/{lo}, for {hi / lo:.0f}x the households:")
        for key, name in (
            ("run", "whole run /interval"),
            ("loop", "loop /interval"),
            ("grid", "grid stage /interval"),
            ("lp", "clearing LP /interval"),
            ("per_solve", "clearing LP /solve"),
            ("solves", "LP solves (count)"),
        ):
            judged = key not in ("per_solve", "solves")
            print(verdict(name, rows[hi][key] / max(rows[lo][key], 1e-12), lo, hi, judged))
        print(
            "  (on the same feeder more intervals break a limit and are re-cleared at more "
            "households: the LP per interval is its cost per solve times the solves)"
        )


if __name__ == "__main__":
    main()
