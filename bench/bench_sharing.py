"""Benchmark of the energy-sharing allocation keys (``market.sharing.clear_sharing``).

Run with ``python bench/bench_sharing.py [--quick]``. A community of 10,000 members (fixed
seed): 30 % with a net surplus (lognormal around 1 kWh), the others a net demand, one
order each, owners the member rows; static shares 1 / members; with ``+priority`` the
first 100 members form a priority group. Prints the median and 90th percentile wall time
per interval's allocation for every key, the target of issue 16 (10,000 members under
5 ms per interval) and the ratio to the uniform auction (``clear_uniform``) on the same
community's book (limit prices uniform in [0.08, 0.32]).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from market.sharing import SharingRule, clear_sharing
from market.uniform import clear_uniform

SEED = 20260601
MEMBERS = 10_000
TARGET_S = 5e-3


def community(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """One interval's book: buy and sell energies, limit prices and owners."""
    net = rng.lognormal(0.0, 0.8, n) * np.where(rng.random(n) < 0.3, 1.0, -1.0)
    buy, sell = np.flatnonzero(net < 0), np.flatnonzero(net > 0)
    prices = rng.uniform(0.08, 0.32, n)
    return -net[buy], prices[buy], net[sell], prices[sell], buy, sell


def timed(call: Callable[[], object], repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        call()
        out[i] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    repeats = 20 if parser.parse_args().quick else 200
    rng = np.random.default_rng(SEED)
    bq, bp, sq, sp, bo, so = community(rng, MEMBERS)
    shares = np.full(MEMBERS, 1.0 / MEMBERS)
    priority = (np.arange(MEMBERS) >= 100).astype(np.int64)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {MEMBERS} members")
    auction = timed(lambda: clear_uniform(bq, bp, sq, sp, buy_owner=bo, sell_owner=so), repeats)
    base = float(np.median(auction))
    print(f"{'uniform auction':28s} median {base * 1e3:7.3f} ms")
    for key in ("proportional", "equal", "static"):
        for label, prio in (("", None), ("+priority", priority)):
            rule = SharingRule(key=key, price_per_kwh=0.15, shares=shares, priority=prio)

            def allocation(r: SharingRule = rule) -> object:
                return clear_sharing(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=r)

            t = timed(allocation, repeats)
            med, p90 = float(np.median(t)), float(np.quantile(t, 0.9))
            verdict = "ok" if med < TARGET_S else "OVER"
            print(
                f"{'sharing:' + key + label:28s} median {med * 1e3:7.3f} ms  p90 "
                f"{p90 * 1e3:7.3f} ms  target < {TARGET_S * 1e3:.0f} ms {verdict}  "
                f"ratio to uniform {med / base:5.2f}"
            )


if __name__ == "__main__":
    main()
