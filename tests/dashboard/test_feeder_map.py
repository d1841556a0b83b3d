"""The dashboard's feeder map over the API: the figure once, each feeder state's restyle
arrays, the layout from a live market's branches, and the interval a run opens on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd

from grid import load_feeder
from live.dashboard import RunSource, read_run, start_dashboard
from live.dashboard.feeder_map import MapBuilder, opening_interval
from scenarios.reports.feeder_map import VIOLATION_COLOR, loading_colors, voltage_colors


def test_the_map_and_its_restyle_arrays_over_the_api(run_dir: Path) -> None:
    run = read_run(run_dir)
    feeder = load_feeder("radial:16", households=16)
    server = start_dashboard(RunSource(run), port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            t = 40
            fig = c.get("api/feeder/map", params={"t": t}).json()
            assert fig["t"] == t
            data = fig["figure"]["data"]
            edges = [tr for tr in data if tr.get("meta") == "edge"]
            nodes = next(tr for tr in data if tr.get("meta") == "bus")
            assert len(edges) == feeder.n_line and len(nodes["x"]) == feeder.n_bus
            # the slack (the MV bus) alone on top of the tree
            assert nodes["y"][feeder.slack_bus] == max(nodes["y"])
            state = c.get(f"api/intervals/{t}/feeder").json()
            m = state["map"]
            assert m["edges"] == list(range(feeder.n_line)) and m["nodes"] == feeder.n_line + 1
            assert m["node_color"] == nodes["marker"]["color"]  # the figure showed t too
            assert m["node_color"] == voltage_colors(run.feeder.v_pu[t], (0.95, 1.05))
            assert m["edge_color"] == loading_colors(run.feeder.loading_frac[t])
            # each bus's households in its hover
            hh = run.households
            first = hh["bus"].iloc[0]
            i = list(feeder.buses["bus"]).index(first)
            assert hh["agent_id"].iloc[0] in m["node_text"][i]
            # the CSV of the feeder state is unchanged by the map
            csv = c.get(f"api/intervals/{t}/feeder", params={"format": "csv"}).text
            assert "map" not in csv.splitlines()[0]
            missing = c.get("api/feeder/map", params={"t": 10**6})
            assert missing.status_code == 404 and "not available" in missing.json()["detail"]
    finally:
        server.stop()


def test_a_live_map_is_laid_out_from_the_published_branches() -> None:
    builder = MapBuilder(None, 0, {"a1": "b2"}, (None, None))
    assert builder.v_limits == (0.95, 1.05)  # the scenario defaults without a scenario
    assert builder.base({"buses": [], "lines": []}) is None  # nothing to lay out yet
    state = {
        "buses": [{"bus": "mv", "v_pu": 1.0}, {"bus": "b1", "v_pu": 0.96},
                  {"bus": "b2", "v_pu": 0.94, "p_kw": -3.0}],
        "lines": [{"line": "l1", "from_bus": "mv", "to_bus": "b1", "loading_frac": 1.2},
                  {"line": "l2", "from_bus": "b1", "to_bus": "b2", "loading_frac": 0.2}],
    }  # fmt: skip
    arrays = builder.arrays(state)
    assert arrays is not None
    assert arrays["node_color"][2] == VIOLATION_COLOR != arrays["node_color"][1]
    assert arrays["edge_color"][0] == VIOLATION_COLOR
    assert "households: a1" in arrays["node_text"][2]
    base = builder.base()
    assert base is not None and base.layout.y.tolist() == [0.0, -1.0, -2.0]
    # a state missing a bus draws it grey, not an error
    partial = builder.arrays({"buses": state["buses"][:2], "lines": state["lines"]})
    assert partial is not None and partial["node_color"][2] == "#bbbbbb"


def test_a_broken_feeder_name_is_reported_not_raised() -> None:
    builder = MapBuilder(None, 0, None, (0.95, 1.05))
    state = {"buses": [{"bus": "mv"}], "lines": [{"line": "x", "from_bus": "mv", "to_bus": "zz"}]}
    assert builder.arrays(state) is None
    assert builder.problem is not None and "zz" in builder.problem


def test_opening_interval_by_hand() -> None:
    iv = pd.DataFrame(
        {
            "p2p_kwh": [0.0, 2.0, 5.0, 1.0],
            "violations_before_reclear": [0, 0, 0, 0],
            "v_min_pu": [0.99, 0.97, 0.98, 0.96],
            "v_max_pu": [1.0, 1.0, 1.0, 1.0],
            "max_line_loading_frac": [0.1, 0.5, 0.2, 0.3],
        }
    )
    assert opening_interval(iv, (0.95, 1.05)) == 2  # no limit broken: the most P2P
    # a limit broken (interval 3 at 0.96 < 0.97): the worst grid state, the largest
    # share of a limit used: drops 0.01/0.03, 0.03/0.03, 0.02/0.03, 0.04/0.03
    broken = iv.assign(violations_before_reclear=[0, 0, 0, 2])
    assert opening_interval(broken, (0.97, 1.05)) == 3
    assert opening_interval(iv.assign(p2p_kwh=0.0), (0.95, 1.05)) == 3  # no trade: the last
    assert opening_interval(iv.drop(columns=["v_min_pu"]), (0.95, 1.05)) == 2  # no grid
    assert opening_interval(iv.iloc[0:0], (0.95, 1.05)) == -1


def test_a_run_without_a_grid_check_has_no_map(tmp_path: Path) -> None:
    from scenarios import load_scenario, run

    run(
        load_scenario(
            {
                "simulation": {"start": "2026-06-15", "days": 1, "interval_minutes": 60},
                "community": {"households": 4, "profiles": "synthetic"},
                "grid": {"feeder": "radial:4", "check": "off"},
            }
        ),
        tmp_path,
    )
    source = RunSource(read_run(tmp_path))
    assert source.map is None and source.meta()["has_map"] is False
    server = start_dashboard(source, port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = c.get("api/feeder/map")
            assert r.status_code == 404 and "no grid check" in r.json()["detail"]
    finally:
        server.stop()
