"""SimBench MV+LV grids split into districts (``simbench:1-MVLV-...``), their tables against
the pandapower net they come from, and the MV/LV coupling against pandapower's AC power flow
of the whole net.

Two codes: ``1-MVLV-rural-1.108-0-sw`` (the rural MV grid with one explicit LV grid, the
others as MV loads) and ``1-MVLV-rural-all-0-sw`` (the same MV grid with all its 90 LV grids,
5,382 LV buses): the full grid, not a subset.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from grid.district import District
from grid.district_flow import MvLvCoupling
from grid.district_networks import is_district, load_district
from grid.errors import FeederError

sb = pytest.importorskip("simbench")

ONE = "1-MVLV-rural-1.108-0-sw"
ALL = "1-MVLV-rural-all-0-sw"


@pytest.fixture(scope="module")
def rural_all() -> tuple[Any, District]:
    return sb.get_simbench_net(ALL), load_district(f"simbench:{ALL}")


@pytest.fixture(scope="module")
def rural_one() -> tuple[Any, District]:
    return sb.get_simbench_net(ONE), load_district(f"simbench:{ONE}")


def test_split_sizes_and_tables(rural_all: tuple[Any, District]) -> None:
    net, d = rural_all
    assert is_district(f"simbench:{ALL}") and d.name == f"simbench:{ALL}"
    lv_trafo = net.trafo[net.trafo["vn_lv_kv"] < 1.0]
    assert d.n_feeders == len(lv_trafo) == 90
    assert d.feeder_ids[:2] == ("LV1.101", "LV1.102") and len(set(d.feeder_ids)) == 90
    # 110 kV: 2 buses joined by a closed bus-bus switch -> 1; 20 kV: 95 buses, the two
    # busbar halves joined -> 94; radial once the 6 open loop switches open their lines
    assert (net.bus["vn_kv"] == 110.0).sum() == 2 and (net.bus["vn_kv"] == 20.0).sum() == 95
    assert d.mv.n_bus == 1 + 94 and d.mv.n_line == d.mv.n_bus - 1
    mv_lines_pp = net.line[net.bus["vn_kv"].reindex(net.line["from_bus"]).to_numpy() == 20.0]
    assert (~net.switch["closed"]).sum() == 6
    assert d.mv.n_line == len(mv_lines_pp) - 6 + 1  # + the merged HV/MV transformer
    # every LV bus in exactly one LV feeder, plus one slack copy of its MV bus per feeder
    assert sum(f.n_bus - 1 for f in d.feeders) == (net.bus["vn_kv"] == 0.4).sum() == 5382
    # households on the LV buses with SimBench loads; MV loads stay as background
    loads = net.load
    lv_load_buses = loads.loc[net.bus["vn_kv"].reindex(loads["bus"]).to_numpy() < 1, "bus"]
    assert sum(len(f.household_buses) for f in d.feeders) == lv_load_buses.nunique()
    assert not d.mv.buses["household_bus"].any()
    mv_loads = loads[net.bus["vn_kv"].reindex(loads["bus"]).to_numpy() == 20.0]
    assert len(mv_loads) == 6
    assert d.mv.buses["base_p_kw"].sum() == pytest.approx(1000 * mv_loads["p_mw"].sum())
    assert d.mv.buses["base_p_kw"].sum() == pytest.approx(2155.0)
    for f in d.feeders:
        assert f.buses["base_p_kw"].eq(0.0).all()
    # two parallel 25 MVA 110/20 kV units (vk 12 %, vkr 0.41 %) -> one 50 MVA branch:
    # z_base = 20^2 / 25 = 16 ohm, r = 0.0041 * 16 / 2 = 0.0328 ohm,
    # x = sqrt((0.12 * 16)^2 - 0.0656^2) / 2 = 0.95944 ohm, pfe 2 x 14 kW
    hvmv = d.mv.lines[d.mv.lines["kind"] == "trafo"].iloc[0]
    assert (hvmv["sn_kva"], hvmv["vk_percent"], hvmv["vkr_percent"]) == pytest.approx(
        (50000.0, 12.0, 0.41)
    )
    assert (hvmv["r_ohm"], hvmv["x_ohm"], hvmv["pfe_kw"]) == pytest.approx(
        (0.0328, 0.95944, 28.0), abs=1e-5
    )
    assert d.mv.v_slack_pu == 1.025 and d.mv.buses["vn_kv"].iloc[d.mv.slack_bus] == 110.0
    # each LV feeder: slack = a copy of its MV bus, first branch its MV/LV transformer
    mv_lab = d.mv.buses["bus"].to_numpy()
    for f, b in zip(d.feeders, d.mv_bus, strict=True):
        assert f.buses["bus"].iloc[f.slack_bus] == mv_lab[b]
        t = f.lines.iloc[0]
        assert t["kind"] == "trafo" and t["from_bus"] == f.slack_bus
        assert (f.lines["kind"] == "trafo").sum() == 1
        row = lv_trafo[lv_trafo["name"] == t["line"]].iloc[0]
        assert t["sn_kva"] == 1000 * row["sn_mva"] and t["pfe_kw"] == row["pfe_kw"]
    # geodata kept on every bus
    for f in (d.mv, *d.feeders):
        assert np.isfinite(f.buses[["x", "y"]].to_numpy()).all()


def _ac_against_coupling(net: Any, d: District, lv_scale: float) -> dict[str, float]:
    """Households = SimBench's LV loads x ``lv_scale`` on their buses, MV loads as they are
    (background); pandapower runpp on the whole SimBench net with the same loads, its static
    generators off and its cables' capacitance zeroed (the feeder models have neither).
    Returns the largest deviations."""
    import pandapower as pp

    net = copy.deepcopy(net)
    net.sgen["in_service"] = False
    net.line["c_nf_per_km"] = 0.0
    lv = net.bus["vn_kv"].reindex(net.load["bus"]).to_numpy() < 1.0
    net.load.loc[lv, "scaling"] *= lv_scale
    pp.runpp(net, numba=False)
    idx_of = {str(n): i for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    kw = (net.load["p_mw"] * net.load["scaling"] * 1000).groupby(net.load["bus"]).sum()
    kvar = (net.load["q_mvar"] * net.load["scaling"] * 1000).groupby(net.load["bus"]).sum()
    ps, qs, idx = [], [], []
    for f in d.feeders:
        ix = np.array([idx_of[b] for b in f.buses["bus"]])
        p = -kw.reindex(ix, fill_value=0.0).to_numpy()
        q = -kvar.reindex(ix, fill_value=0.0).to_numpy()
        p[f.slack_bus] = q[f.slack_bus] = 0.0  # the MV bus's own load is MV background
        ps.append(p)
        qs.append(q)
        idx.append(ix)
    r = MvLvCoupling(d).flow(ps, qs)
    vm = net.res_bus["vm_pu"]
    mv_ix = [idx_of[b] for b in d.mv.buses["bus"]]
    names = list(net.trafo["name"])
    trafo_kw = np.array([-net.res_trafo["p_hv_mw"].iloc[names.index(f.lines["line"].iloc[0])]
                         for f in d.feeders]) * 1000.0  # fmt: skip
    return {
        # below the slack (the HV bus: the model's slack is its voltage through the tap)
        "mv_v": float(np.abs(r.mv_v_pu - vm.loc[mv_ix].to_numpy())[1:].max()),
        "lv_v": max(
            float(np.abs(r.lv_v_pu[k] - vm.loc[idx[k]].to_numpy()).max())
            for k in range(d.n_feeders)
        ),
        "slack_rel": float(np.abs((trafo_kw - r.slack_p_kw) / r.slack_p_kw).max()),
        "lv_v_min": float(min(v.min() for v in r.lv_v_pu)),
        "hvmv_rel": float(
            abs(net.res_trafo["p_hv_mw"].iloc[-2:].sum() * 1000 - r.mv_p_kw[-1]) / r.mv_p_kw[-1]
        ),
    }


def test_coupling_against_pandapower_on_the_whole_rural_grid(
    rural_all: tuple[Any, District],
) -> None:
    """All 90 LV grids at 30 % of SimBench's peak loads (6.8 MW through the substation, the
    lowest LV voltage 0.975 p.u.): MV voltages within 1e-3 p.u. of AC, LV voltages within
    1e-3 p.u., each MV/LV transformer's power within 1 % (the LV feeders' losses, which the
    linear model around zero flow has not), the substation's within 1.5 %."""
    net, d = rural_all
    e = _ac_against_coupling(net, d, 0.3)
    assert 0.97 < e["lv_v_min"] < 0.98
    assert e["mv_v"] < 1e-3 and e["lv_v"] < 1e-3
    assert e["slack_rel"] < 0.01 and e["hvmv_rel"] < 0.015


