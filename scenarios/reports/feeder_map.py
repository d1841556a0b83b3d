"""The feeder map: buses as nodes, lines and transformers as edges, one interval's state.

Drawing rules (the report's figures and the dashboard's map both come from here):

- **nodes** are coloured by their voltage on a diverging scale (``RdBu``: red low, blue
  high) that spans exactly the voltage band ``v_min_pu..v_max_pu``; a bus outside the
  band is drawn in :data:`VIOLATION_COLOR` (and marked in its hover);
- **edges** are coloured by their current loading (``loading_frac``, current over rated
  current) on ``YlOrRd`` from 0 to the rating (100 %); an edge above its rating is drawn
  in :data:`VIOLATION_COLOR`;
- **node size** grows with the bus's net injection ``|p_kw|`` (``MIN_SIZE`` at zero,
  ``MIN_SIZE + SIZE_RANGE`` at ``p_ref_kw``, by area);
- an element without a value (no grid check at that interval) is :data:`NO_DATA_COLOR`;
- hover: a bus's households, injection (+ export), voltage and nodal price; a line's
  loading and flow (at the edge's midpoint).

Traces, in this order (the dashboard restyles them by index): one line trace per edge
(``meta="edge"``), the edges' midpoints (``meta="edge-hover"``), the buses
(``meta="bus"``), and two hidden traces that only carry the colour bars.

The traces and the figure are plain data (:func:`map_spec`), written as plotly's
validation writes them (``tests/scenarios/test_feeder_map.py`` checks it): a run's
report draws one map per frame of its animation, and validating a trace per edge each
time was most of the report's time; :func:`map_figure` validates it for the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from grid.layout import FeederLayout

VIOLATION_COLOR = "#ff00ff"
"""Colour of a bus outside the voltage band and of an edge above its rating."""
NO_DATA_COLOR = "#bbbbbb"
VOLTAGE_SCALE = "RdBu"
LOADING_SCALE = "YlOrRd"
MIN_SIZE = 7.0
SIZE_RANGE = 18.0
EDGE_WIDTH = 3.0
MAP_HEIGHT = 600


@dataclass(frozen=True)
class MapBase:
    """What does not change between intervals: the layout and who lives where."""

    layout: FeederLayout
    households: tuple[tuple[str, ...], ...]  # per bus, the household ids on it
    v_limits: tuple[float, float]
    currency: str = "EUR"


def map_base(
    layout: FeederLayout,
    household_bus: Mapping[str, str] | None,
    v_limits: tuple[float, float],
    currency: str = "EUR",
) -> MapBase:
    """The map's static part; ``household_bus`` maps a household id to its bus label."""
    on: dict[str, list[str]] = {b: [] for b in layout.bus}
    for agent, bus in (household_bus or {}).items():
        if str(bus) in on:
            on[str(bus)].append(str(agent))
    return MapBase(layout, tuple(tuple(sorted(on[b])) for b in layout.bus), v_limits, currency)


def _scale(values: np.ndarray, lo: float, hi: float, scale: str) -> list[str]:
    pos = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    out = [NO_DATA_COLOR] * len(values)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok):
        for i, c in zip(ok, sample_colorscale(scale, pos[ok].tolist()), strict=True):
            out[i] = c
    return out


def voltage_colors(v_pu: np.ndarray, v_limits: tuple[float, float]) -> list[str]:
    """Each bus's colour: the band's diverging scale, :data:`VIOLATION_COLOR` outside."""
    v = np.asarray(v_pu, float)
    out = _scale(v, v_limits[0], v_limits[1], VOLTAGE_SCALE)
    for i in np.flatnonzero((v < v_limits[0]) | (v > v_limits[1])):
        out[i] = VIOLATION_COLOR
    return out


def loading_colors(loading_frac: np.ndarray) -> list[str]:
    """Each edge's colour: 0..100 % of its rating on the scale, above it the violation."""
    x = np.asarray(loading_frac, float)
    out = _scale(x, 0.0, 1.0, LOADING_SCALE)
    for i in np.flatnonzero(x > 1.0):
        out[i] = VIOLATION_COLOR
    return out


def node_sizes(p_kw: np.ndarray, p_ref_kw: float) -> list[float]:
    """Marker sizes by net injection: area proportional to ``|p_kw| / p_ref_kw``."""
    p = np.nan_to_num(np.abs(np.asarray(p_kw, float)))
    ref = p_ref_kw if p_ref_kw > 0 else 1.0
    return (MIN_SIZE + SIZE_RANGE * np.sqrt(np.clip(p / ref, 0.0, 1.0))).round(2).tolist()


