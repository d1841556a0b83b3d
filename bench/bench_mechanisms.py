"""Benchmark of the market mechanisms' array cores (issue 4).

Run with ``python bench/bench_mechanisms.py [--quick]``. Prints each mechanism's median
and 90th-percentile wall time per clearing on random books of 1,000, 10,000 and
100,000 orders (fixed seed, half bids and half asks, prices uniform in
[0.08, 0.32] EUR/kWh, energies lognormal around 1 kWh), its ratio to the uniform-price
auction on the same books, and PASS/MISS against the targets of issue 4 at 10,000
orders: ``pay_as_bid`` and ``mcafee`` median < 5 ms, ``cda`` < 100 ms.

Every timed call gets a freshly drawn book (and the CDA a fresh seeded arrival order).
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np
from bench_market import fmt_seconds, time_calls  # same folder

from market.mechanisms import ARRAY_MECHANISMS

SEED = 20260601
SIZES = (1_000, 10_000, 100_000)
TARGETS: dict[tuple[str, int], float] = {
    ("pay_as_bid", 10_000): 5e-3,
    ("mcafee", 10_000): 5e-3,
    ("cda", 10_000): 100e-3,
}


def random_book(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """A random book of `n` orders as the four arrays of the array cores."""
    n_buy = n // 2
    n_sell = n - n_buy
    return (
        rng.lognormal(0.0, 0.8, n_buy),
        rng.uniform(0.08, 0.32, n_buy),
        rng.lognormal(0.0, 0.8, n_sell),
        rng.uniform(0.08, 0.32, n_sell),
    )


def runs_for(n: int, quick: bool) -> int:
    runs = 200 if n <= 1_000 else 50 if n <= 10_000 else 10
    return max(3, runs // 5) if quick else runs


def time_mechanism(name: str, n: int, runs: int) -> np.ndarray:
    """Wall time [s] of `runs` clearings, each of a new book (drawn untimed).

    The CDA's arrival order comes from its own generator per run, seeded by (size, run).
    """
    core = ARRAY_MECHANISMS[name]
    rng = np.random.default_rng([SEED, n])
    runs_done = iter(range(runs + 1))

    def make() -> tuple:
        return (*random_book(rng, n), np.random.default_rng([SEED, n, next(runs_done)]))

    return time_calls(make, core, runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs per size")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {platform.machine()}")
    header = f"{'mechanism':<11} {'orders':>8} {'median':>11} {'p90':>11} {'x uniform':>9}  target"
    print(header)
    print("-" * len(header))
    missed = 0
    for n in SIZES:
        runs = runs_for(n, args.quick)
        uniform_times = time_mechanism("uniform", n, runs)
        uniform = float(np.median(uniform_times))
        for name in ARRAY_MECHANISMS:
            times = uniform_times if name == "uniform" else time_mechanism(name, n, runs)
            median = float(np.median(times))
            p90 = float(np.percentile(times, 90))
            target = TARGETS.get((name, n))
            verdict = ""
            if target is not None:
                ok = median < target
                missed += not ok
                verdict = f"< {fmt_seconds(target).strip()}  {'PASS' if ok else 'MISS'}"
            ratio = median / uniform
            print(
                f"{name:<11} {n:>8,} {fmt_seconds(median)} {fmt_seconds(p90)} "
                f"{ratio:>8.1f}x  {verdict}"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
