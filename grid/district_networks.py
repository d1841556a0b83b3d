"""The generated district ``district:<lv_feeders>x<households>`` (issue 18) and the district
specs a scenario names (:func:`is_district`, :func:`load_district`).

Design of ``district:<N>x<H>`` (deterministic):

- **HV/MV substation**: the MV network's slack is the 110 kV side (1.0 p.u.) of one
  110/20 kV transformer of :data:`HVMV_TRANSFORMER_KVA` = 63 MVA (vk 18 %, vkr 0.32 %,
  pandapower's standard type "63 MVA 110/20 kV"), no tap, no no-load losses.
- **MV grid**: 20 kV, radial: ``ceil(N / k)`` MV cables leave the 20 kV busbar, each
  feeding up to ``k`` MV/LV stations :data:`MV_SEGMENT_KM` = 0.5 km apart over
  NA2XS2Y 1x185 RM/25 12/20 kV cable (pandapower's standard type: 0.161 + j0.117 ohm/km,
  362 A = 12.5 MVA at 20 kV; its capacitance is neglected, as in every feeder here).
  ``k = min(8, floor(0.8 * 12.5 MVA / S_lv))`` with ``S_lv`` the LV transformer rating, so
  the stations of one MV cable load it to at most 80 % at their transformers' rating. A
  ring would be operated open at its normally-open point, so a radial layout is what a
  power flow of the normal switching state sees; rings are not modelled. The MV grid has no
  loads of its own (``base_p_kw = 0``): every load of the district is an LV household.
- **LV feeders**: every station feeds one ``radial:<H>`` LV feeder
  (:func:`grid.named_feeders.radial`: its 20/0.4 kV transformer, main cables and service
  laterals); its slack bus is the station's MV bus.

Limits: at most :data:`MAX_LV_FEEDERS` = 400 LV feeders ("hundreds"; the MV grid then has
400 stations on 50 MV cables, and one dense LinDistFlow map of the MV grid stays small), at
most :data:`grid.radial_design.RADIAL_HOUSEHOLDS_PER_TRANSFORMER` households per LV
feeder (one LV transformer per MV/LV station), and at most ``0.8 * 63 MVA / 3 kVA`` =
16,800 households in all (the HV/MV transformer, loaded to 80 % at 3 kVA per household,
as the LV feeders are sized).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from grid.errors import FeederError
from grid.radial_design import RADIAL_KVA_PER_HOUSEHOLD, check_radial_size

if TYPE_CHECKING:
    from grid.district import District

#: MV cable of the generated district: (r_ohm_per_km, x_ohm_per_km, max_i_ka), pandapower's
#: "NA2XS2Y 1x185 RM/25 12/20 kV".
MV_CABLE = "NA2XS2Y 1x185 RM/25 12/20 kV"
MV_CABLE_DATA = (0.161, 0.117, 0.362)
MV_KV = 20.0
HV_KV = 110.0
MV_SEGMENT_KM = 0.5
MV_STATIONS_PER_CABLE = 8
MV_CABLE_LOADING = 0.8
#: HV/MV transformer (pandapower's "63 MVA 110/20 kV"): rating [kVA], vk, vkr [%].
HVMV_TRANSFORMER_KVA = 63000.0
HVMV_VK_PERCENT = 18.0
HVMV_VKR_PERCENT = 0.32
MAX_LV_FEEDERS = 400
MAX_DISTRICT_HOUSEHOLDS = int(MV_CABLE_LOADING * HVMV_TRANSFORMER_KVA / RADIAL_KVA_PER_HOUSEHOLD)

_SPEC = re.compile(r"^district:(\d+)x(\d+)$")


def is_district(spec: str) -> bool:
    """True for a district spec: ``district:<N>x<H>``, a SimBench MV+LV code
    ``simbench:1-MVLV-...`` or a district file (a feeder file with ``feeder`` keys,
    :mod:`grid.district_files`; only its header or JSON is read)."""
    s = str(spec).strip()
    if s.startswith("district:") or s.startswith("simbench:1-MVLV-"):
        return True
    if s.startswith(("simbench:", "radial")) or s == "ieee33":
        return False
    from grid.district_files import is_district_file

    return is_district_file(s)


def parse_district(spec: str) -> tuple[int, int]:
    """``(lv_feeders, households_per_feeder)`` of ``district:<N>x<H>``, checked against the
    limits of the module docstring."""
    s = str(spec).strip()
    m = _SPEC.match(s)
    if m is None:
        raise FeederError(
            [
                f"{s!r} is not a generated district: expected 'district:<lv_feeders>x"
                "<households>' with two positive whole numbers, e.g. 'district:4x25'"
            ],
            s,
        )
    n, h = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= MAX_LV_FEEDERS:
        raise FeederError(
            [
                f"{s}: {n} LV feeders; a generated district has 1 to {MAX_LV_FEEDERS} "
                "(one MV grid of that many MV/LV stations)"
            ],
            s,
        )
    try:
        check_radial_size(h, one_transformer=True)
    except FeederError as exc:
        raise FeederError([f"{s}: each LV feeder is {p}" for p in exc.problems], s) from None
    if n * h > MAX_DISTRICT_HOUSEHOLDS:
        raise FeederError(
            [
                f"{s}: {n * h} households need {n * h * RADIAL_KVA_PER_HOUSEHOLD:g} kVA "
                f"({RADIAL_KVA_PER_HOUSEHOLD:g} kVA each), more than "
                f"{MAX_DISTRICT_HOUSEHOLDS} households = {MV_CABLE_LOADING:g} x the "
                f"{HVMV_TRANSFORMER_KVA / 1000:g} MVA HV/MV transformer"
            ],
            s,
        )
    return n, h


def stations_per_cable(lv_kva: float) -> int:
    """MV/LV stations on one MV cable for LV transformers of ``lv_kva`` (module docstring)."""
    i_ka = MV_CABLE_DATA[2]
    cable_kva = math.sqrt(3.0) * MV_KV * i_ka * 1000.0
    return max(1, min(MV_STATIONS_PER_CABLE, int(MV_CABLE_LOADING * cable_kva // lv_kva)))


def generated_district(lv_feeders: int, households: int) -> District:
    """The district ``district:<lv_feeders>x<households>`` (module docstring)."""
    import numpy as np  # here: validating a scenario (is_district) imports no numpy

    from grid.district import District
    from grid.feeders import build_feeder, transformer_record
    from grid.named_feeders import radial

    name = f"district:{lv_feeders}x{households}"
    lv = radial(households)
    lv_kva = float(lv.transformer_s_max_kva or lv.lines["s_max_kva"].iloc[0])
    k = stations_per_cable(lv_kva)
    r, x, i_ka = MV_CABLE_DATA
    s_max = math.sqrt(3.0) * MV_KV * i_ka * 1000.0
    buses: list[dict[str, Any]] = [_mv_bus("hv", HV_KV), _mv_bus("mv", MV_KV)]
    lines: list[dict[str, Any]] = [
        transformer_record(
            "hvmv", "hv", "mv", HVMV_TRANSFORMER_KVA, HVMV_VK_PERCENT, HVMV_VKR_PERCENT,
            HV_KV, MV_KV,
        )
    ]  # fmt: skip
    station: list[str] = []
    for f in range(lv_feeders):
        cable, pos = divmod(f, k)
        lab = f"m{cable + 1}s{pos + 1}"
        prev = "mv" if pos == 0 else f"m{cable + 1}s{pos}"
        buses.append(_mv_bus(lab, MV_KV))
        lines.append(
            {
                "line": f"{prev}-{lab}",
                "from_bus": prev,
                "to_bus": lab,
                "r_ohm": r * MV_SEGMENT_KM,
                "x_ohm": x * MV_SEGMENT_KM,
                "s_max_kva": s_max,
                "kind": "line",
                "length_km": MV_SEGMENT_KM,
                "cable": MV_CABLE,
            }
        )
        station.append(lab)
    for b in buses[2:]:
        b["household_bus"] = True  # build_feeder wants a household bus; cleared below
    mv = build_feeder(f"{name}/mv", buses, lines, slack_bus="hv", source=name)
    mv = replace(mv, buses=mv.buses.assign(household_bus=False))  # households sit on LV
    pos_of = {b: i for i, b in enumerate(mv.buses["bus"])}
    ids = tuple(f"lv{f + 1}" for f in range(lv_feeders))
    feeders = tuple(replace(lv, name=f"{name}/{i}") for i in ids)
    mv_bus = np.array([pos_of[s] for s in station], dtype=np.int64)
    return District(name, mv, feeders, ids, mv_bus)


def _mv_bus(label: str, vn_kv: float) -> dict[str, Any]:
    return {
        "bus": label,
        "vn_kv": vn_kv,
        "base_p_kw": 0.0,
        "base_q_kvar": 0.0,
        "household_bus": False,
    }


def load_district(spec: str, *, households: int | None = None) -> District:
    """Build the district ``spec`` names: ``district:<N>x<H>`` (module docstring),
    ``simbench:1-MVLV-<...>`` (:mod:`grid.simbench_districts`) or a district file
    (:mod:`grid.district_files`).

    ``households``, if given, is the scenario's community size: on ``district:<N>x<H>`` it
    must fit (at most ``N * H``); SimBench and file districts spread any number over their
    LV household buses, as a single feeder does (:func:`grid.feeders.assign_households`).

    Raises
    ------
    FeederError
        A malformed spec, one beyond the limits (module docstring), too many households,
        a SimBench code or district file that cannot be split or read (every problem named).
    """
    s = str(spec).strip()
    if s.startswith("simbench:"):
        from grid.simbench_districts import simbench_district

        return simbench_district(s.partition(":")[2])
    if not s.startswith("district:"):
        from grid.district_files import read_district_file

        return read_district_file(s)
    n, h = parse_district(s)
    if households is not None and not 0 <= households <= n * h:
        raise FeederError(
            [f"{s}: {households} households do not fit; the district hosts up to {n * h}"], s
        )
    return generated_district(n, h)
