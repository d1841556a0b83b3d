"""Why a results directory has no agents.parquet, for the readers that need one row per
household and interval (the meter export, the dashboard's run view): a run written with
``[output] agents = "daily"`` or ``"none"`` (README "The outputs") is a complete run, not a
broken directory, and the message says so and how to get the table."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.results.files import MANIFEST_FILE
from scenarios.results.schema import AGENTS_DAILY_FILE, AGENTS_FILE

_WROTE = {
    "daily": f"it wrote {AGENTS_DAILY_FILE}, one row per household and day",
    "none": "it kept only the members' totals, in kpis.json",
}


def agents_mode(out: Path) -> str | None:
    """The ``[output] agents`` mode the run in ``out`` was written with (its manifest's
    scenario; ``"daily"`` where only agents_daily.parquet is there), or None if unknown."""
    try:
        manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
        mode = manifest["scenario"]["output"]["agents"]
    except (OSError, ValueError, KeyError, TypeError):
        mode = None
    if mode is None and (out / AGENTS_DAILY_FILE).is_file():
        mode = "daily"
    return str(mode) if mode is not None else None


def no_agents_table(out: str | Path, needed_by: str) -> str | None:
    """The message for ``out`` without agents.parquet because of its ``[output] agents``
    mode (``needed_by``: what needs the table), or None: the file is there, or the mode
    does not explain its absence."""
    out = Path(out)
    if (out / AGENTS_FILE).is_file():
        return None
    mode = agents_mode(out)
    if mode not in _WROTE:
        return None
    return (
        f'{out}: no {AGENTS_FILE}: the run was written with [output] agents = "{mode}" '
        f"({_WROTE[mode]}), not the full agents table (one row per household and interval) "
        f'that {needed_by} needs; re-run it with [output] agents = "full"'
    )
