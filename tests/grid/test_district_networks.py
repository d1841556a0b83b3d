"""The generated district ``district:<N>x<H>`` and its MV/LV coupling against pandapower AC."""

from __future__ import annotations

import numpy as np
import pytest

from grid.ac import AcPowerFlow
from grid.district import District
from grid.district_flow import MvLvCoupling, flat_feeder
from grid.district_networks import (
    MAX_DISTRICT_HOUSEHOLDS,
    MAX_LV_FEEDERS,
    is_district,
    load_district,
    stations_per_cable,
)
from grid.errors import FeederError
from grid.named_feeders import radial
from grid.radial_design import check_radial_size


def test_sizes_and_tables() -> None:
    d = load_district("district:20x100")
    assert d.n_feeders == 20 and d.feeder_ids[0] == "lv1"
    # radial:100 has a 400 kVA transformer: floor(0.8 * 12540 / 400) = 25 -> 8 per MV cable
    assert stations_per_cable(400.0) == 8
    assert stations_per_cable(2500.0) == 4  # floor(10032 / 2500)
    # hv, mv busbar + 20 stations; 3 MV cables (8 + 8 + 4 stations)
    assert d.mv.n_bus == 22 and d.mv.n_line == 21
    assert (d.mv.lines["from_bus"] == 1).sum() == 3
    assert not d.mv.buses["household_bus"].any()
    assert d.mv.buses["vn_kv"].tolist()[:3] == [110.0, 20.0, 20.0]
    mv_lines = d.mv.lines[d.mv.lines["kind"] == "line"]
    np.testing.assert_allclose(mv_lines["r_ohm"], 0.161 * 0.5)
    np.testing.assert_allclose(mv_lines["s_max_kva"], np.sqrt(3) * 20 * 362, rtol=1e-12)
    assert len(set(d.mv_bus.tolist())) == 20
    for f in d.feeders:
        assert f.n_bus == radial(100).n_bus
        assert f.lines["kind"].iloc[0] == "trafo" and f.lines["from_bus"].iloc[0] == f.slack_bus


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("district:0x10", f"1 to {MAX_LV_FEEDERS}"),
        (f"district:{MAX_LV_FEEDERS + 1}x10", f"1 to {MAX_LV_FEEDERS}"),
        ("district:2x900", "largest distribution transformer"),
        ("district:200x100", f"more than {MAX_DISTRICT_HOUSEHOLDS} households"),
        ("district:4", "district:<lv_feeders>x<households>"),
        ("district:ax2", "district:<lv_feeders>x<households>"),
    ],
)
def test_bad_specs(spec: str, words: str) -> None:
    with pytest.raises(FeederError, match=words.replace("(", r"\(")):
        load_district(spec)


def test_households_must_fit_and_spec_kinds() -> None:
    with pytest.raises(FeederError, match="up to 40"):
        load_district("district:2x20", households=41)
    assert is_district("district:2x20") and is_district("simbench:1-MVLV-rural-all-0-sw")
    assert not is_district("radial:20") and not is_district("simbench:1-LV-rural1--0-sw")


def test_one_station_beyond_833_says_why() -> None:
    """radial:834 builds (two transformers), an MV/LV station of a district has one."""
    check_radial_size(834)
    with pytest.raises(FeederError, match=r"2502 kVA.*2500 kVA"):
        check_radial_size(834, one_transformer=True)


def _injections(
    d: District, pv_kw: float, load_kw: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ps, qs = [], []
    for k, f in enumerate(d.feeders):
        p, q = np.zeros(f.n_bus), np.zeros(f.n_bus)
        p[f.household_buses] = pv_kw if k == 0 else -load_kw
        q[f.household_buses] = -0.3 * load_kw * (k != 0)
        ps.append(p)
        qs.append(q)
    return ps, qs


def test_coupling_against_pandapower_ac() -> None:
    """district:2x20: feeder lv1 exports PV (6 kW per household bus), lv2 draws 8 kW +
    2.4 kvar per household bus. The coupled LinDistFlow (MV model fed the LV slack powers,
    LV models at the MV voltage) against pandapower runpp of the whole district."""
    d = load_district("district:2x20")
    ps, qs = _injections(d, 6.0, 8.0)
    r = MvLvCoupling(d).flow(ps, qs)
    flat = flat_feeder(d)
    assert flat.n_bus == d.mv.n_bus + sum(f.n_bus - 1 for f in d.feeders)
    lab = {b: i for i, b in enumerate(flat.buses["bus"])}
    p, q = np.zeros(flat.n_bus), np.zeros(flat.n_bus)
    idx = []
    for k, (fid, f) in enumerate(zip(d.feeder_ids, d.feeders, strict=True)):
        ix = [int(d.mv_bus[k]) if i == f.slack_bus else lab[f"{fid}/{b}"]
              for i, b in enumerate(f.buses["bus"])]  # fmt: skip
        idx.append(ix)
        nz = np.arange(f.n_bus) != f.slack_bus
        p[np.array(ix)[nz]] += ps[k][nz]
        q[np.array(ix)[nz]] += qs[k][nz]
    ac = AcPowerFlow(flat).run(p, q)
    # 7 household buses per feeder: 42 kW out of lv1, 56 kW into lv2 (lossless linear model)
    np.testing.assert_allclose(r.slack_p_kw, [42.0, -56.0], atol=1e-9)
    trafo = [list(flat.lines["line"]).index(f"{fid}/trafo") for fid in d.feeder_ids]
    # AC: the same within the feeders' losses (under 3 % of the slack power)
    np.testing.assert_allclose(-ac.line_p_kw[trafo], r.slack_p_kw, rtol=0.03)
    # MV voltages within 2e-5 p.u., LV voltages within 1e-3 p.u. of AC
    np.testing.assert_allclose(r.mv_v_pu, ac.v_pu[: d.mv.n_bus], atol=2e-5)
    for k in range(2):
        np.testing.assert_allclose(r.lv_v_pu[k], ac.v_pu[idx[k]], atol=1e-3)
    # the PV feeder sits above its slack, the loaded one below
    assert r.lv_v_pu[0].max() > r.mv_v_pu[d.mv_bus[0]] > r.lv_v_pu[1].min()
    # MV flows: the HV/MV transformer carries the net 14 kW (+ MV losses) in AC
    assert abs(r.mv_p_kw[0] - 14.0) < 1e-9
    # AC draws the same plus its losses (the linear model around zero flow has none)
    assert abs(ac.line_p_kw[0] - (r.mv_p_kw[0] + ac.losses_kw)) < 1e-3
    assert 0.0 < ac.losses_kw < 0.05 * 56.0


def test_coupling_vectorised_over_intervals() -> None:
    d = load_district("district:3x10")
    one = [_injections(d, 3.0, 4.0), _injections(d, -1.0, 9.0)]
    rs = [MvLvCoupling(d).flow(*x) for x in one]
    stacked = MvLvCoupling(d).flow(
        [np.stack([one[0][0][k], one[1][0][k]]) for k in range(3)],
        [np.stack([one[0][1][k], one[1][1][k]]) for k in range(3)],
    )
    for t in range(2):
        np.testing.assert_allclose(stacked.mv_v_pu[t], rs[t].mv_v_pu, atol=1e-12)
        np.testing.assert_allclose(stacked.lv_v_pu[2][t], rs[t].lv_v_pu[2], atol=1e-12)
