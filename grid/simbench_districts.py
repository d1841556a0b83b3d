"""SimBench's complete MV+LV grids as districts (``simbench:1-MVLV-<...>``, issue 18).

A SimBench MV+LV code (Meinecke et al. 2020, see :mod:`grid.simbench_feeders`) is one
pandapower net holding an MV grid, its HV/MV substation and the LV grids under its MV/LV
transformers. :func:`simbench_district` splits it into a :class:`grid.district.District`:

- **Switching state**: buses joined by a closed bus-bus switch are one bus (the lowest
  index keeps its name); a line with an open line switch and a transformer with an open
  transformer switch are out of service: SimBench's rings are opened at their
  normally-open loop switches, which is what its ``-sw`` codes' switch states say. What is
  left must be radial, or the split says which line closes the loop.
- **MV part**: the external grid's bus (the HV side, at SimBench's ``vm_pu``, 1.025) is the
  MV network's slack, its voltage seen through the HV/MV transformers' tap: ``vm_pu / (1 + n
  step)`` for a tap on the HV side at ``n`` steps of ``step`` from neutral (times for one on
  the LV side; ``1-MVLV-urban`` runs at -1 x 1.5 %: 1.025 / 0.985 = 1.0406), an ideal ratio
  ahead of the series impedance, as pandapower models it; a tap elsewhere (MV/LV) is
  refused, since an LV feeder's slack is its MV bus; the HV/MV transformers (LV side above 1
  kV) between the same pair of buses are parallel units, merged into one branch: the
  parallel connection of their impedances, the sum of their ratings and no-load losses
  (``vk``, ``vkr`` and ``i0`` are recomputed on the summed rating; two identical 25 MVA
  units give 50 MVA at the same vk, vkr and i0). MV loads stay as background (``base_p_kw``,
  ``base_q_kvar`` = their ``p_mw``, ``q_mvar`` x ``scaling``); MV buses host no households.
  (pandapower 3.5 applies a tap only when the transformer has a ``tap_changer_type``,
  which the nets of the simbench package lack, so its own ``runpp`` of ``1-MVLV-urban``
  runs at neutral; here SimBench's tap position is applied.)
- **LV feeders**: one per MV/LV transformer (LV side at most 1 kV), its buses the LV buses
  reachable from the transformer's LV side; the feeder's slack is a copy of the MV bus the
  transformer hangs on (``mv_bus``), its first branch the transformer (no-load losses kept,
  :func:`grid.simbench_feeders.trafo_record_pp`). Households sit on the LV buses with
  SimBench loads (which they replace: LV feeders have no background). Feeder ids are the
  SimBench LV grid names (the LV buses' ``subnet``, e.g. ``LV1.101``).
- Kept: every bus's geodata (``x``, ``y``). Not kept: static generators and storage
  (SimBench's PV and wind at MV are not part of the background, which is load only),
  cable capacitance (as in every feeder here).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from grid.errors import FeederError

if TYPE_CHECKING:
    from grid.district import District
    from grid.feeders import Feeder

#: Rated voltage [kV] at or below which a bus is LV (the LV side of an MV/LV transformer).
LV_MAX_KV = 1.0


def simbench_district(code: str) -> District:
    """The District of SimBench MV+LV grid ``code`` (e.g. ``"1-MVLV-rural-all-0-sw"``),
    split as the module docstring says.

    Raises
    ------
    FeederError
        simbench missing, an unknown code, or a grid that is not radial in its switching
        state (naming the line that closes a loop), has a transformer off its neutral tap,
        or has not exactly one external grid.
    """
    from grid.simbench_feeders import simbench_net

    spec = f"simbench:{code}"
    return split_mvlv(simbench_net(code, spec), spec)


def _merged_buses(net: Any) -> dict[int, int]:
    """Bus index -> representative bus index over closed bus-bus switches."""
    parent = {int(b): int(b) for b in net.bus.index}

    def root(b: int) -> int:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    sw = net.switch
    for a, b in zip(
        sw.loc[(sw["et"] == "b") & sw["closed"], "bus"],
        sw.loc[(sw["et"] == "b") & sw["closed"], "element"],
        strict=True,
    ):
        ra, rb = root(int(a)), root(int(b))
        parent[max(ra, rb)] = min(ra, rb)
    return {b: root(b) for b in parent}


def split_mvlv(net: Any, spec: str) -> District:
    """Split a pandapower MV+LV net into a District (module docstring)."""
    from grid.district import District
    from grid.feeders import build_feeder
    from grid.simbench_feeders import line_record_pp, lon_lat, trafo_record_pp

    problems: list[str] = []
    if len(net.ext_grid) != 1:
        problems.append(f"{spec}: expected one external grid, found {len(net.ext_grid)}")
    rep = _merged_buses(net)
    sw = net.switch
    open_of = {et: set(sw.loc[(sw["et"] == et) & ~sw["closed"], "element"]) for et in "lt"}
    trafo = net.trafo[net.trafo["in_service"] & ~net.trafo.index.isin(open_of["t"])]
    slack = rep[int(net.ext_grid["bus"].iloc[0])] if len(net.ext_grid) == 1 else -1
    tap_factor = _slack_tap_factor(trafo, rep, slack, spec, problems)
    if problems:
        raise FeederError(problems, spec)
    lines = net.line[net.line["in_service"] & ~net.line.index.isin(open_of["l"])]
    vn = net.bus["vn_kv"].astype(float)
    names = _unique_names(net, rep)
    geo = net.bus["geo"] if "geo" in net.bus else None

    def bus_rec(b: int, p_kw: float = 0.0, q_kvar: float = 0.0, hh: bool = False) -> dict:
        return {"bus": names[b], "vn_kv": float(vn[b]), "base_p_kw": p_kw, "base_q_kvar": q_kvar,
                "household_bus": hh, **lon_lat(geo[b] if geo is not None else None)}  # fmt: skip

    lv_bus = {int(b) for b in net.bus.index if vn[b] <= LV_MAX_KV}
    fb = lines["from_bus"].map(rep).astype(int)
    tb = lines["to_bus"].map(rep).astype(int)
    is_lv = fb.isin(lv_bus) & tb.isin(lv_bus)
    # --- MV part
    loads = net.load[net.load["in_service"]]
    lp = (loads["p_mw"] * loads["scaling"] * 1000.0).groupby(loads["bus"].map(rep)).sum()
    lq = (loads["q_mvar"] * loads["scaling"] * 1000.0).groupby(loads["bus"].map(rep)).sum()
    hvmv = trafo[trafo["vn_lv_kv"] > LV_MAX_KV]
    mvlv = trafo[trafo["vn_lv_kv"] <= LV_MAX_KV]
    mv_lines = [line_record_pp(ln, names[f], names[t], float(vn[t]))
                for (_, ln), f, t in zip(lines[~is_lv].iterrows(), fb[~is_lv], tb[~is_lv],
                                         strict=True)]  # fmt: skip
    mv_lines += _merged_hvmv(hvmv, rep, names)
    mv_buses = sorted({rep[int(net.ext_grid["bus"].iloc[0])]}
                      | {rep[int(b)] for b in (*hvmv["hv_bus"], *hvmv["lv_bus"])}
                      | set(fb[~is_lv]) | set(tb[~is_lv]))  # fmt: skip
    mv_recs = [bus_rec(b, float(lp.get(b, 0.0)), float(lq.get(b, 0.0)), True) for b in mv_buses]
    mv = build_feeder(
        f"{spec}/mv",
        mv_recs,
        mv_lines,
        slack_bus=names[slack],
        v_slack_pu=float(net.ext_grid["vm_pu"].iloc[0]) * tap_factor,
        source=f"{spec} (MV part)",
    )
    mv = replace(mv, buses=mv.buses.assign(household_bus=False))  # fmt: skip
    pos = {lab: i for i, lab in enumerate(mv.buses["bus"])}
    # --- LV feeders: the LV buses reachable from each MV/LV transformer's LV side
    adj: dict[int, list[int]] = {}
    for k, (f, t) in enumerate(zip(fb[is_lv], tb[is_lv], strict=True)):
        adj.setdefault(f, []).append(k)
        adj.setdefault(t, []).append(k)
    lv_rows = list(lines[is_lv].iterrows())
    lv_f, lv_t = fb[is_lv].to_numpy(), tb[is_lv].to_numpy()
    load_buses = set(loads["bus"].map(rep))
    feeders: list[Feeder] = []
    ids: list[str] = []
    at: list[int] = []
    owner: dict[int, str] = {}
    for _, t in mvlv.iterrows():
        hv, lv = rep[int(t.hv_bus)], rep[int(t.lv_bus)]
        if names[hv] not in pos:
            problems.append(f"{spec}: transformer {t['name']!r} hangs on bus {names[hv]!r}, "
                            "which is not connected to the MV grid")  # fmt: skip
            continue
        fid = str(net.bus.at[int(t.lv_bus), "subnet"]) if "subnet" in net.bus else str(t["name"])
        fid = fid if fid not in ids and fid != "nan" else f"{fid}#{len(ids) + 1}"
        seen, stack, ks = {lv}, [lv], set()
        while stack:
            for k in adj.get(stack.pop(), []):
                ks.add(k)
                for b in (int(lv_f[k]), int(lv_t[k])):
                    if b not in seen:
                        seen.add(b)
                        stack.append(b)
        for b in seen:
            if b in owner:
                problems.append(f"{spec}: LV bus {names[b]!r} is fed by two MV/LV transformers "
                                f"({owner[b]} and {fid}): the LV grids are meshed")  # fmt: skip
            owner[b] = fid
        buses = [bus_rec(hv)] + [bus_rec(b, hh=b in load_buses) for b in sorted(seen)]
        branch = [trafo_record_pp(t, names[hv], names[lv])]
        branch += [line_record_pp(lv_rows[k][1], names[int(lv_f[k])], names[int(lv_t[k])],
                                  float(vn[int(lv_t[k])])) for k in sorted(ks)]  # fmt: skip
        feeders.append(build_feeder(f"{spec}/{fid}", buses, branch, slack_bus=names[hv],
                                    source=f"{spec} (LV grid {fid})"))  # fmt: skip
        ids.append(fid)
        at.append(pos[names[hv]])
    unfed = sorted({int(b) for b in (*lv_f, *lv_t)} - set(owner))
    if unfed:
        shown = ", ".join(repr(names[b]) for b in unfed[:5]) + (", ..." if len(unfed) > 5 else "")
        problems.append(f"{spec}: {len(unfed)} LV buses are fed by no MV/LV transformer in "
                        f"service (an LV island): {shown}")  # fmt: skip
    if problems:
        raise FeederError(problems, spec)
    return District(spec, mv, tuple(feeders), tuple(ids), np.array(at, dtype=np.int64))


def _slack_tap_factor(
    trafo: Any, rep: dict[int, int], slack: int, spec: str, problems: list[str]
) -> float:
    """The MV side's voltage over the HV side's [p.u./p.u.] through the taps of the HV/MV
    transformers out of the slack bus (module docstring); a tap off its neutral position
    elsewhere, or different taps on parallel units, is a problem."""
    step = trafo["tap_step_percent"].fillna(0.0) / 100.0
    n = trafo["tap_pos"].fillna(0.0) - trafo["tap_neutral"].fillna(0.0)
    ratio = 1.0 + n * step
    factor = (1.0 / ratio).where(trafo["tap_side"] != "lv", ratio)
    off = trafo.index[n != 0]
    at_slack = trafo["hv_bus"].map(rep) == slack
    for t in off:
        if not at_slack[t] or float(trafo.at[t, "vn_lv_kv"]) <= LV_MAX_KV:
            problems.append(
                f"{spec}: transformer {trafo.at[t, 'name']!r} is off its neutral tap "
                f"({trafo.at[t, 'tap_pos']:g}); only the HV/MV transformers out of the "
                "external grid's bus may be (their tap sets the MV slack voltage)"
            )
    root = factor[at_slack & (trafo["vn_lv_kv"] > LV_MAX_KV)]
    if len(root) and (root.max() - root.min()) > 1e-12:
        problems.append(f"{spec}: the parallel HV/MV transformers are on different taps")
    return float(root.iloc[0]) if len(root) else 1.0


def _unique_names(net: Any, rep: dict[int, int]) -> dict[int, str]:
    """Bus index -> label: the representative bus's name, its index appended where two
    buses share a name."""
    raw = {int(b): str(net.bus.at[b, "name"]) for b in net.bus.index}
    seen: dict[str, int] = {}
    for b in sorted(set(rep.values())):
        seen[raw[b]] = seen.get(raw[b], 0) + 1
    return {b: raw[r] if seen[raw[r]] == 1 else f"{raw[r]}#{r}" for b, r in rep.items()}


def _merged_hvmv(hvmv: Any, rep: dict[int, int], names: dict[int, str]) -> list[dict[str, Any]]:
    """One branch record per pair of buses the HV/MV transformers join (parallel units
    merged: module docstring)."""
    from grid.cables import transformer_impedance_ohm

    out = []
    pairs = hvmv.groupby([hvmv["hv_bus"].map(rep), hvmv["lv_bus"].map(rep)], sort=True)
    for (hv, lv), units in pairs:
        y = 0j
        for _, t in units.iterrows():
            r, x = transformer_impedance_ohm(float(t.sn_mva) * 1000.0, float(t.vk_percent),
                                             float(t.vkr_percent), float(t.vn_lv_kv))  # fmt: skip
            y += 1.0 / complex(r, x)
        z = 1.0 / y
        sn = float(units["sn_mva"].sum()) * 1000.0
        vn_lv = float(units["vn_lv_kv"].iloc[0])
        z_base = vn_lv**2 * 1000.0 / sn
        i0_kva = float((units["i0_percent"] * units["sn_mva"]).sum()) * 10.0
        out.append({
            "line": " + ".join(str(n) for n in units["name"]), "from_bus": names[int(hv)],
            "to_bus": names[int(lv)], "r_ohm": z.real, "x_ohm": z.imag, "s_max_kva": sn,
            "kind": "trafo", "sn_kva": sn, "vk_percent": abs(z) / z_base * 100.0,
            "vkr_percent": z.real / z_base * 100.0,
            "vn_hv_kv": float(units["vn_hv_kv"].iloc[0]),
            "pfe_kw": float(units["pfe_kw"].sum()), "i0_percent": i0_kva / sn * 100.0,
        })  # fmt: skip
    return out
