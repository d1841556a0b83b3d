"""SimBench low-voltage grids as feeders (``simbench:<code>``).

SimBench (Meinecke et al., "SimBench - A Benchmark Dataset of Electric Power Systems to
Compare Innovative Solutions Based on Power Flow Analysis", Energies 13(12), 3290, 2020)
ships its grids with the ``simbench`` package. The LV grids have one MV/LV transformer
and radial cable feeders; households go on the buses that carry SimBench loads. The
SimBench loads themselves are *not* kept as background: the community's households
replace them (LV feeders have no background load). The transformer keeps its no-load
(iron) losses ``pfe_kw`` and magnetising current ``i0_percent``. The buses keep their
geodata (longitude ``x``, latitude ``y``) for the feeder map (:mod:`grid.layout`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from grid.errors import FeederError
from grid.feeders import Feeder, build_feeder, transformer_record

SIMBENCH_EXAMPLES = ("1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw", "1-LV-urban6--0-sw")


def simbench_feeder(code: str) -> Feeder:
    """Load the SimBench grid ``code`` (e.g. ``"1-LV-rural1--0-sw"``) as a :class:`Feeder`.

    Raises
    ------
    FeederError
        When simbench is not installed, the code is unknown, or the grid is not a radial
        single-transformer LV grid.
    """
    spec = f"simbench:{code}"
    net = simbench_net(code, spec)
    return _from_pandapower(net, spec)


def simbench_net(code: str, spec: str) -> Any:
    """The pandapower net of SimBench grid ``code``; ``spec`` names it in the errors.

    Raises
    ------
    FeederError
        When simbench is not installed or ``code`` is not a SimBench grid code.
    """
    try:
        import simbench as sb
    except ImportError:
        raise FeederError(
            [
                f"{spec}: SimBench feeders need the simbench package: "
                'pip install "p2pgrid[simbench]"'
            ],
            spec,
        ) from None
    try:
        return sb.get_simbench_net(code)
    except Exception as exc:  # simbench raises bare ValueError/KeyError for bad codes
        raise FeederError(
            [
                f"{spec}: {code!r} is not a SimBench grid code ({exc}); "
                f"e.g. {', '.join(SIMBENCH_EXAMPLES)}"
            ],
            spec,
        ) from None


def lon_lat(geo: Any) -> dict[str, float]:
    """A bus's GeoJSON point (pandapower's ``bus.geo``) as ``x`` / ``y``; NaN when it has
    none or it is not a point."""
    try:
        point = json.loads(geo) if isinstance(geo, str) else {}
        if point.get("type") != "Point":
            raise ValueError(geo)
        lon, lat = point["coordinates"]
        return {"x": float(lon), "y": float(lat)}
    except (TypeError, ValueError, KeyError, AttributeError):
        return {"x": math.nan, "y": math.nan}


def _from_pandapower(net: Any, spec: str) -> Feeder:
    problems: list[str] = []
    if len(net.ext_grid) != 1:
        problems.append(f"{spec}: expected one external grid, found {len(net.ext_grid)}")
    trafo = net.trafo[net.trafo["in_service"]]
    if len(trafo) != 1:
        problems.append(
            f"{spec}: expected one MV/LV transformer, found {len(trafo)} (LV grids only)"
        )
    sw = net.switch
    if len(sw) and ((sw["et"] == "b") & sw["closed"]).any():
        problems.append(f"{spec}: closed bus-bus switches are not supported")
    if problems:
        raise FeederError(problems, spec)
    open_lines = (
        set(sw.loc[(sw["et"] == "l") & ~sw["closed"], "element"].tolist()) if len(sw) else set()
    )
    lines_in = net.line[net.line["in_service"] & ~net.line.index.isin(open_lines)]
    load_buses = set(net.load.loc[net.load["in_service"], "bus"].tolist())
    slack = int(net.ext_grid["bus"].iloc[0])
    used = (
        {slack}
        | set(lines_in["from_bus"])
        | set(lines_in["to_bus"])
        | set(trafo["hv_bus"])
        | set(trafo["lv_bus"])
    )
    buses = [
        {
            "bus": str(net.bus.at[b, "name"]),
            "vn_kv": float(net.bus.at[b, "vn_kv"]),
            "base_p_kw": 0.0,
            "base_q_kvar": 0.0,
            "household_bus": b in load_buses,
            **lon_lat(net.bus.at[b, "geo"] if "geo" in net.bus else None),
        }
        for b in net.bus.index
        if net.bus.at[b, "in_service"] and b in used
    ]
    name = {b: str(net.bus.at[b, "name"]) for b in net.bus.index}
    t = trafo.iloc[0]
    lines = [trafo_record_pp(t, name[int(t.hv_bus)], name[int(t.lv_bus)])]
    lines += [
        line_record_pp(ln, name[int(ln.from_bus)], name[int(ln.to_bus)],
                       float(net.bus.at[int(ln.to_bus), "vn_kv"]))
        for _, ln in lines_in.iterrows()
    ]  # fmt: skip
    f = build_feeder(
        spec,
        buses,
        lines,
        slack_bus=name[slack],
        v_slack_pu=float(net.ext_grid["vm_pu"].iloc[0]),
        s_base_kva=1000.0,
        source=spec,
    )
    if not np.isfinite(f.lines["s_max_kva"]).all():
        raise FeederError([f"{spec}: some lines have no thermal rating"], spec)
    return f


def trafo_record_pp(t: Any, hv: str, lv: str) -> dict[str, Any]:
    """The branch record of pandapower transformer row ``t`` from bus ``hv`` to ``lv``
    (series impedance on the LV side, no-load losses kept)."""
    return transformer_record(
        str(t["name"]), hv, lv, float(t.sn_mva) * 1000.0, float(t.vk_percent),
        float(t.vkr_percent), float(t.vn_hv_kv), float(t.vn_lv_kv), float(t.pfe_kw),
        float(t.i0_percent),
    )  # fmt: skip


def line_record_pp(ln: Any, frm: str, to: str, vn_kv: float) -> dict[str, Any]:
    """The branch record of pandapower line row ``ln`` (``parallel`` circuits merged) at
    ``vn_kv``; its shunt capacitance is dropped, as in every feeder here."""
    par = float(ln.parallel)
    return {
        "line": str(ln["name"]),
        "from_bus": frm,
        "to_bus": to,
        "r_ohm": float(ln.r_ohm_per_km * ln.length_km) / par,
        "x_ohm": float(ln.x_ohm_per_km * ln.length_km) / par,
        "s_max_kva": math.sqrt(3.0) * vn_kv * float(ln.max_i_ka) * par * 1000.0,
        "kind": "line",
        "length_km": float(ln.length_km),
        "cable": str(ln.std_type),
    }
