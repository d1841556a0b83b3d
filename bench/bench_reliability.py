"""Reliability window cost (market/reliability.py): one interval's update per household
count and window length (O(n): independent of the window), the ledger slot's size per
household once packed, and the time to rebuild a window from saved slots (a restart).

    python bench/bench_reliability.py [--households 1000,5000,20000] [--window 96]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from live.ledger import pack
from market.reliability import Conduct, Reliability, slot_from_json, slot_to_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", default="1000,5000,20000")
    ap.add_argument("--window", type=int, default=96)
    ap.add_argument("--intervals", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    print(f"window {args.window} intervals, {args.intervals} updates each")
    print("households  update_ms  slot_bytes/household  rebuild_ms")
    for n in (int(x) for x in args.households.split(",")):
        r = Reliability(n, args.window)
        metered = rng.normal(size=(8, n))
        committed = metered + rng.normal(scale=0.1, size=(8, n))
        conduct = Conduct(rng.random(n) < 0.05, rng.integers(0, 2, n))
        began = time.perf_counter()
        for i in range(args.intervals):
            r.update(metered[i % 8], committed[i % 8], conduct)
        update_ms = (time.perf_counter() - began) / args.intervals * 1e3
        saved = slot_to_json(r.last_slot)
        size = len(pack({"t": 0, "reliability": saved})) / n
        began = time.perf_counter()
        rebuilt = Reliability(n, args.window)
        for _ in range(args.window):
            rebuilt.push(slot_from_json(saved, n))
        rebuild_ms = (time.perf_counter() - began) * 1e3
        print(f"{n:10d}  {update_ms:9.3f}  {size:20.1f}  {rebuild_ms:10.1f}")


if __name__ == "__main__":
    main()