def _f(value: float, spec: str, missing: str = "—") -> str:
    return format(value, spec) if np.isfinite(value) else missing


def map_style(
    base: MapBase,
    v_pu: np.ndarray,
    p_kw: np.ndarray,
    nodal_price_per_kwh: np.ndarray,
    loading_frac: np.ndarray,
    line_p_kw: np.ndarray,
    p_ref_kw: float | None = None,
) -> dict[str, list[Any]]:
    """One interval's colours, sizes and hover texts, arrays in feeder order (buses as
    ``base.layout.bus``, edges as ``base.layout.line``); ``p_ref_kw`` the injection of the
    largest marker (default: this interval's largest)."""
    lay, lo_hi = base.layout, base.v_limits
    v, p = np.asarray(v_pu, float), np.asarray(p_kw, float)
    price, x = np.asarray(nodal_price_per_kwh, float), np.asarray(loading_frac, float)
    flow = np.asarray(line_p_kw, float)
    ref = float(np.nanmax(np.abs(p), initial=0.0)) if p_ref_kw is None else p_ref_kw
    node_text = []
    for i, bus in enumerate(lay.bus):
        hh = base.households[i]
        who = ", ".join(hh[:8]) + (f" … ({len(hh)})" if len(hh) > 8 else "") if hh else "none"
        out = (
            " — OUTSIDE THE BAND" if np.isfinite(v[i]) and not lo_hi[0] <= v[i] <= lo_hi[1] else ""
        )
        node_text.append(
            f"<b>bus {bus}</b><br>households: {who}<br>"
            f"injection {_f(p[i], '+.2f')} kW (+ export)<br>"
            f"voltage {_f(v[i], '.4f')} p.u.{out}<br>"
            f"nodal price {_f(price[i], '.4f', 'none (not re-cleared)')} {base.currency}/kWh"
        )
    edge_text = [
        f"<b>{name}</b> {lay.bus[lay.from_pos[k]]} → {lay.bus[lay.to_pos[k]]}<br>"
        f"loading {_f(100 * x[k], '.1f')} % of the rating"
        + (" — OVER THE RATING" if x[k] > 1.0 else "")
        + f"<br>flow {_f(flow[k], '+.1f')} kW"
        for k, name in enumerate(lay.line)
    ]
    return {
        "node_color": voltage_colors(v, lo_hi),
        "node_size": node_sizes(p, ref),
        "node_text": node_text,
        "edge_color": loading_colors(x),
        "edge_text": edge_text,
    }


@cache
def colorscale(name: str) -> list[list[Any]]:
    """A named colour scale as plotly's validation writes it into a figure: its
    ``[position, colour]`` pairs, not the name."""
    scale: list[list[Any]] = go.scatter.Marker(colorscale=name).to_plotly_json()["colorscale"]
    return scale


def _colorbars(v_limits: tuple[float, float]) -> list[dict[str, Any]]:
    lo, hi = v_limits
    mid = round((lo + hi) / 2, 4)
    hidden = {"type": "scatter", "x": [None], "y": [None], "mode": "markers",
              "hoverinfo": "skip", "showlegend": False}  # fmt: skip
    return [
        {
            **hidden,
            "meta": "voltage-scale",
            "marker": {
                "color": [lo],
                "colorscale": colorscale(VOLTAGE_SCALE),
                "cmin": lo,
                "cmax": hi,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "bus voltage [p.u.]"},
                    "tickvals": [lo, mid, hi],
                    "ticktext": [f"{lo} min", str(mid), f"{hi} max"],
                    "x": 1.02,
                    "len": 0.45,
                    "y": 0.78,
                    "thickness": 12,
                },
            },
        },
        {
            **hidden,
            "meta": "loading-scale",
            "marker": {
                "color": [0.0],
                "colorscale": colorscale(LOADING_SCALE),
                "cmin": 0.0,
                "cmax": 100.0,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "line loading [%]"},
                    "tickvals": [0, 50, 100],
                    "ticktext": ["0", "50", "100 limit"],
                    "x": 1.02,
                    "len": 0.45,
                    "y": 0.22,
                    "thickness": 12,
                },
            },
        },
    ]


