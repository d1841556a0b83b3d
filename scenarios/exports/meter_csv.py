"""The per-member, per-interval energy of a run as CSV files a metering operator or a
supplier could bill from (``p2pgrid export DIR --format csv``).

Layout (written into the export directory):

- ``members/<agent_id>/<YYYY-MM>.csv``: one file per member and calendar month (the
  month in the scenario's timezone), one row per interval of the run in that month;
- ``community.csv``: one row per interval of the run, the members' sums;
- ``layout.json``: this layout, machine-readable: timezone, interval length, each
  column's unit and meaning, the files written, and for a sharing run the contract
  (``sharing``: the scenario's ``[market.sharing]`` without the shares table, and per
  member its static ``share`` — null under a dynamic key —, ``priority_group``, 0 served
  first, and ``load``, the load shape).

Every file: UTF-8, comma-separated, a header row, ``.`` as decimal point, energies in
kWh at full float precision (the shortest decimal that reads back as the same float,
so ``1.5e-7`` may appear; they round-trip to the results files' values), nothing quoted,
rows in time order. Columns (:data:`COLUMNS`):

- ``start``, ``end``: the interval's start and end, ISO 8601 local time in the
  scenario's timezone *with its UTC offset* (``2026-10-25T02:00:00+02:00`` and, an hour
  later, ``2026-10-25T02:00:00+01:00``), so the clock change is unambiguous: a
  spring-forward day has 92 quarter hours, a fall-back day 100;
- ``consumption_kwh``: the energy the member drew through its meter (the metered
  withdrawal) = ``allocated_kwh + residual_supply_kwh``;
- ``allocated_kwh``: of it, the energy allocated to it from the community (bought
  peer to peer: ``bought_p2p_kwh``);
- ``residual_supply_kwh``: the rest, supplied by its supplier (``grid_import_kwh``);
- ``injection_kwh``: the energy it put out through its meter = ``shared_kwh +
  feed_in_kwh``;
- ``shared_kwh``: of it, what was allocated to other members (sold peer to peer:
  ``sold_p2p_kwh``);
- ``feed_in_kwh``: the rest, fed in to the grid and paid at the feed-in tariff
  (``grid_export_kwh``).

``community.csv`` has the same columns, each the sum over the members (there
``allocated_kwh`` equals ``shared_kwh``: every allocation is one member's share), and
``members``, the number of members.

This is not the Austrian EDA layout (the ebUtilities ``CR_MSG`` energy-data messages
with their meter codes): their published definitions could not be checked here, so no
such format is offered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from scenarios.config.loader import validate_scenario
from scenarios.engine.sharing import member_terms
from scenarios.errors import ScenarioError
from scenarios.results.agents_missing import no_agents_table
from scenarios.results.blocks import read_blocks
from scenarios.results.files import ResultsFileError
from scenarios.results.schema import AGENTS_FILE, HOUSEHOLDS_FILE, INTERVALS_FILE

MEMBERS_DIR = "members"
COMMUNITY_FILE = "community.csv"
LAYOUT_FILE = "layout.json"

#: column: (unit, what) — the layout's columns after ``start`` and ``end``
COLUMNS: dict[str, tuple[str, str]] = {
    "consumption_kwh": ("kWh", "metered withdrawal = allocated_kwh + residual_supply_kwh"),
    "allocated_kwh": ("kWh", "energy allocated from the community (bought_p2p_kwh)"),
    "residual_supply_kwh": ("kWh", "energy from the member's supplier (grid_import_kwh)"),
    "injection_kwh": ("kWh", "metered injection = shared_kwh + feed_in_kwh"),
    "shared_kwh": ("kWh", "injection allocated to other members (sold_p2p_kwh)"),
    "feed_in_kwh": ("kWh", "injection fed in at the feed-in tariff (grid_export_kwh)"),
}
_SOURCES = {
    "allocated_kwh": "bought_p2p_kwh",
    "residual_supply_kwh": "grid_import_kwh",
    "shared_kwh": "sold_p2p_kwh",
    "feed_in_kwh": "grid_export_kwh",
}
_READ = ["t", "agent_id", *_SOURCES.values()]


@dataclass
class Export:
    """What an export wrote."""

    out_dir: Path
    timezone: str
    interval_minutes: int
    contract: dict[str, Any] | None = None
    """A sharing run's contract as ``layout.json`` gives it; None for an auction."""
    member_files: list[Path] = field(default_factory=list)
    community_file: Path | None = None
    layout_file: Path | None = None


