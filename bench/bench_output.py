"""Benchmark: results size, bytes per household-interval of ``agents.parquet``.

Target (issue 18 item 5): under 20 bytes per household-interval with agents = "full".

    python bench/bench_output.py                       # 100 households × 7 days, no grid
    python bench/bench_output.py --households 300 --days 28
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.results.schema import AGENTS_FILE

TARGET_BYTES = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    scenario = load_scenario(
        {
            "name": "bench-output",
            "simulation": {"start": "2026-06-01", "days": args.days, "seed": 1},
            "community": {"households": args.households},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(scenario, out)
        agents_bytes = (out / AGENTS_FILE).stat().st_size
        total_bytes = sum(p.stat().st_size for p in out.iterdir())
    hi = args.households * scenario.simulation.n_intervals
    per_hi = agents_bytes / hi
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"household-intervals     : {hi:,} ({args.households} × {scenario.simulation.n_intervals})"
    )
    print(f"agents.parquet          : {agents_bytes:,} B = {per_hi:.1f} B per household-interval")
    print(f"all files               : {total_bytes / hi:.1f} B per household-interval")
    print(f"ratio to target (<{TARGET_BYTES:.0f} B) : {per_hi / TARGET_BYTES:.2f}")
    print(f"peak RSS                : {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
