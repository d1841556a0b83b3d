"""Benchmark of the uniform-price clearing: ``market.clear`` and ``clear_uniform``.

Run with ``python bench/bench_market.py [--quick]``. Prints the median and 90th
percentile wall time per call on random books of 100 to 1,000,000 orders (fixed seed,
half bids and half asks, prices uniform in [0.08, 0.32] EUR/kWh, energies lognormal
around 1 kWh, agent ids drawn from a pool of 5,000 households), next to the targets
of issue 2 (``market.clear``: 10,000 orders median < 2 ms, 1,000,000 orders < 0.5 s)
and the engine's budget for the array core (1,000 orders < 100 us, one call per
15-min interval).

Every timed call gets a freshly drawn book, so that the sorts do not run on data the
CPU's branch predictor has already seen.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

import market
from market.uniform import clear_uniform

SEED = 20260601
SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
# (function, orders) -> target median [s]
TARGETS: dict[tuple[str, int], float] = {
    ("market.clear", 10_000): 2e-3,
    ("market.clear", 1_000_000): 0.5,
    ("clear_uniform", 1_000): 100e-6,
}
AGENTS = np.array([f"h{i:04d}" for i in range(5_000)], dtype=object)


def random_orders(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A random book of `n` orders as the DataFrame that ``market.clear`` takes."""
    return pd.DataFrame(
        {
            "agent_id": AGENTS[rng.integers(0, AGENTS.shape[0], n)],
            "side": np.where(rng.random(n) < 0.5, "buy", "sell").astype(object),
            "energy_kwh": rng.lognormal(0.0, 0.8, n),
            "price_per_kwh": rng.uniform(0.08, 0.32, n),
        }
    )


def random_arrays(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random book of `n` orders as the four arrays of ``clear_uniform``."""
    n_buy = n // 2
    n_sell = n - n_buy
    return (
        rng.lognormal(0.0, 0.8, n_buy),
        rng.uniform(0.08, 0.32, n_buy),
        rng.lognormal(0.0, 0.8, n_sell),
        rng.uniform(0.08, 0.32, n_sell),
    )


def runs_for(n: int, quick: bool) -> int:
    runs = 300 if n <= 1_000 else 100 if n <= 10_000 else 20 if n <= 100_000 else 5
    return max(3, runs // 5) if quick else runs


def time_calls(make: Callable[[], tuple], call: Callable[..., object], runs: int) -> np.ndarray:
    """Wall time [s] of `runs` calls, each on a new input from `make` (untimed).

    As ``timeit``, the garbage collector is off while timing (a collection right
    before each call would also flush the CPU caches and add ~0.2 ms per call here).
    """
    call(*make())  # warm-up
    times = np.empty(runs)
    gc.collect()
    gc.disable()
    try:
        for k in range(runs):
            args = make()
            start = time.perf_counter()
            call(*args)
            times[k] = time.perf_counter() - start
    finally:
        gc.enable()
    return times


def fmt_seconds(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:8.1f} us"
    if t < 1.0:
        return f"{t * 1e3:8.2f} ms"
    return f"{t:8.3f} s "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs per size")
    args = parser.parse_args(argv)

    print(
        f"p2pgrid market benchmark  python {platform.python_version()}  "
        f"numpy {np.__version__}  pandas {pd.__version__}  {platform.machine()}"
    )
    header = (
        f"{'function':<14} {'orders':>10} {'runs':>5} {'median':>11} {'p90':>11} "
        f"{'per order':>10} {'target':>11} {'ratio':>6}  status"
    )
    print(header)
    print("-" * len(header))
    missed = 0
    cases: dict[str, tuple[Callable[[np.random.Generator, int], tuple], Callable[..., object]]] = {
        "market.clear": (lambda rng, n: (random_orders(rng, n),), market.clear),
        "clear_uniform": (random_arrays, clear_uniform),
    }
    for name, (make, call) in cases.items():
        rng = np.random.default_rng(SEED)
        for n in SIZES:
            times = time_calls(partial(make, rng, n), call, runs_for(n, args.quick))
            median = float(np.median(times))
            p90 = float(np.percentile(times, 90))
            target = TARGETS.get((name, n))
            if target is None:
                target_txt, ratio_txt, status = f"{'-':>11}", f"{'':>6}", ""
            else:
                ok = median < target
                missed += not ok
                target_txt = "<" + fmt_seconds(target)[1:]
                ratio_txt = f"{median / target:6.2f}"
                status = "PASS" if ok else "MISS"
            print(
                f"{name:<14} {n:>10,} {len(times):>5} {fmt_seconds(median)} {fmt_seconds(p90)} "
                f"{median / n * 1e9:>7.0f} ns {target_txt} {ratio_txt}  {status}"
            )
    print("ratio = median / target;", "all targets met" if not missed else f"{missed} missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