def _energy(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The layout's energy columns from agents.parquet's."""
    v = {name: frame[src].to_numpy(dtype=np.float64) for name, src in _SOURCES.items()}
    return {
        "consumption_kwh": v["allocated_kwh"] + v["residual_supply_kwh"],
        "allocated_kwh": v["allocated_kwh"],
        "residual_supply_kwh": v["residual_supply_kwh"],
        "injection_kwh": v["shared_kwh"] + v["feed_in_kwh"],
        "shared_kwh": v["shared_kwh"],
        "feed_in_kwh": v["feed_in_kwh"],
    }


def _contract(scenario_data: dict[str, Any], ids: list[str]) -> dict[str, Any] | None:
    """A sharing run's contract and each member's terms (module docstring)."""
    try:
        scenario = validate_scenario(scenario_data)
    except ScenarioError as exc:
        raise ResultsFileError(
            f"manifest.json: the scenario as run does not validate: {exc}"
        ) from None
    if not scenario.market.is_sharing:
        return None
    terms = member_terms(scenario, ids)
    share, group, load = terms["share"], terms["priority"], terms["load"]
    return {
        "sharing": scenario.market.sharing.model_dump(mode="json", exclude={"shares"}),
        "members": {
            a: {
                "share": None if np.isnan(share[i]) else float(share[i]),
                "priority_group": int(group[i]),
                "load": str(load[i]),
            }
            for i, a in enumerate(ids)
        },
    }


def _read_run(run_dir: Path) -> tuple[pd.Series, list[str], str, int, dict[str, Any]]:
    """Interval starts (tz-aware), member ids, timezone, interval length, and the
    scenario as run (the manifest's)."""
    why = no_agents_table(run_dir, "the meter export")
    if why is not None:
        raise ResultsFileError(why)
    for name in (INTERVALS_FILE, AGENTS_FILE, HOUSEHOLDS_FILE, "manifest.json"):
        if not (run_dir / name).is_file():
            raise ResultsFileError(f"{run_dir}: no {name} (not a results directory of a run?)")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    simulation = manifest["scenario"]["simulation"]
    tz, minutes = str(simulation["timezone"]), int(simulation["interval_minutes"])
    intervals = pd.read_parquet(run_dir / INTERVALS_FILE, columns=["t", "timestamp"])
    if not (intervals["t"].to_numpy() == np.arange(len(intervals))).all():
        raise ResultsFileError(f"{INTERVALS_FILE}: t is not 0, 1, 2, … in order")
    starts = intervals["timestamp"]
    if starts.dt.tz is None:
        raise ResultsFileError(f"{INTERVALS_FILE}: timestamps carry no timezone")
    ids = pd.read_parquet(run_dir / HOUSEHOLDS_FILE, columns=["agent_id"])["agent_id"]
    return starts.dt.tz_convert(tz), list(ids.astype(str)), tz, minutes, manifest["scenario"]


def _months(starts: pd.Series) -> np.ndarray:
    """Each interval's local calendar month as ``YYYY-MM``."""
    return starts.dt.strftime("%Y-%m").to_numpy()


def _month_frames(
    run_dir: Path, month_of_t: np.ndarray, members: int
) -> Iterator[tuple[str, pd.DataFrame]]:
    """agents.parquet one local month at a time (its rows in order of t), so a year of
    many members never sits in memory whole."""
    pending: list[pd.DataFrame] = []
    current: str | None = None
    last_t = -1
    for batch in read_blocks(run_dir / AGENTS_FILE, _READ):
        frame = batch.to_pandas()
        t = frame["t"].to_numpy()
        if len(t) and (t[0] < last_t or (np.diff(t) < 0).any()):
            raise ResultsFileError(f"{AGENTS_FILE}: rows are not in order of t")
        if len(t) and t[-1] >= len(month_of_t):
            raise ResultsFileError(f"{AGENTS_FILE}: t {t[-1]} beyond {INTERVALS_FILE}")
        last_t = int(t[-1]) if len(t) else last_t
        month = month_of_t[t]
        for m in dict.fromkeys(month):
            part = frame[month == m]
            if current is not None and m != current:
                yield current, pd.concat(pending, ignore_index=True)
                pending = []
            current = m
            pending.append(part)
    if current is not None:
        yield current, pd.concat(pending, ignore_index=True)


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """One file of the layout: the header line, then the rows (Arrow's writer: floats
    in their shortest round-trip form, nothing quoted; a -0.0 is written as 0)."""
    table = pa.table({k: v + 0.0 if v.dtype.kind == "f" else v for k, v in columns.items()})
    with path.open("wb") as handle:
        handle.write((",".join(columns) + "\n").encode("utf-8"))
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, handle, options)


def _interval_columns(starts: pd.Series, minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """``start`` and ``end`` strings per interval (ISO 8601 with the UTC offset)."""
    ends = starts + pd.Timedelta(minutes=minutes)
    iso = pd.Timestamp.isoformat
    return starts.map(iso).to_numpy(), ends.map(iso).to_numpy()


def export_csv(run_dir: str | Path, out_dir: str | Path) -> Export:
    """Write the layout of the module docstring for the run in ``run_dir``.

    Raises
    ------
    ResultsFileError
        When ``run_dir`` lacks a results file, or agents.parquet does not hold one row
        per member and interval in order of t.
    """
    run = Path(run_dir)
    starts, ids, tz, minutes, scenario = _read_run(run)
    where = {a: i for i, a in enumerate(ids)}
    start_s, end_s = _interval_columns(starts, minutes)
    month_of_t = _months(starts)
    out = Path(out_dir)
    (out / MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    result = Export(out, tz, minutes, _contract(scenario, ids))
    n, n_t = len(ids), len(starts)
    community = {name: np.zeros(n_t) for name in COLUMNS}
    seen = np.zeros(n_t, dtype=np.int64)
    for month, frame in _month_frames(run, month_of_t, n):
        agent = frame["agent_id"].astype(str).map(where)
        if agent.isna().any():
            raise ResultsFileError(f"{AGENTS_FILE}: a member households.parquet lacks")
        rows = agent.to_numpy(dtype=np.int64)
        t = frame["t"].to_numpy(dtype=np.int64)
        energy = _energy(frame)
        np.add.at(seen, t, 1)
        for name, values in energy.items():
            community[name] += np.bincount(t, values, n_t)
        order = np.lexsort((t, rows))
        rows, t = rows[order], t[order]
        bounds = np.searchsorted(rows, np.arange(n + 1))
        month_t = np.flatnonzero(month_of_t == month)
        for i, member in enumerate(ids):
            lo, hi = bounds[i], bounds[i + 1]
            if not np.array_equal(t[lo:hi], month_t):
                raise ResultsFileError(
                    f"{AGENTS_FILE}: member {member} lacks intervals (or has some twice) in {month}"
                )
            path = out / MEMBERS_DIR / member / f"{month}.csv"
            path.parent.mkdir(exist_ok=True)
            _write_csv(
                path,
                {
                    "start": start_s[t[lo:hi]],
                    "end": end_s[t[lo:hi]],
                    **{name: energy[name][order[lo:hi]] for name in COLUMNS},
                },
            )
            result.member_files.append(path)
    if not (seen == n).all():
        raise ResultsFileError(f"{AGENTS_FILE}: not one row per member in every interval")
    result.community_file = out / COMMUNITY_FILE
    _write_csv(
        result.community_file,
        {"start": start_s, "end": end_s, "members": np.full(n_t, n), **community},
    )
    result.layout_file = out / LAYOUT_FILE
    result.layout_file.write_text(
        json.dumps(_layout(result, run), indent=2) + "\n", encoding="utf-8"
    )
    return result


def _layout(export: Export, run_dir: Path) -> dict[str, Any]:
    """``layout.json``: the layout of the module docstring, and what was written."""
    return {
        "format": "p2pgrid-meter-csv",
        "version": 1,
        "run": str(run_dir.resolve()),
        "timezone": export.timezone,
        "interval_minutes": export.interval_minutes,
        "timestamps": "ISO 8601 local time in the timezone, with its UTC offset",
        "delimiter": ",",
        "decimal": ".",
        "member_files": f"{MEMBERS_DIR}/<agent_id>/<YYYY-MM>.csv (month in the timezone)",
        "community_file": COMMUNITY_FILE,
        "columns": {
            "start": {"unit": "", "what": "interval start"},
            "end": {"unit": "", "what": "interval end"},
            **{name: {"unit": unit, "what": what} for name, (unit, what) in COLUMNS.items()},
        },
        "community_columns": {"members": {"unit": "count", "what": "members summed"}},
        "files": [str(p.relative_to(export.out_dir)) for p in export.member_files]
        + [COMMUNITY_FILE],
        "contract": export.contract,
    }