def map_traces(base: MapBase, style: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The map's traces for one interval's ``style`` (:func:`map_style`), in the order of
    the module docstring, as plain data."""
    lay = base.layout
    x0, y0 = lay.x[lay.from_pos], lay.y[lay.from_pos]
    x1, y1 = lay.x[lay.to_pos], lay.y[lay.to_pos]
    edges = [
        {
            "type": "scatter",
            "x": [float(x0[k]), float(x1[k])],
            "y": [float(y0[k]), float(y1[k])],
            "mode": "lines",
            "line": {"color": style["edge_color"][k], "width": EDGE_WIDTH},
            "hoverinfo": "skip",
            "showlegend": False,
            "meta": "edge",
            "name": lay.line[k],
        }
        for k in range(len(lay.line))
    ]
    hover = {
        "type": "scatter",
        "x": ((x0 + x1) / 2).tolist(),
        "y": ((y0 + y1) / 2).tolist(),
        "mode": "markers",
        "marker": {"size": 6, "color": list(style["edge_color"]), "symbol": "diamond"},
        "text": list(style["edge_text"]),
        "hovertemplate": "%{text}<extra></extra>",
        "showlegend": False,
        "meta": "edge-hover",
    }
    nodes = {  # plain lists: the page reads them (not base64 typed arrays)
        "type": "scatter",
        "x": lay.x.tolist(),
        "y": lay.y.tolist(),
        "mode": "markers",
        "marker": {
            "color": list(style["node_color"]),
            "size": list(style["node_size"]),
            "opacity": 1.0,
            "line": {"color": "#333", "width": 0.8},
        },
        "text": list(style["node_text"]),
        "hovertemplate": "%{text}<extra></extra>",
        "showlegend": False,
        "meta": "bus",
    }
    return [*edges, hover, nodes, *_colorbars(base.v_limits)]


def map_layout(base: MapBase, title: str) -> dict[str, Any]:
    """The map's axes: no ticks; geodata drawn to scale (x and y in one unit)."""
    axis = {"visible": False, "showgrid": False, "zeroline": False}
    y_axis: dict[str, Any] = {**axis}
    if base.layout.source == "geodata":
        y_axis["scaleanchor"] = "x"
    where = "network geodata" if base.layout.source == "geodata" else "tree layout from the slack"
    return {
        "title": {"text": f"{title}<br><sub>{where}; node size ~ net injection; "
                  f"magenta: outside the voltage band or over the rating</sub>"},
        "xaxis": axis,
        "yaxis": y_axis,
        "hovermode": "closest",
        "showlegend": False,
        "height": MAP_HEIGHT,
    }  # fmt: skip


def map_spec(base: MapBase, style: Mapping[str, Sequence[Any]], title: str) -> dict[str, Any]:
    """One interval's feeder map as a plotly figure's plain data (module docstring)."""
    return {"data": map_traces(base, style), "layout": map_layout(base, title)}


def map_figure(base: MapBase, style: Mapping[str, Sequence[Any]], title: str) -> go.Figure:
    """One interval's feeder map as a (validated) plotly figure."""
    return go.Figure(map_spec(base, style, title))


def restyle_arrays(base: MapBase, style: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """What the dashboard passes to ``Plotly.restyle`` to show another interval on a drawn
    map: the trace indices and their new colours, sizes and texts."""
    n = len(base.layout.line)
    return {
        "edges": list(range(n)),
        "edge_hover": n,
        "nodes": n + 1,
        **{k: list(v) for k, v in style.items()},
    }


def grid_stress(
    v_min_pu: np.ndarray,
    v_max_pu: np.ndarray,
    max_loading_frac: np.ndarray,
    v_limits: tuple[float, float],
) -> np.ndarray:
    """How close each interval comes to a limit: the largest of the voltage drop below
    1 p.u. over the allowed drop (``1 - v_min_limit``), the rise over the allowed rise,
    and the highest line loading over its rating; above 1 a limit is broken. NaN where
    the feeder was not checked."""
    lo, hi = v_limits
    drop = (1.0 - np.asarray(v_min_pu, float)) / (1.0 - lo)
    rise = (np.asarray(v_max_pu, float) - 1.0) / (hi - 1.0)
    stack = np.vstack([drop, rise, np.asarray(max_loading_frac, float)])
    out = np.full(stack.shape[1], np.nan)
    ok = np.isfinite(stack).any(axis=0)
    out[ok] = np.nanmax(stack[:, ok], axis=0)
    return out
