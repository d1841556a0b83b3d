"""Benchmark: start-up of the ``p2pgrid`` command, ``--help`` and ``validate FILE``.

Targets (issue 13): ``p2pgrid --help`` and ``p2pgrid validate FILE`` each under 0.5 s wall
time, the median of N fresh processes (each pays Python's own start-up too). ``validate``
reads the scenario with pydantic and the feeder's name; it imports pandas only for a
feeder file, a SimBench grid or a start that is not an ISO date or timestamp, and never the
solver, the profile generators or the engine (``tests/test_imports.py`` holds that).

    python bench/bench_startup.py            # 7 runs each
    python bench/bench_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenarios" / "library" / "demo.toml"
#: ``python -m p2pgrid.cli`` is what the console script runs (``p2pgrid.cli:main``),
#: without depending on where the script was installed; run from this checkout's root, so
#: that it is this checkout's package that starts.
COMMAND = [sys.executable, "-m", "p2pgrid.cli"]


def wall_times(args: list[str], runs: int) -> list[float]:
    """Wall time of ``runs`` fresh processes running ``p2pgrid ARGS`` (each must exit 0)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*COMMAND, *args], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--file", type=Path, default=DEMO, help="Scenario for validate.")
    opts = parser.parse_args()
    cases = {"--help": ["--help"], "validate": ["validate", str(opts.file)]}
    python = [sys.executable, "-c", "pass"]
    start_times = []
    for _ in range(opts.runs):
        start = time.perf_counter()
        subprocess.run(python, check=True)
        start_times.append(time.perf_counter() - start)
    print(f"python -c pass          median {statistics.median(start_times):.3f} s")
    results = {}
    for name, args in cases.items():
        times = wall_times(args, opts.runs)
        results[name] = statistics.median(times)
        print(
            f"p2pgrid {name:<15} median {results[name]:.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}, {opts.runs} runs)"
        )
    for name, median in results.items():
        verdict = "ok" if median < TARGET_S else "OVER"
        print(f"{name} target {TARGET_S} s: {verdict}")


if __name__ == "__main__":
    main()
