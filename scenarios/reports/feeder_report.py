"""The report's feeder maps (:mod:`scenarios.reports.feeder_map`) from a run's tables.

Two figures:

- the map of the run's **worst interval**: the highest :func:`grid_stress` (the largest
  share of a limit used: voltage drop, voltage rise or line loading), the interval with
  the lowest voltage or the highest loading relative to its limit;
- an **animation over the run's days** with a slider: one frame per day, showing that
  day's worst interval (by the same measure), so a week's run is seven frames and the
  page stays small and offline. Node sizes share one scale over the run (the largest
  injection of any bus in any interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from grid.feeders import Feeder
from grid.layout import feeder_layout
from scenarios.reports.feeder_map import (
    MapBase,
    grid_stress,
    map_base,
    map_figure,
    map_layout,
    map_style,
    map_traces,
)


def _grid(frame: pd.DataFrame, key: str, order: tuple[str, ...], col: str, n_t: int) -> np.ndarray:
    """``frame[col]`` as an array ``[t, element]`` in ``order`` (NaN where missing)."""
    out = np.full((n_t, len(order)), np.nan)
    pos = pd.Index(order).get_indexer(frame[key].astype(str))
    t = frame["t"].to_numpy(np.int64)
    keep = (pos >= 0) & (t >= 0) & (t < n_t)
    out[t[keep], pos[keep]] = frame[col].to_numpy(float)[keep]
    return out


class RunMap:
    """A run's feeder state as arrays ``[t, bus]`` / ``[t, line]`` over the map's base."""

    def __init__(self, base: MapBase, buses: pd.DataFrame, lines: pd.DataFrame, n_t: int) -> None:
        lay = base.layout
        self.base = base
        self.v = _grid(buses, "bus", lay.bus, "v_pu", n_t)
        self.p = _grid(buses, "bus", lay.bus, "p_kw", n_t)
        self.price = _grid(buses, "bus", lay.bus, "nodal_price_per_kwh", n_t)
        self.loading = _grid(lines, "line", lay.line, "loading_frac", n_t)
        self.flow = _grid(lines, "line", lay.line, "p_kw", n_t)
        self.p_ref_kw = float(np.nanmax(np.abs(self.p), initial=0.0))

    def style(self, t: int) -> dict[str, list[Any]]:
        return map_style(
            self.base, self.v[t], self.p[t], self.price[t], self.loading[t], self.flow[t],
            self.p_ref_kw,
        )  # fmt: skip


def worst_per_day(intervals: pd.DataFrame, stress: np.ndarray) -> list[int]:
    """Each day's interval of the highest stress (days without a checked interval are
    left out), in time order."""
    days = pd.to_datetime(intervals["timestamp"]).dt.date.to_numpy()
    out = []
    for day in dict.fromkeys(days):
        idx = np.flatnonzero(days == day)
        s = stress[idx]
        if np.isfinite(s).any():
            out.append(int(idx[np.nanargmax(s)]))
    return out


def _when(intervals: pd.DataFrame, t: int) -> str:
    return str(pd.Timestamp(intervals["timestamp"].iloc[t]))[:16]


def feeder_map_figures(
    feeder: Feeder,
    households: pd.DataFrame,
    intervals: pd.DataFrame,
    buses: pd.DataFrame,
    lines: pd.DataFrame,
    v_limits: tuple[float, float],
    currency: str,
) -> list[go.Figure]:
    """The worst interval's map and the animation over the days (module docstring);
    no figure when no interval was checked."""
    stress = grid_stress(
        intervals["v_min_pu"], intervals["v_max_pu"], intervals["max_line_loading_frac"], v_limits
    )
    if not np.isfinite(stress).any():
        return []
    hh: Mapping[str, str] = (
        dict(zip(households["agent_id"].astype(str), households["bus"].astype(str), strict=True))
        if "bus" in households
        else {}
    )
    base = map_base(feeder_layout(feeder), hh, v_limits, currency)
    run_map = RunMap(base, buses, lines, len(intervals))
    worst = int(np.nanargmax(stress))
    what = "a limit broken" if stress[worst] > 1 else "no limit broken"
    worst_fig = map_figure(
        base,
        run_map.style(worst),
        f"Feeder map at {_when(intervals, worst)}: the worst grid state of the run "
        f"({100 * stress[worst]:.0f} % of a limit used, {what})",
    )
    return [worst_fig, _animation(run_map, intervals, stress)]


def _animation(run_map: RunMap, intervals: pd.DataFrame, stress: np.ndarray) -> go.Figure:
    base = run_map.base
    days = worst_per_day(intervals, stress)
    n_moving = len(base.layout.line) + 2  # the edges, their midpoints and the buses

    def title(t: int) -> str:
        return (
            f"Feeder map, each day's worst interval: {_when(intervals, t)} "
            f"({100 * stress[t]:.0f} % of a limit used)"
        )

    frames = [
        go.Frame(
            name=_when(intervals, t),
            data=map_traces(base, run_map.style(t))[:n_moving],
            traces=list(range(n_moving)),
            layout={"title": map_layout(base, title(t))["title"]},
        )
        for t in days
    ]
    fig = go.Figure(map_traces(base, run_map.style(days[0])), frames=frames)
    fig.update_layout(**map_layout(base, title(days[0])))
    step = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
            "transition": {"duration": 0}}  # fmt: skip
    fig.update_layout(
        sliders=[
            {
                "active": 0,
                "currentvalue": {"prefix": "day: "},
                "pad": {"t": 30},
                "steps": [
                    {"label": f.name[:10], "method": "animate", "args": [[f.name], step]}
                    for f in frames
                ],
            }
        ],
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "x": 0.0,
                "y": -0.08,
                "xanchor": "right",
                "buttons": [
                    {
                        "label": "play",
                        "method": "animate",
                        "args": [None, {**step, "frame": {"duration": 800, "redraw": True},
                                        "fromcurrent": True}],
                    }
                ],
            }
        ],
    )  # fmt: skip
    return fig