def test_coupling_against_pandapower_at_peak_load(rural_one: tuple[Any, District]) -> None:
    """1-MVLV-rural-1.108 at SimBench's own loads: its 17.2 MW of MV loads are the MV
    model's operating point, so MV voltages agree within 5e-5 p.u. and the one LV grid's
    within 5e-4 p.u.; its transformer's power within 1.5 % (80 kW, 1 kW of losses)."""
    net, d = rural_one
    assert d.n_feeders == 1 and d.feeder_ids == ("LV1.108",)
    assert d.mv.buses["base_p_kw"].sum() == pytest.approx(17176.0)
    e = _ac_against_coupling(net, d, 1.0)
    assert e["mv_v"] < 5e-5 and e["lv_v"] < 5e-4
    assert e["slack_rel"] < 0.015 and e["hvmv_rel"] < 1e-3


def test_the_hv_mv_tap_sets_the_mv_slack_voltage(rural_one: tuple[Any, District]) -> None:
    """Both HV/MV units one step (1.5 %) below neutral on their HV side, as SimBench's
    urban grid runs: the MV slack is 1.025 / 0.985 = 1.04061 p.u., and the coupling agrees
    with pandapower's tapped transformers as closely as at neutral."""
    from grid.simbench_districts import split_mvlv

    net = copy.deepcopy(rural_one[0])
    hvmv = net.trafo.index[net.trafo["vn_lv_kv"] == 20.0]
    net.trafo.loc[hvmv, "tap_pos"] = -1
    # pandapower 3.5 applies a tap only with a tap changer type (SimBench's nets have none)
    net.trafo.loc[hvmv, "tap_changer_type"] = "Ratio"
    d = split_mvlv(net, "tapped")
    assert d.mv.v_slack_pu == pytest.approx(1.025 / 0.985, abs=1e-12)
    e = _ac_against_coupling(net, d, 1.0)
    assert e["mv_v"] < 5e-5 and e["lv_v"] < 5e-4
    net.trafo.loc[hvmv[0], "tap_pos"] = -2
    with pytest.raises(FeederError, match="parallel HV/MV transformers are on different taps"):
        split_mvlv(net, "uneven")


