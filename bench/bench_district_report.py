"""The district report's memory against the run's size (issue 18: the report is computed
from streamed files, so its memory must not grow with feeders x intervals).

Runs ``district:<N>x<H>`` (all grid checks, both market levels) for each case, then renders
its report.html in a fresh process and prints the render's time and its extra memory: the
peak of Python and NumPy allocations during the render (tracemalloc) plus the peak of
Arrow's memory pool (what Parquet reads allocate), and how much the process's peak RSS
grew over its peak before rendering (imports, scenario and district loaded). The target:
the largest case (4x the feeders x 4x the intervals of the smallest) needs at most 1.5x
the smallest's extra memory.

    python bench/bench_district_report.py [--households 4] [--small 4x2] [--large 16x8]

(``--small`` / ``--large``: feeders x days.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RENDER = """
import json, resource, sys, time, tracemalloc
import pyarrow as pa
from grid.district_networks import load_district
from scenarios import load_scenario
from scenarios.reports.district_report import write_district_report
out = sys.argv[1]
scenario = load_scenario(json.load(open(out + "/manifest.json"))["scenario"])
district = load_district(scenario.grid.feeder)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
arrow_before = pa.default_memory_pool().max_memory()
tracemalloc.start()
started = time.perf_counter()
write_district_report(out, scenario, district)
wall = time.perf_counter() - started
traced = tracemalloc.get_traced_memory()[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
arrow = pa.default_memory_pool().max_memory() - arrow_before
print(json.dumps({"wall_s": wall, "extra_mb": (traced + arrow) / 2**20,
                  "python_mb": traced / 2**20, "arrow_mb": arrow / 2**20,
                  "rss_grew_mb": (after - before) / 1024, "peak_mb": after / 1024}))
"""


def _case(feeders: int, days: int, households: int, root: Path) -> dict[str, float]:
    from scenarios import load_scenario
    from scenarios.engine.district import run_district

    scenario = load_scenario(
        {
            "name": f"bench-report-{feeders}x{days}",
            "simulation": {"start": "2026-06-15", "days": days, "seed": 1},
            "community": {"households": feeders * households, "profiles": "synthetic",
                          "pv_share": 0.5, "battery_share": 0.3, "ev_share": 0.2},
            "grid": {"feeder": f"district:{feeders}x{households}", "check": "pyomo"},
            "market": {"levels": ["feeder", "district"]},
        }
    )  # fmt: skip
    out = root / f"{feeders}x{days}"
    started = time.perf_counter()
    run_district(scenario, out)
    run_s = time.perf_counter() - started
    done = subprocess.run(
        [sys.executable, "-c", RENDER, str(out)], capture_output=True, text=True, check=True
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in out.rglob("*.parquet")) / 2**20
    return {"run_s": run_s, "files_mb": size, **figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=4, help="households per LV feeder")
    ap.add_argument("--small", default="4x2", help="feeders x days of the small case")
    ap.add_argument("--large", default="16x8", help="feeders x days of the large case")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in (args.small, args.large):
            feeders, days = (int(x) for x in label.split("x"))
            rows[label] = r = _case(feeders, days, args.households, Path(tmp))
            print(
                f"{feeders} feeders x {days} days ({feeders * args.households} households): "
                f"run {r['run_s']:.1f} s, parquet files {r['files_mb']:.1f} MB; report "
                f"{r['wall_s']:.2f} s, extra {r['extra_mb']:.1f} MB (Python/NumPy "
                f"{r['python_mb']:.1f} MB + Arrow {r['arrow_mb']:.1f} MB), peak RSS "
                f"{r['peak_mb']:.0f} MB (+{r['rss_grew_mb']:.1f} MB while rendering)"
            )
    small, large = rows[args.small], rows[args.large]
    grow = large["extra_mb"] / small["extra_mb"]
    sf, sd = (int(x) for x in args.small.split("x"))
    lf, ld = (int(x) for x in args.large.split("x"))
    print(
        f"feeders x intervals grew {lf * ld / (sf * sd):.0f}x; the report's extra memory "
        f"{grow:.2f}x (target <= 1.5x: ratio {grow / 1.5:.2f}); files grew "
        f"{large['files_mb'] / small['files_mb']:.1f}x"
    )


if __name__ == "__main__":
    main()
