"""District files: an MV grid with several LV feeders under its buses, in the feeder file
format of :mod:`grid.feeder_files` (JSON, or a CSV pair ``buses.csv`` + ``lines.csv``).

A district file is a feeder file whose records carry a ``feeder`` key (a ``feeder`` column
in CSV):

- records without ``feeder`` (an empty cell, or ``"mv"``) are the **MV grid**: its buses,
  its lines and its HV/MV transformer; the file's ``slack_bus`` (CSV: the ``slack``
  column) and ``v_slack_pu`` are the MV grid's. MV buses host no households
  (``household_bus`` may be false, not true); their ``base_p_kw`` / ``base_q_kvar`` are
  the MV grid's background load.
- records with ``feeder = "<id>"`` belong to **LV feeder** ``<id>`` (ids in the order they
  first appear). Bus labels are the feeder's own: two LV feeders may both have a bus
  ``"lv"``; an LV feeder's lines join its own buses. Exactly one bus of each LV feeder
  has ``mv_bus = "<label of an MV bus>"``: that bus *is* the MV bus (same ``vn_kv``), the
  LV feeder's slack, from which its MV/LV transformer leaves. ``household_bus`` defaults
  to true on its other buses.

Every other key is the feeder file's (``x``/``y`` geodata, ``cable`` as a label when
``r_ohm``, ``x_ohm`` and ``s_max_kva`` are given). Every problem is collected and raised
as one :class:`~grid.errors.FeederError` naming the file, the record (``buses[4]``,
``lines.csv row 7``), the key and the value. :func:`write_district_file` writes a
:class:`~grid.district.District` in this format; reading it back gives the same tables.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grid.errors import FeederError
from grid.feeder_files import RawFile, assemble, read_records

if TYPE_CHECKING:
    from grid.district import District
    from grid.feeders import Feeder

MV_ID = "mv"
_BUS_OUT = ["bus", "vn_kv", "base_p_kw", "base_q_kvar", "household_bus", "x", "y"]
_TRAFO_OUT = ["sn_kva", "vk_percent", "vkr_percent", "pfe_kw", "i0_percent"]
_LINE_OUT = ["r_ohm", "x_ohm", "s_max_kva", "length_km", "cable"]


def is_district_file(path: str | Path) -> bool:
    """True when ``path`` is a JSON file or CSV pair with a ``feeder`` key or column
    (reads the JSON, or only the header line of ``buses.csv`` / ``lines.csv``)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        recs = [*doc.get("buses", []), *doc.get("lines", [])] if isinstance(doc, dict) else []
        return any(isinstance(r, dict) and "feeder" in r for r in recs)
    directory = p if p.is_dir() else p.parent
    for name in ("buses.csv", "lines.csv"):
        try:
            with open(directory / name, encoding="utf-8", newline="") as fh:
                header = next(csv.reader(fh), [])
        except (OSError, UnicodeDecodeError):
            continue
        if "feeder" in (h.strip() for h in header):
            return True
    return False


def read_district_file(path: str | Path) -> District:
    """Read and validate a district file (module docstring).

    Raises
    ------
    FeederError
        Listing every problem, each with its file, record, key and value.
    """
    from grid.district import District

    raw = read_records(path)
    src = raw.src
    if not raw.is_district():
        raise FeederError(
            [f"{src}: not a district file: no bus or line has a 'feeder' key (it is a feeder)"],
            src,
        )
    problems = list(raw.problems)
    groups: dict[str, tuple[list[Any], ...]] = {MV_ID: ([], [], [], [])}
    for side, recs, wheres in ((0, raw.buses, raw.bus_where), (2, raw.lines, raw.line_where)):
        for rec, where in zip(recs, wheres, strict=True):
            if not isinstance(rec, dict):
                problems.append(f"{where}: must be an object, got {rec!r:.60}")
                continue
            fid = str(rec.get("feeder", MV_ID)).strip() or MV_ID
            g = groups.setdefault(fid, ([], [], [], []))
            g[side].append({k: v for k, v in rec.items() if k != "feeder"})
            g[side + 1].append(where)
    clean = replace(raw, problems=[])
    mb, mbw, ml, mlw = groups.pop(MV_ID)
    mv = _mv_part(clean, mb, mbw, ml, mlw, problems)
    mv_pos = {} if mv is None else {b: i for i, b in enumerate(mv.buses["bus"])}
    feeders: list[Feeder] = []
    ids: list[str] = []
    at: list[int] = []
    for fid, (buses, bw, lines, lw) in groups.items():
        if not buses:
            problems.append(f"{src}: LV feeder {fid!r} has lines ({lw[0]}, ...) but no buses")
            continue
        marked = [(r, w) for r, w in zip(buses, bw, strict=True) if "mv_bus" in r]
        if len(marked) != 1:
            places = ", ".join(w for _, w in marked) or "none"
            problems.append(
                f"{src}: LV feeder {fid!r}: {len(marked)} buses have mv_bus ({places}); "
                "exactly one must (the MV bus the feeder hangs on, its slack)"
            )
            continue
        rec, where = marked[0]
        mv_label = str(rec["mv_bus"])
        if mv is not None and mv_label not in mv_pos:
            problems.append(f"{where}.mv_bus: {mv_label!r} is not one of the MV buses")
            continue
        try:
            f = assemble(clean, buses, lines, bw, lw, name=f"{raw.name}/{fid}",
                         slack=str(rec.get("bus")), v_slack=1.0,
                         extra_keys=frozenset({"mv_bus"}))  # fmt: skip
        except FeederError as exc:
            problems += [f"LV feeder {fid!r}: {p}" for p in exc.problems]
            continue
        if mv is not None:
            vn_mv = float(mv.buses["vn_kv"].iloc[mv_pos[mv_label]])
            vn = float(f.buses["vn_kv"].iloc[f.slack_bus])
            if vn != vn_mv:
                problems.append(
                    f"{where}.vn_kv: {vn:g} differs from MV bus {mv_label!r}'s {vn_mv:g} kV "
                    "(the bus with mv_bus is that MV bus)"
                )
            at.append(mv_pos[mv_label])
        feeders.append(f)
        ids.append(fid)
    if not ids and not problems:
        problems.append(f"{src}: no LV feeders (records with feeder = '<id>')")
    if problems or mv is None:
        raise FeederError(problems, src)
    try:
        return District(str(raw.name), mv, tuple(feeders), tuple(ids), np.array(at, np.int64))
    except FeederError as exc:
        raise FeederError([f"{src}: {p}" for p in exc.problems], src) from None


