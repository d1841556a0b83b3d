"""One variant of a sweep (or one probe of a hosting-capacity search), run as a worker
task into its own directory and marked complete.

``done.json`` is written (atomically, by rename) only after
``run`` has written every results file; it records the SHA-256 fingerprint of the
variant's scenario. A re-run skips every variant whose ``done.json`` matches its
scenario and reruns the others from scratch (a variant cut off half-way, one that
failed, or one whose scenario changed). Failures — an invalid value in the grid, or an
exception in the run — are recorded with their error text in ``kpis.parquet`` and
``variants/<id>/error.txt``; they never stop the other variants.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import socket
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scenarios.config.schema import Scenario
from scenarios.results.files import KPIS_FILE, write_json

DONE_FILE = "done.json"
ERROR_FILE = "error.txt"
SCENARIO_FILE = "scenario.yaml"


def fingerprint(scenario: Scenario) -> str:
    """SHA-256 of the scenario's canonical JSON: what ``done.json`` vouches for."""
    return hashlib.sha256(scenario.model_dump_json().encode("utf-8")).hexdigest()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def is_complete(variant_dir: Path, scenario: Scenario) -> bool:
    """Whether ``variant_dir`` holds the finished results of ``scenario``."""
    marker = variant_dir / DONE_FILE
    if not marker.is_file():
        return False
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return done.get("fingerprint") == fingerprint(scenario) and (variant_dir / KPIS_FILE).is_file()


def run_variant(variant_id: str, scenario_data: Mapping[str, Any], out_dir: str) -> dict[str, Any]:
    """Run one variant into ``out_dir`` (a worker task; never raises).

    The directory is emptied first, so nothing of an earlier, unfinished attempt is
    left; ``done.json`` is written last.

    Returns
    -------
    dict
        ``variant``, ``status`` (ok | failed), ``error`` (text or None),
        ``wall_time_s``, ``cpu_time_s`` (CPU time of the run), ``peak_rss_mb`` of the
        worker process, ``worker``.
    """
    from scenarios.engine.runner import run

    started = time.perf_counter()
    cpu_started = time.process_time()
    out = Path(out_dir)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        scenario = Scenario.model_validate(dict(scenario_data))
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / SCENARIO_FILE).write_text(
            yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        result = run(scenario, out)
        wall = time.perf_counter() - started
        info = {
            "variant": variant_id,
            "fingerprint": fingerprint(scenario),
            "wall_time_s": wall,
            "cpu_time_s": time.process_time() - cpu_started,
            "peak_rss_mb": _peak_rss_mb(),
            "worker": worker,
        }
        tmp = out / (DONE_FILE + ".tmp")
        write_json(info, tmp)
        tmp.replace(out / DONE_FILE)
        return {**info, "status": "ok", "error": None, "run_wall_time_s": result.wall_time_s}
    except Exception as exc:  # a failing variant must not end the sweep
        error = f"{type(exc).__name__}: {exc}"
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / ERROR_FILE).write_text(error + "\n\n" + traceback.format_exc(), "utf-8")
        except OSError:
            pass
        return {
            "variant": variant_id,
            "status": "failed",
            "error": error,
            "wall_time_s": time.perf_counter() - started,
            "peak_rss_mb": _peak_rss_mb(),
            "worker": worker,
        }
