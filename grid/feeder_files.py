"""Reading hand-written feeder files (JSON, or a CSV pair) into a :class:`~grid.feeders.Feeder`.

JSON format (units in the key names; ``"..."`` marks optional keys)::

    {
      "name": "my-street",                       ... default: the file stem
      "slack_bus": "mv",                         ... default: the first bus
      "v_slack_pu": 1.0,                         ... default 1.0
      "buses": [
        {"bus": "mv", "vn_kv": 20.0},
        {"bus": "lv", "vn_kv": 0.4},
        {"bus": "h1", "vn_kv": 0.4, "household_bus": true,
         "base_p_kw": 0.0, "base_q_kvar": 0.0}   ... background load, load positive
      ],
      "lines": [
        {"line": "t1", "from_bus": "mv", "to_bus": "lv", "kind": "trafo",
         "sn_kva": 250, "vk_percent": 4.0, "vkr_percent": 1.3,
         "pfe_kw": 0.6, "i0_percent": 0.3},        ... no-load losses, default 0
        {"line": "l1", "from_bus": "lv", "to_bus": "h1",
         "cable": "NAYY 4x150 SE", "length_km": 0.12},
        {"line": "l2", "from_bus": "...", "to_bus": "...",
         "r_ohm": 0.05, "x_ohm": 0.02, "s_max_kva": 150}
      ]
    }

A line is given either by ``r_ohm``, ``x_ohm`` and ``s_max_kva``, or by a ``cable`` type of
:data:`grid.cables.CABLE_TYPES` and ``length_km``; a transformer (``"kind": "trafo"``) by
``sn_kva``, ``vk_percent`` and ``vkr_percent`` (impedance referred to ``to_bus``), and
optionally its no-load (iron) losses ``pfe_kw`` and magnetising current ``i0_percent``.
``household_bus`` defaults to true for buses other than the slack. A bus may carry geodata
``x`` / ``y`` (longitude, latitude); a line given by ``r_ohm`` etc. may name its ``cable``
as a label. Records with a ``feeder`` key make a district file (:mod:`grid.district_files`).

CSV pair: a directory holding ``buses.csv`` and ``lines.csv`` with the same keys as
columns (empty cell = not given); ``buses.csv`` may have a ``slack`` column (true on one
row), else the first row is the slack.

Every problem in a file is collected and raised as one :class:`~grid.errors.FeederError`,
each line naming the file, the record (``lines[3]`` or ``lines.csv row 4``), the key and
the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grid.cables import CABLE_TYPES, cable_s_max_kva, transformer_impedance_ohm
from grid.errors import FeederError
from grid.feeders import Feeder, build_feeder

_TOP_KEYS = {"name", "slack_bus", "v_slack_pu", "buses", "lines"}
_BUS_KEYS = {"bus", "vn_kv", "base_p_kw", "base_q_kvar", "household_bus", "slack", "x", "y"}
#: Keys of a district file (:mod:`grid.district_files`): on buses and lines, ``mv_bus`` on buses
DISTRICT_KEYS = {"feeder", "mv_bus"}
_LINE_KEYS = {
    "line",
    "from_bus",
    "to_bus",
    "kind",
    "r_ohm",
    "x_ohm",
    "s_max_kva",
    "cable",
    "length_km",
    "sn_kva",
    "vk_percent",
    "vkr_percent",
    "pfe_kw",
    "i0_percent",
}


@dataclass
class RawFile:
    """A feeder file's records before validation (:func:`read_records`), each with the
    place an error names (``<file>: buses[2]``, ``<file> row 3``)."""

    src: str
    name: Any
    slack: Any
    v_slack: Any
    buses: list[Any]
    lines: list[Any]
    bus_where: list[str]
    line_where: list[str]
    problems: list[str]

    def is_district(self) -> bool:
        """True when a record carries a district key (``feeder``, ``mv_bus``)."""
        return any(isinstance(r, dict) and DISTRICT_KEYS & set(r) for r in self.buses + self.lines)


def read_feeder_file(path: str | Path) -> Feeder:
    """Read and validate a JSON feeder file or a CSV pair (directory or its ``buses.csv``).

    Raises
    ------
    FeederError
        Listing every problem found, each with its location and value; a district file
        (records with ``feeder``) is refused: it names a district, not a feeder.
    """
    raw = read_records(path)
    if raw.is_district():
        raise FeederError(
            [
                f"{raw.src}: a district file (records with a 'feeder' key: several LV feeders "
                "under an MV grid); a district needs the district engine "
                "(grid.district_networks.load_district), not a single-feeder run"
            ],
            raw.src,
        )
    return assemble(raw, raw.buses, raw.lines, raw.bus_where, raw.line_where)


def read_records(path: str | Path) -> RawFile:
    """The records of a JSON feeder file or a CSV pair, unvalidated.

    Raises
    ------
    FeederError
        A missing or unreadable file, a top level that is not an object with lists.
    """
    p = Path(path)
    if p.suffix.lower() == ".json":
        return _read_json(p)
    directory = p if p.is_dir() else p.parent
    return _read_csv_pair(directory)


def _read_json(path: Path) -> RawFile:
    src = str(path)
    if not path.is_file():
        raise FeederError([f"{src}: file not found"], src)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeederError([f"{src}: not valid JSON ({exc})"], src) from None
    if not isinstance(doc, dict):
        raise FeederError([f"{src}: the top level must be an object with buses and lines"], src)
    problems = [f"{src}: unknown key {k!r}" for k in sorted(set(doc) - _TOP_KEYS)]
    buses_raw = doc.get("buses")
    lines_raw = doc.get("lines")
    for key, val in (("buses", buses_raw), ("lines", lines_raw)):
        if not isinstance(val, list) or not val:
            problems.append(f"{src}: {key}: must be a non-empty list, got {val!r:.60}")
    if (
        not isinstance(buses_raw, list)
        or not isinstance(lines_raw, list)
        or not buses_raw
        or not lines_raw
    ):
        raise FeederError(problems, src)
    return RawFile(
        src, doc.get("name", path.stem), doc.get("slack_bus"), doc.get("v_slack_pu", 1.0),
        buses_raw, lines_raw, [f"{src}: buses[{i}]" for i in range(len(buses_raw))],
        [f"{src}: lines[{i}]" for i in range(len(lines_raw))], problems,
    )  # fmt: skip


def _read_csv_pair(directory: Path) -> RawFile:
    import pandas as pd  # here: only a CSV feeder needs the reader

    src = str(directory)
    problems: list[str] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in ("buses", "lines"):
        f = directory / f"{name}.csv"
        if not f.is_file():
            problems.append(f"{f}: file not found (a CSV feeder is a buses.csv + lines.csv pair)")
            continue
        try:
            df = pd.read_csv(f, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            problems.append(f"{f}: not a readable CSV file ({exc})")
            continue
        tables[name] = [{k: v for k, v in row.items() if v != ""} for row in df.to_dict("records")]
        if not tables[name]:
            problems.append(f"{f}: has no rows")
    if problems:
        raise FeederError(problems, src)
    buses_raw, lines_raw = tables["buses"], tables["lines"]
    slack = None
    flagged = [b.get("bus") for b in buses_raw if _truthy(b.get("slack"))]
    if len(flagged) > 1:
        problems.append(f"{directory / 'buses.csv'}: slack: true on {len(flagged)} rows {flagged}")
    elif flagged:
        slack = flagged[0]
    # CSV rows are 1-based after the header line
    return RawFile(
        src, directory.name, slack, 1.0, buses_raw, lines_raw,
        [f"{directory / 'buses.csv'} row {i + 1}" for i in range(len(buses_raw))],
        [f"{directory / 'lines.csv'} row {i + 1}" for i in range(len(lines_raw))], problems,
    )  # fmt: skip


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in {"true", "1", "yes"})


def _number(
    rec: dict[str, Any], key: str, where: str, problems: list[str], *, positive: bool,
    default: float | None = None,
) -> float | None:  # fmt: skip
    if key not in rec:
        if default is None:
            problems.append(f"{where}.{key}: missing")
        return default
    v = rec[key]
    try:
        if isinstance(v, bool):
            raise ValueError
        x = float(v)
    except (TypeError, ValueError):
        problems.append(f"{where}.{key}: {v!r} is not a number")
        return None
    if not math.isfinite(x):
        problems.append(f"{where}.{key}: {v!r} is not finite")
        return None
    if positive and x <= 0:
        problems.append(f"{where}.{key}: {v!r} must be > 0")
        return None
    return x


def _bool(rec: dict[str, Any], key: str, where: str, problems: list[str], default: bool) -> bool:
    if key not in rec:
        return default
    v = rec[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return v.strip().lower() in {"true", "1", "yes"}
    problems.append(f"{where}.{key}: {v!r} is not true or false")
    return default


def assemble(
    raw: RawFile,
    buses_raw: list[Any],
    lines_raw: list[Any],
    bus_where: list[str],
    line_where: list[str],
    *,
    name: str | None = None,
    slack: Any = None,
    v_slack: Any = None,
    extra_keys: frozenset[str] = frozenset(),
) -> Feeder:
    """Validate ``buses_raw`` / ``lines_raw`` (records of ``raw``, or a subset of them) and
    build their feeder; ``name``, ``slack`` and ``v_slack`` default to the file's, keys in
    ``extra_keys`` are allowed (and ignored) on the records.

    Raises
    ------
    FeederError
        Every problem of these records and ``raw.problems``, each with its place.
    """
    src = raw.src
    problems = list(raw.problems)
    name = raw.name if name is None else name
    slack = raw.slack if slack is None else slack
    v_slack = raw.v_slack if v_slack is None else v_slack
    v_slack_pu = _number({"v_slack_pu": v_slack}, "v_slack_pu", f"{src}:", problems, positive=True)
    if v_slack_pu is not None and not 0.8 <= v_slack_pu <= 1.2:
        problems.append(f"{src}: v_slack_pu: {v_slack!r} must be between 0.8 and 1.2")
    buses: list[dict[str, Any]] = []
    vn_of: dict[str, float] = {}
    known: set[str] = set()
    first = None
    for rec, where in zip(buses_raw, bus_where, strict=True):
        if not isinstance(rec, dict):
            problems.append(f"{where}: must be an object, got {rec!r:.60}")
            continue
        problems += [f"{where}: unknown key {k!r}"
                     for k in sorted(set(rec) - _BUS_KEYS - extra_keys)]  # fmt: skip
        label = rec.get("bus")
        if label is None or str(label).strip() == "":
            problems.append(f"{where}.bus: missing")
            continue
        label = str(label)
        first = first if first is not None else label
        vn = _number(rec, "vn_kv", where, problems, positive=True)
        bp = _number(rec, "base_p_kw", where, problems, positive=False, default=0.0)
        bq = _number(rec, "base_q_kvar", where, problems, positive=False, default=0.0)
        hh = _bool(rec, "household_bus", where, problems, default=label != str(slack or first))
        known.add(label)
        if vn is not None:
            vn_of[label] = vn
        geo = {k: _number(rec, k, where, problems, positive=False) for k in ("x", "y") if k in rec}
        buses.append(
            {"bus": label, "vn_kv": vn, "base_p_kw": bp, "base_q_kvar": bq, "household_bus": hh}
            | geo
        )
    slack_label = str(slack) if slack is not None else first
    lines: list[dict[str, Any]] = []
    kept_where: list[str] = []
    for rec, where in zip(lines_raw, line_where, strict=True):
        if not isinstance(rec, dict):
            problems.append(f"{where}: must be an object, got {rec!r:.60}")
            continue
        problems += [f"{where}: unknown key {k!r}"
                     for k in sorted(set(rec) - _LINE_KEYS - extra_keys)]  # fmt: skip
        out = _line(rec, where, vn_of, known, problems)
        if out is not None:
            lines.append(out)
            kept_where.append(where)
    if problems:
        raise FeederError(problems, src)
    return build_feeder(
        str(name),
        buses,
        lines,
        slack_bus=str(slack_label),
        v_slack_pu=float(v_slack_pu),  # type: ignore[arg-type]
        line_where=kept_where,
        source=src,
    )


def _line(
    rec: dict[str, Any],
    where: str,
    vn_of: dict[str, float],
    known: set[str],
    problems: list[str],
) -> dict[str, Any] | None:
    n0 = len(problems)
    label = str(rec.get("line", where.rsplit(" ", 1)[-1]))
    ends = {}
    for key in ("from_bus", "to_bus"):
        if key not in rec:
            problems.append(f"{where}.{key}: missing")
        else:
            ends[key] = str(rec[key])
            if ends[key] not in known:
                problems.append(f"{where}.{key}: {ends[key]!r} is not one of the buses")
    kind = str(rec.get("kind", "line"))
    out: dict[str, Any] = {"line": label, **ends, "kind": kind}
    if kind == "trafo":
        sn = _number(rec, "sn_kva", where, problems, positive=True)
        vk = _number(rec, "vk_percent", where, problems, positive=True)
        vkr = _number(rec, "vkr_percent", where, problems, positive=True)
        if vk is not None and vkr is not None and vkr >= vk:
            problems.append(f"{where}.vkr_percent: {vkr} must be below vk_percent {vk}")
        pfe = _number(rec, "pfe_kw", where, problems, positive=False, default=0.0)
        i0 = _number(rec, "i0_percent", where, problems, positive=False, default=0.0)
        for key, val in (("pfe_kw", pfe), ("i0_percent", i0)):
            if val is not None and val < 0:
                problems.append(f"{where}.{key}: {val!r} must be >= 0")
        lv = vn_of.get(ends.get("to_bus", ""))
        hv = vn_of.get(ends.get("from_bus", ""), math.nan)
        if len(problems) > n0 or lv is None:
            return None
        r, x = transformer_impedance_ohm(sn, vk, vkr, lv)  # type: ignore[arg-type]
        out |= {"r_ohm": r, "x_ohm": x, "s_max_kva": sn, "sn_kva": sn, "vk_percent": vk,
                "vkr_percent": vkr, "vn_hv_kv": hv, "pfe_kw": pfe,
                "i0_percent": i0}  # fmt: skip
        return out
    if kind != "line":
        problems.append(f"{where}.kind: {kind!r} is not one of line, trafo")
        return None
    if "cable" in rec and "r_ohm" not in rec:
        cable = str(rec["cable"])
        length = _number(rec, "length_km", where, problems, positive=True)
        if cable not in CABLE_TYPES:
            problems.append(
                f"{where}.cable: {cable!r} is not one of {', '.join(sorted(CABLE_TYPES))}"
            )
            return None
        if length is None:
            return None
        r_km, x_km, i_ka = CABLE_TYPES[cable]
        vn = vn_of.get(ends.get("to_bus", ""), 0.4)
        out |= {"r_ohm": r_km * length, "x_ohm": x_km * length,
                "s_max_kva": float(rec.get("s_max_kva", cable_s_max_kva(i_ka, vn))),
                "length_km": length, "cable": cable}  # fmt: skip
        return out if len(problems) == n0 else None
    r = _number(rec, "r_ohm", where, problems, positive=True)
    x = _number(rec, "x_ohm", where, problems, positive=False)
    s = _number(rec, "s_max_kva", where, problems, positive=True)
    if x is not None and x < 0:
        problems.append(f"{where}.x_ohm: {x!r} must be >= 0")
    if len(problems) > n0:
        return None
    out |= {"r_ohm": r, "x_ohm": x, "s_max_kva": s,
            "length_km": _number(rec, "length_km", where, problems, positive=True,
                                 default=math.nan)}  # fmt: skip
    if "cable" in rec:
        out["cable"] = str(rec["cable"])  # a label only: r_ohm, x_ohm, s_max_kva are given
    return out
