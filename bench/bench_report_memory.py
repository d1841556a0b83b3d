"""Benchmark: peak memory of the report step against the run's length (issue 18 item 5).

Target: the report step's peak RSS (and the whole run's) does not grow with the run's
length: the year's over the week's at most 1.1 (1.0 within noise).

Each run (``--households`` on ``--feeder`` with the grid check, for each of ``--weeks``)
is a fresh process. At the end of the simulation (the last interval's progress call) the
process's peak RSS is read and then reset (Linux ``/proc/self/clear_refs``), so the peak
read at the end of the run is that of the steps after the simulation alone: the KPIs,
the summaries of buses and lines and the report page. Printed per run: the simulation's
peak, the report step's peak (and its rise above the RSS at its start), the whole run's
peak, the size of ``report.html`` and of
``buses.parquet`` + ``lines.parquet``, and the wall time.

    python bench/bench_report_memory.py                              # radial:100 x 100
    python bench/bench_report_memory.py --weeks 1,52 --feeder radial:300 --households 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.engine.malloc import steady_malloc

TARGET_RATIO = 1.1


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _scenario(households: int, days: int, feeder: str) -> dict:
    return {
        "name": "bench-report-memory",
        "simulation": {"start": "2026-01-05", "days": days, "seed": 1},
        "community": {"households": households},
        "grid": {"check": "pyomo", "feeder": feeder},
    }


def child(weeks: int, households: int, feeder: str, default_malloc: bool) -> None:
    """One run: print its peaks as JSON (glibc's allocator held steady as ``p2pgrid``
    holds it, unless ``default_malloc``)."""
    if not default_malloc:
        steady_malloc()
    scenario = load_scenario(_scenario(households, 7 * weeks, feeder))
    peaks: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        if done == total:
            peaks["simulation_mb"] = _status_mb("VmHWM")
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
            peaks["report_start_mb"] = _status_mb("VmRSS")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(scenario, out, progress=progress)
        peaks["report_mb"] = _status_mb("VmHWM")
        # clear_refs resets the kernel's maximum too: the run's peak is the larger phase's
        peaks["run_mb"] = max(peaks["simulation_mb"], peaks["report_mb"])
        peaks["html_mb"] = (out / "report.html").stat().st_size / 2**20
        peaks["buses_lines_mb"] = (
            sum((out / f).stat().st_size for f in ("buses.parquet", "lines.parquet")) / 2**20
        )
    peaks["wall_s"] = time.perf_counter() - started
    print(json.dumps(peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--feeder", default="radial:100")
    parser.add_argument("--weeks", default="1,4,12,52", help="comma-separated")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="glibc's default thresholds (p2pgrid fixes them: scenarios/engine/malloc.py)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.households, args.feeder, args.default_malloc)
        return
    weeks = [int(w) for w in args.weeks.split(",") if w.strip()]
    malloc = "glibc's default" if args.default_malloc else "held steady, as p2pgrid holds it"
    print(
        f"peak RSS, {args.households} households on {args.feeder} (a fresh process per run; "
        f"malloc {malloc}):"
    )
    print("  weeks  simulation  report step (above its start)  whole run  report.html  "
          "buses+lines    wall")  # fmt: skip
    rows = {}
    for w in weeks:
        cmd = [sys.executable, __file__, "--child", str(w)]
        cmd += ["--households", str(args.households), "--feeder", args.feeder]
        cmd += ["--default-malloc"] if args.default_malloc else []
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"  {w:5d}  failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        p = rows[w] = json.loads(done.stdout.strip().splitlines()[-1])
        p["report_rise_mb"] = p["report_mb"] - p["report_start_mb"]
        print(f"  {w:5d}  {p['simulation_mb']:7.0f} MB  {p['report_mb']:8.0f} MB "
              f"({p['report_rise_mb']:+4.0f} MB)          "
              f"{p['run_mb']:6.0f} MB  {p['html_mb']:8.1f} MB  {p['buses_lines_mb']:8.1f} MB  "
              f"{p['wall_s']:5.0f} s")  # fmt: skip
    if len(rows) > 1:
        lo, hi = min(rows), max(rows)
        for key, what in (
            ("report_mb", "report step"),
            ("report_rise_mb", "report rise"),
            ("run_mb", "whole run"),
            ("html_mb", "report.html"),
        ):
            if rows[lo][key] <= 0:
                print(f"{what:12s}: {lo} week(s) at {rows[lo][key]:.0f} MB, no ratio")
                continue
            ratio = rows[hi][key] / rows[lo][key]
            print(f"{what:12s}: {hi} weeks / {lo} week(s) = {ratio:.2f} "
                  f"(target <= {TARGET_RATIO}: {ratio / TARGET_RATIO:.2f} of it)")  # fmt: skip


if __name__ == "__main__":
    main()
