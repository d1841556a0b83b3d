"""The feeder map's drawing rules (scenarios.reports.feeder_map, feeder_report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grid.layout import layout_from_branches
from scenarios.reports.feeder_map import (
    NO_DATA_COLOR,
    VIOLATION_COLOR,
    grid_stress,
    loading_colors,
    map_base,
    map_figure,
    map_style,
    node_sizes,
    restyle_arrays,
    voltage_colors,
)
from scenarios.reports.feeder_report import worst_per_day

LIMITS = (0.95, 1.05)


def _base():  # mv - b1 - b2, and b1 - b3
    lay = layout_from_branches(
        ["mv", "b1", "b2", "b3"], ["l1", "l2", "l3"], ["mv", "b1", "b1"], ["b1", "b2", "b3"]
    )
    return map_base(lay, {"h2": "b2", "h1": "b2", "h3": "b3", "hx": "nowhere"}, LIMITS)


def test_voltage_colours_span_the_band_and_mark_what_is_outside() -> None:
    colors = voltage_colors(np.array([0.95, 1.0, 1.05, 0.9499, 1.06, np.nan]), LIMITS)
    # RdBu's ends at the band's ends, its white middle at 1.0 p.u.
    assert colors[0] == "rgb(103, 0, 31)" and colors[2] == "rgb(5, 48, 97)"
    assert colors[1] == "rgb(247, 247, 247)"
    assert colors[3] == colors[4] == VIOLATION_COLOR
    assert colors[5] == NO_DATA_COLOR


def test_loading_colours_and_the_rating() -> None:
    colors = loading_colors(np.array([0.0, 1.0, 1.01, np.nan]))
    assert colors[0] == "rgb(255, 255, 204)" and colors[1] == "rgb(128, 0, 38)"  # YlOrRd
    assert colors[2] == VIOLATION_COLOR and colors[3] == NO_DATA_COLOR


def test_node_size_by_area_of_the_injection() -> None:
    # 7 at zero, 25 at the reference, sqrt in between: a quarter of it is 7 + 18/2 = 16
    assert node_sizes(np.array([0.0, -2.5, 10.0, 40.0, np.nan]), 10.0) == [
        7.0, 16.0, 25.0, 25.0, 7.0,
    ]  # fmt: skip


def test_style_and_figure_of_one_interval() -> None:
    base = _base()
    assert base.households == ((), (), ("h1", "h2"), ("h3",))
    style = map_style(
        base,
        v_pu=np.array([1.0, 0.97, 0.94, 0.96]),
        p_kw=np.array([0.0, 0.0, -4.0, 1.0]),
        nodal_price_per_kwh=np.array([np.nan, np.nan, 0.31, np.nan]),
        loading_frac=np.array([1.2, 0.4, 0.1]),
        line_p_kw=np.array([3.0, 4.0, -1.0]),
    )
    assert style["node_color"][2] == VIOLATION_COLOR
    assert VIOLATION_COLOR not in style["node_color"][:2] + style["node_color"][3:]
    assert style["edge_color"][0] == VIOLATION_COLOR
    assert style["node_size"] == [7.0, 7.0, 25.0, 16.0]
    assert "households: h1, h2" in style["node_text"][2]
    assert "injection -4.00 kW" in style["node_text"][2]
    assert "voltage 0.9400 p.u. — OUTSIDE THE BAND" in style["node_text"][2]
    assert "nodal price 0.3100 EUR/kWh" in style["node_text"][2]
    assert "not re-cleared" in style["node_text"][1]
    assert style["edge_text"][0].startswith("<b>l1</b> mv → b1<br>loading 120.0 %")
    fig = map_figure(base, style, "t")
    edges = [tr for tr in fig.data if tr.meta == "edge"]
    nodes = [tr for tr in fig.data if tr.meta == "bus"]
    assert len(edges) == 3 and len(nodes) == 1 and len(nodes[0].x) == 4
    # each edge joins its two buses' coordinates
    lay = base.layout
    for k, tr in enumerate(edges):
        assert list(tr.x) == [lay.x[lay.from_pos[k]], lay.x[lay.to_pos[k]]]
        assert tr.line.color == style["edge_color"][k]
    arrays = restyle_arrays(base, style)
    assert arrays["edges"] == [0, 1, 2] and arrays["edge_hover"] == 3 and arrays["nodes"] == 4
    assert fig.data[arrays["nodes"]].meta == "bus"
    assert fig.data[arrays["edge_hover"]].meta == "edge-hover"


def test_grid_stress_by_hand() -> None:
    # drop 0.03 of 0.05 allowed = 0.6; rise 0.02 of 0.05 = 0.4; loading 0.5: stress 0.6
    # second: v_min 0.94 (drop 1.2) beats a loading of 1.1; third: nothing checked
    stress = grid_stress(
        np.array([0.97, 0.94, np.nan]),
        np.array([1.02, 1.0, np.nan]),
        np.array([0.5, 1.1, np.nan]),
        LIMITS,
    )
    assert stress[:2] == pytest.approx([0.6, 1.2])
    assert np.isnan(stress[2])


def test_each_days_worst_interval() -> None:
    stamps = pd.date_range("2026-06-15", periods=6, freq="8h", tz="Europe/Berlin")
    stress = np.array([0.1, 0.5, 0.2, np.nan, 0.3, 0.9])  # days: 0-2, 3-5
    assert worst_per_day(pd.DataFrame({"timestamp": stamps}), stress) == [1, 5]


def _validated(spec: dict) -> dict:
    """``spec`` through plotly's validation (a figure built from it, back to data), without
    the default template the figure adds (the page sets the reports' own)."""
    import plotly.graph_objects as go

    data = go.Figure(spec).to_dict()
    data["layout"].pop("template")
    return data


def test_the_report_maps_are_the_data_plotly_validation_writes(tmp_path) -> None:
    """The report's feeder maps are built as plain data, unvalidated (0.04 s instead of
    validating a trace per edge per frame): each equals its validated figure, frames,
    sliders and colour scales included, on a run of two days (two frames)."""
    from scenarios import load_scenario
    from scenarios.engine.batch import simulate
    from scenarios.reports.feeder_report import feeder_map_figures, map_intervals
    from scenarios.reports.grid_tables import grid_tables

    from .conftest import feeder_scenario

    scenario = load_scenario(feeder_scenario("2026-06-19", 6, days=2, pv_share=1.0))
    output = simulate(scenario, tmp_path)
    picks = map_intervals(output.intervals, LIMITS)
    grid = grid_tables(tmp_path / "buses.parquet", tmp_path / "lines.parquet",
                       output.intervals["timestamp"], picks)  # fmt: skip
    assert output.feeder is not None
    worst, animation = feeder_map_figures(
        output.feeder, output.households, output.intervals, grid, LIMITS, "EUR"
    )
    assert len(animation["frames"]) == 2
    assert animation["layout"]["sliders"][0]["steps"][1]["args"][0] == [
        animation["frames"][1]["name"]
    ]
    for spec in (worst, animation):
        assert _validated(spec) == spec
    scale = worst["data"][-2]["marker"]["colorscale"]  # the voltage colour bar: RdBu's pairs
    assert scale[0] == [0.0, "rgb(103,0,31)"] and scale[-1] == [1.0, "rgb(5,48,97)"]