def test_a_bad_code_and_a_meshed_grid_are_refused(rural_one: tuple[Any, District]) -> None:
    from grid.simbench_districts import split_mvlv

    with pytest.raises(FeederError, match="is not a SimBench grid code"):
        load_district("simbench:1-MVLV-nowhere-0-sw")
    net = copy.deepcopy(rural_one[0])
    net.switch["closed"] = True  # close the normally-open loop switches: MV rings
    with pytest.raises(FeederError, match="loop closed by"):
        split_mvlv(net, "ringed")
    net = copy.deepcopy(rural_one[0])
    net.trafo.loc[0, "in_service"] = False  # LV1.108's transformer: its 14 buses unfed
    with pytest.raises(FeederError, match=r"14 LV buses are fed by no MV/LV transformer"):
        split_mvlv(net, "islanded")
    net = copy.deepcopy(rural_one[0])
    net.trafo.loc[0, "tap_pos"] = 1
    with pytest.raises(FeederError, match=r"'MV1\.101-LV1\.108-Trafo 1' is off its neutral tap"):
        split_mvlv(net, "tapped")


def test_a_simbench_district_round_trips_through_a_district_file(
    rural_one: tuple[Any, District], tmp_path: Path
) -> None:
    """Written as JSON (the MV slack at 1.025 p.u., geodata, the merged HV/MV transformer)
    and read back: the same tables (the transformers' impedances recomputed from their
    vk / vkr, equal to rounding)."""
    from grid.district_files import write_district_file

    d = rural_one[1]
    back = load_district(str(write_district_file(d, tmp_path / "rural.json")))
    assert back.name == d.name and back.feeder_ids == d.feeder_ids
    assert back.mv.v_slack_pu == 1.025 and (back.mv_bus == d.mv_bus).all()
    for a, b in zip((d.mv, *d.feeders), (back.mv, *back.feeders), strict=True):
        pd.testing.assert_frame_equal(a.buses, b.buses, check_exact=True)
        pd.testing.assert_frame_equal(a.lines, b.lines, rtol=1e-12)
