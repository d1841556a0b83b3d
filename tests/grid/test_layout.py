"""The feeder map's coordinates (grid.layout): a tree below the slack, or the geodata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grid import FeederError, load_feeder
from grid.feeders import build_feeder
from grid.layout import feeder_layout, layout_from_branches, tree_coordinates


def _hops(n: int, frm: np.ndarray, to: np.ndarray, root: int) -> np.ndarray:
    parent = dict(zip(to.tolist(), frm.tolist(), strict=True))
    out = np.zeros(n)
    for b in range(n):
        cur = b
        while cur != root:
            cur, out[b] = parent[cur], out[b] + 1
    return out


@pytest.mark.parametrize("spec", ["ieee33", "radial:60"])
def test_tree_layout_puts_the_slack_on_top_and_every_bus_one_row_below_its_parent(
    spec: str,
) -> None:
    feeder = load_feeder(spec, households=60)
    lay = feeder_layout(feeder)
    assert lay.source == "tree"
    assert len(lay.x) == len(lay.y) == feeder.n_bus == len(lay.bus)
    assert np.isfinite(lay.x).all() and np.isfinite(lay.y).all()
    frm, to = lay.from_pos, lay.to_pos
    # the slack alone on the top row, each bus exactly one row below its parent
    assert lay.y[feeder.slack_bus] == 0.0
    assert (lay.y[np.arange(feeder.n_bus) != feeder.slack_bus] < 0).all()
    np.testing.assert_array_equal(lay.y[to], lay.y[frm] - 1)
    np.testing.assert_array_equal(-lay.y, _hops(feeder.n_bus, frm, to, feeder.slack_bus))
    # every bus has its own place: no two buses drawn on one point
    points = set(zip(lay.x.tolist(), lay.y.tolist(), strict=True))
    assert len(points) == feeder.n_bus
    # laterals spread: radial:60 has three main cables leaving the LV busbar side by side
    if spec == "radial:60":
        lv = list(lay.bus).index("lv")
        cabinets = [list(lay.bus).index(f"f{f}c1") for f in (1, 2, 3)]
        assert len({lay.x[c] for c in cabinets}) == 3
        assert all(lay.y[c] == lay.y[lv] - 1 for c in cabinets)


def test_tree_layout_is_deterministic() -> None:
    feeder = load_feeder("radial:60", households=60)
    a, b = feeder_layout(feeder), feeder_layout(feeder)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


def test_a_three_bus_chain_by_hand() -> None:
    # 0 - 1 - 2 and 1 - 3: rows 0, -1, -2, -2; buses 2 and 3 side by side under bus 1
    x, y = tree_coordinates(4, np.array([0, 1, 1]), np.array([1, 2, 3]), 0)
    assert y.tolist() == [0.0, -1.0, -2.0, -2.0]
    assert x[2] != x[3]
    assert x[1] == pytest.approx((x[2] + x[3]) / 2)  # a parent centred over its children


def test_simbench_buses_keep_their_geodata() -> None:
    pytest.importorskip("simbench")
    import simbench as sb

    code = "1-LV-rural1--0-sw"
    feeder = load_feeder(f"simbench:{code}", households=13)
    lay = feeder_layout(feeder)
    assert lay.source == "geodata"
    net = sb.get_simbench_net(code)
    geo = {
        str(name): json.loads(g)["coordinates"]
        for name, g in zip(net.bus["name"], net.bus["geo"], strict=True)
    }
    lat = np.array([geo[b][1] for b in lay.bus])
    lon = np.array([geo[b][0] for b in lay.bus])
    np.testing.assert_allclose(lay.y, lat)
    np.testing.assert_allclose(lay.x, lon * np.cos(np.deg2rad(lat.mean())))


def test_a_feeder_with_geodata_on_some_buses_only_is_laid_out_as_a_tree() -> None:
    buses = [
        {"bus": "a", "vn_kv": 0.4, "base_p_kw": 0, "base_q_kvar": 0, "household_bus": False,
         "x": 10.0, "y": 50.0},
        {"bus": "b", "vn_kv": 0.4, "base_p_kw": 0, "base_q_kvar": 0, "household_bus": True},
    ]  # fmt: skip
    lines = [{"line": "l", "from_bus": "a", "to_bus": "b", "r_ohm": 0.1, "x_ohm": 0.1,
              "s_max_kva": 100}]  # fmt: skip
    feeder = build_feeder("two", buses, lines, slack_bus="a")
    assert feeder.buses["x"].isna().tolist() == [False, True]
    lay = feeder_layout(feeder)
    assert lay.source == "tree" and lay.y.tolist() == [0.0, -1.0]


def test_layout_from_the_branches_of_a_live_result() -> None:
    lay = layout_from_branches(["mv", "b1", "b2"], ["l1", "l2"], ["mv", "b1"], ["b1", "b2"])
    assert lay.y.tolist() == [0.0, -1.0, -2.0]
    assert lay.line == ("l1", "l2")
    with pytest.raises(FeederError, match="not listed: zz"):
        layout_from_branches(["mv", "b1"], ["l1"], ["mv"], ["zz"])
    with pytest.raises(FeederError, match="found 2"):
        layout_from_branches(["mv", "b1", "b2"], ["l1"], ["mv"], ["b1"])
    with pytest.raises(FeederError, match=r"outside 0\.\.2"):
        tree_coordinates(3, np.array([0]), np.array([5]), 0)