def _mv_part(
    raw: RawFile, buses: list[Any], bw: list[str], lines: list[Any], lw: list[str],
    problems: list[str],
) -> Feeder | None:  # fmt: skip
    """The MV grid of a district file (its households flag checked, then set so that
    :func:`grid.feeders.build_feeder` accepts a grid without households, and cleared)."""
    if not buses:
        problems.append(f"{raw.src}: no MV buses (records without 'feeder' are the MV grid)")
        return None
    n0 = len(problems)
    for rec, where in zip(buses, bw, strict=True):
        if "mv_bus" in rec:
            problems.append(f"{where}.mv_bus: only an LV feeder's bus names the MV bus it is")
        if str(rec.get("household_bus", "false")).strip().lower() not in {"false", "0", "no"}:
            problems.append(
                f"{where}.household_bus: {rec['household_bus']!r}: MV buses host no households "
                "(they sit on the LV feeders' buses)"
            )
    if len(problems) > n0:
        return None
    flagged = [dict(r, household_bus=True) for r in buses]
    try:
        mv = assemble(raw, flagged, lines, bw, lw, name=f"{raw.name}/{MV_ID}")
    except FeederError as exc:
        problems += [f"MV grid: {p}" for p in exc.problems]
        return None
    return replace(mv, buses=mv.buses.assign(household_bus=False))


def district_records(district: District) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bus and line records of ``district`` in the district file format."""
    mv_lab = district.mv.buses["bus"].tolist()
    buses: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    parts = [(MV_ID, district.mv, -1)]
    parts += [(fid, f, int(b)) for fid, f, b in
              zip(district.feeder_ids, district.feeders, district.mv_bus, strict=True)]  # fmt: skip
    for fid, f, mb in parts:
        tag = {} if fid == MV_ID else {"feeder": fid}
        lab = f.buses["bus"].tolist()
        for i, row in enumerate(f.buses.to_dict("records")):
            rec = tag | {k: row[k] for k in _BUS_OUT if k in row and _given(row[k])}
            rec["household_bus"] = bool(rec["household_bus"])
            if fid == MV_ID and i == f.slack_bus:
                rec["slack"] = True
            if fid != MV_ID and i == f.slack_bus:
                rec["mv_bus"] = mv_lab[mb]
            buses.append(rec)
        for row in f.lines.to_dict("records"):
            keys = _TRAFO_OUT if row["kind"] == "trafo" else _LINE_OUT
            lines.append(
                tag
                | {"line": row["line"], "from_bus": lab[int(row["from_bus"])],
                   "to_bus": lab[int(row["to_bus"])], "kind": row["kind"]}
                | {k: row[k] for k in keys if _given(row[k])}
            )  # fmt: skip
    return buses, lines


def _given(v: Any) -> bool:
    return not (v is None or (isinstance(v, float) and math.isnan(v)))


def write_district_file(district: District, path: str | Path) -> Path:
    """Write ``district`` as a district file: JSON when ``path`` ends in ``.json``, else a
    CSV pair in the directory ``path`` (created). Returns ``path``."""
    p = Path(path)
    buses, lines = district_records(district)
    if p.suffix.lower() == ".json":
        slack = next(b["bus"] for b in buses if b.pop("slack", False))
        doc = {"name": district.name, "slack_bus": slack,
               "v_slack_pu": district.mv.v_slack_pu, "buses": buses, "lines": lines}  # fmt: skip
        p.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        return p
    if district.mv.v_slack_pu != 1.0:
        raise FeederError(
            [f"{p}: a CSV pair has no v_slack_pu (the MV slack is at 1.0 p.u.); write JSON"],
            str(p),
        )
    p.mkdir(parents=True, exist_ok=True)
    for name, recs in (("buses", buses), ("lines", lines)):
        cols = list(dict.fromkeys(["feeder", *(k for r in recs for k in r)]))
        with open(p / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows({k: _cell(v) for k, v in r.items()} for r in recs)
    return p


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)
