"""The feeders a scenario names: ``ieee33``, ``radial:<households>``, ``simbench:<code>`` and
feeder files, built from their tables (:mod:`grid.feeder_names` reads a feeder's name and
loads it).

The tables and their conventions are :class:`grid.feeders.Feeder`'s; the readers of
feeder files and SimBench grids are :mod:`grid.feeder_files` and
:mod:`grid.simbench_feeders`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from grid.cables import (
    TRANSFORMER_SIZES_KVA,
)
from grid.feeders import Feeder, build_feeder, cable_record, transformer_record
from grid.radial_design import (
    RADIAL_CABINETS_PER_FEEDER,
    RADIAL_HOUSEHOLDS_PER_CABINET,
    RADIAL_KVA_PER_HOUSEHOLD,
    RADIAL_MAIN_CABLE,
    RADIAL_MAIN_SEGMENT_KM,
    RADIAL_SERVICE_CABLE,
    RADIAL_SERVICE_KM,
    check_radial_size,
    even_split,
    radial_transformers,
)

#: Headroom of the ieee33 thermal ratings over the base-case apparent flow (see ``ieee33``).
IEEE33_RATING_HEADROOM = 1.5
#: Smallest ieee33 line rating [kVA].
IEEE33_RATING_FLOOR_KVA = 200.0


# --------------------------------------------------------------------------- ieee33


@functools.lru_cache(maxsize=1)
def ieee33() -> Feeder:
    """The IEEE 33-bus feeder of Baran & Wu (1989) from pandapower's ``case33bw``.

    Built once per process (pandapower takes about a second to read the case); the
    returned feeder is shared, so treat its tables as read-only.

    12.66 kV, 32 in-service branches (the five tie switches are left open), 3715 kW /
    2300 kvar of base load that stays on as background load: the published case is its
    annual peak, scaled per interval by the scenario's calendar (``[grid] background``,
    :mod:`scenarios.engine.background`).
    Bus labels are Baran & Wu's numbers ``"1"``...``"33"`` (bus 1 = substation = slack).

    Thermal ratings: the case ships none. Each branch gets
    ``max(IEEE33_RATING_FLOOR_KVA, ceil(1.5 * S_base / 10) * 10)`` kVA, where ``S_base`` is
    the branch's sending-end apparent power in the published AC base case (pandapower
    ``runpp``, stored to 0.1 kVA in :data:`IEEE33_BASE_CASE_FLOW_KVA`): the
    base case loads every branch to at most 67 %, the floor of 200 kVA keeps the lightly
    loaded laterals from being the binding limit of every household added. This is a
    documented modelling choice, not a published rating.

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss
    reduction and load balancing", IEEE Trans. Power Delivery 4(2), 1401-1407, 1989.
    """
    import pandapower.networks as pn

    net = pn.case33bw()
    vn = net.bus["vn_kv"].to_numpy(float)
    p = net.load.groupby("bus")["p_mw"].sum().reindex(net.bus.index, fill_value=0.0) * 1000.0
    q = net.load.groupby("bus")["q_mvar"].sum().reindex(net.bus.index, fill_value=0.0) * 1000.0
    slack = int(net.ext_grid["bus"].iloc[0])
    buses = [
        {
            "bus": str(b + 1),
            "vn_kv": vn[i],
            "base_p_kw": float(p.loc[b]),
            "base_q_kvar": float(q.loc[b]),
            "household_bus": bool(b != slack and p.loc[b] > 0.0),
        }
        for i, b in enumerate(net.bus.index)
    ]
    ln = net.line[net.line["in_service"]]
    s_base = _ieee33_base_case_flow_kva()
    lines = []
    for k, (_, row) in enumerate(ln.iterrows()):
        rating = max(
            IEEE33_RATING_FLOOR_KVA, math.ceil(IEEE33_RATING_HEADROOM * s_base[k] / 10) * 10
        )
        lines.append(
            {
                "line": f"{int(row.from_bus) + 1}-{int(row.to_bus) + 1}",
                "from_bus": str(int(row.from_bus) + 1),
                "to_bus": str(int(row.to_bus) + 1),
                "r_ohm": float(row.r_ohm_per_km * row.length_km),
                "x_ohm": float(row.x_ohm_per_km * row.length_km),
                "s_max_kva": float(rating),
                "kind": "line",
                "length_km": float(row.length_km),
            }
        )
    return build_feeder(
        "ieee33",
        buses,
        lines,
        slack_bus=str(slack + 1),
        v_slack_pu=float(net.ext_grid["vm_pu"].iloc[0]),
        s_base_kva=1000.0,
        source="ieee33",
    )


#: Sending-end apparent power of the 32 in-service case33bw branches in the published AC
#: base case [kVA] (pandapower 3.5 ``runpp``, in branch order), from which ``ieee33``
#: derives its ratings. Kept as data so loading the feeder needs no power flow;
#: ``tests/grid/test_feeders.py`` re-derives it with pandapower.
IEEE33_BASE_CASE_FLOW_KVA: tuple[float, ...] = (
    4612.8, 4091.2, 2901.7, 2735.5, 2648.5, 1215.8, 987.8, 759.2, 691.4, 624.3, 570.2,
    500.1, 427.7, 285.8, 225.5, 162.0, 98.6, 395.4, 296.7, 197.2, 98.6, 1045.0,
    938.4, 466.8, 1360.9, 1298.6, 1236.1, 1166.7, 1026.6, 472.0, 304.5, 72.1,
)  # fmt: skip


def _ieee33_base_case_flow_kva() -> np.ndarray:
    if IEEE33_BASE_CASE_FLOW_KVA:
        return np.asarray(IEEE33_BASE_CASE_FLOW_KVA)
    return ieee33_base_case_flow_kva()


def ieee33_base_case_flow_kva() -> np.ndarray:
    """Sending-end apparent power of each in-service case33bw branch, AC base case [kVA]."""
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.case33bw()
    pp.runpp(net, numba=False)
    res = net.res_line.loc[net.line["in_service"]]
    return np.hypot(res["p_from_mw"], res["q_from_mvar"]).to_numpy() * 1000.0


# --------------------------------------------------------------------------- radial


def radial(households: int) -> Feeder:
    """A generated LV feeder sized for ``households`` households (deterministic).

    Layout: a 20/0.4 kV transformer (MV bus = slack, 1.0 p.u.) of the smallest standard
    size in :data:`grid.cables.TRANSFORMER_SIZES_KVA` with at least 3 kVA per household;
    ``ceil(households / 24)`` main cables (NAYY 4x150 SE, 270 A = 187 kVA) leave the LV
    busbar, each with up to 8 cable cabinets 40 m apart; from every cabinet a 30 m
    NAYY 4x50 SE service lateral (142 A = 98 kVA) feeds a household bus hosting about
    three households. The feeder has no background load.

    Sizing rationale: with an after-diversity maximum demand of about 2 kW per household
    and up to ~6 kWp PV on half of them, 24 households load a main cable to below 100 kW
    either way, i.e. a voltage rise/drop of about 2-3 % along its 320 m.

    Larger communities get more main cables of the same design, never longer ones (a
    main cable's voltage drop does not grow with the community), and a bigger transformer:
    ``radial:300`` has 13 main cables and 1000 kVA (vk 6 %), ``radial:600`` 25 and 2000 kVA,
    up to ``radial:833`` (35 main cables, 2500 kVA, EN 50464-1's largest rating). Above
    about a dozen main cables this stands for a substation whose transformer feeds several
    LV boards; the busbars between them are not modelled (their impedance is small against
    the transformer's).

    Beyond 833 households the substation has ``k = ceil(N / 833)`` transformers in
    parallel on the MV bus, each with its own LV busbar (``lv1`` ... ``lvk``, transformers
    ``trafo1`` ... ``trafok``; a 2500 kVA unit already carries 3.6 kA, about the most one LV
    busbar takes, so the LV sides are not coupled) and its even share of the households
    on main cables of the same design (labels ``t<i>f<j>c<m>``); each transformer is the
    smallest standard size for its share: ``radial:2000`` has two 2500 kVA units of 667
    households and a 2000 kVA unit of 666, 84 main cables, 1,348 buses. Up to
    :data:`grid.radial_design.RADIAL_MAX_HOUSEHOLDS` (2593, four 2000 kVA units; larger
    sizes are refused with the reason, :func:`grid.radial_design.check_radial_size`). The
    transformer is the binding limit of every size: the main cables together are rated far
    above it (13 x 187 kVA at 300 households).
    """
    check_radial_size(households)
    k = radial_transformers(households)
    buses: list[dict[str, Any]] = [_lv_bus("mv", False, 20.0)]
    lines: list[dict[str, Any]] = []
    for t, share in enumerate(even_split(households, k)):
        sfx, pre = ("", "") if k == 1 else (str(t + 1), f"t{t + 1}")
        need_kva = RADIAL_KVA_PER_HOUSEHOLD * share
        sn = min(s for s in TRANSFORMER_SIZES_KVA if s >= need_kva)
        vk, vkr = TRANSFORMER_SIZES_KVA[sn]
        board = f"lv{sfx}"
        buses.append(_lv_bus(board, False))
        lines.append(transformer_record(f"trafo{sfx}", "mv", board, sn, vk, vkr, 20.0, 0.4))
        per_cable = RADIAL_HOUSEHOLDS_PER_CABINET * RADIAL_CABINETS_PER_FEEDER
        for f, hh in enumerate(even_split(share, math.ceil(share / per_cable))):
            prev = board
            for c in range(math.ceil(hh / RADIAL_HOUSEHOLDS_PER_CABINET)):
                cab, house = f"{pre}f{f + 1}c{c + 1}", f"{pre}f{f + 1}h{c + 1}"
                buses += [_lv_bus(cab, False), _lv_bus(house, True)]
                lines.append(cable_record(f"{prev}-{cab}", prev, cab, RADIAL_MAIN_CABLE,
                                          RADIAL_MAIN_SEGMENT_KM))  # fmt: skip
                lines.append(cable_record(f"{cab}-{house}", cab, house, RADIAL_SERVICE_CABLE,
                                          RADIAL_SERVICE_KM))  # fmt: skip
                prev = cab
    return build_feeder(
        f"radial:{households}",
        buses,
        lines,
        slack_bus="mv",
        s_base_kva=1000.0,
        source=f"radial:{households}",
    )


def _lv_bus(label: str, household: bool, vn_kv: float = 0.4) -> dict[str, Any]:
    return {"bus": label, "vn_kv": vn_kv, "base_p_kw": 0.0, "base_q_kvar": 0.0,
            "household_bus": household}  # fmt: skip
