"""The report's feeder maps (:mod:`scenarios.reports.feeder_map`) from a run's tables.

Two figures:

- the map of the run's **worst interval**: the highest :func:`grid_stress` (the largest
  share of a limit used: voltage drop, voltage rise or line loading), the interval with
  the lowest voltage or the highest loading relative to its limit;
- an **animation over the run's days** with a slider: one frame per day, showing that
  day's worst interval (by the same measure), so a week's run is seven frames and the
  page stays small and offline; a run longer than :data:`MAX_FRAMES` days has one frame
  per period of ``ceil(days / MAX_FRAMES)`` days (a year: 31 frames of 12 days each), so
  the page and the report step's memory do not grow with the run's length. Node sizes
  share one scale over the run (the largest injection of any bus in any interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from grid.feeders import Feeder
from grid.layout import feeder_layout
from scenarios.reports.feeder_map import (
    MapBase,
    grid_stress,
    map_base,
    map_layout,
    map_spec,
    map_style,
    map_traces,
)
from scenarios.reports.grid_tables import ElementTable, GridTables


def _picked(table: ElementTable, order: tuple[str, ...], col: str, n_picks: int) -> np.ndarray:
    """``table``'s ``col`` at the picked intervals, ``[pick, element]`` in ``order`` (NaN
    where missing)."""
    kept = table.picked.get(col, np.zeros((n_picks, 0)))
    pos = pd.Index(table.order[: kept.shape[1]]).get_indexer(list(order))
    out = np.full((n_picks, len(order)), np.nan)
    out[:, pos >= 0] = kept[:, pos[pos >= 0]]
    return out


class RunMap:
    """A run's feeder state at the picked intervals over the map's base."""

    def __init__(self, base: MapBase, grid: GridTables) -> None:
        lay, n = base.layout, len(grid.picks)
        self.base, self.grid = base, grid
        self.v = _picked(grid.buses, lay.bus, "v_pu", n)
        self.p = _picked(grid.buses, lay.bus, "p_kw", n)
        self.price = _picked(grid.buses, lay.bus, "nodal_price_per_kwh", n)
        self.loading = _picked(grid.lines, lay.line, "loading_frac", n)
        self.flow = _picked(grid.lines, lay.line, "p_kw", n)
        self.p_ref_kw = grid.buses.abs_max.get("p_kw", 0.0)

    def style(self, t: int) -> dict[str, list[Any]]:
        i = self.grid.row(t)
        return map_style(
            self.base, self.v[i], self.p[i], self.price[i], self.loading[i], self.flow[i],
            self.p_ref_kw,
        )  # fmt: skip


MAX_FRAMES = 31
"""The animation's most frames (module docstring)."""


def worst_per_day(
    intervals: pd.DataFrame, stress: np.ndarray, days_per_frame: int = 1
) -> list[int]:
    """Each day's (each period of ``days_per_frame`` days') interval of the highest
    stress (days without a checked interval are left out), in time order."""
    dates = pd.to_datetime(intervals["timestamp"]).dt.date.to_numpy()
    first = {d: i for i, d in enumerate(dict.fromkeys(dates))}
    days = np.array([first[d] for d in dates]) // days_per_frame
    out = []
    for day in dict.fromkeys(days):
        idx = np.flatnonzero(days == day)
        s = stress[idx]
        if np.isfinite(s).any():
            out.append(int(idx[np.nanargmax(s)]))
    return out


def stress_of(intervals: pd.DataFrame, v_limits: tuple[float, float]) -> np.ndarray:
    """Each interval's :func:`grid_stress`."""
    return grid_stress(
        intervals["v_min_pu"], intervals["v_max_pu"], intervals["max_line_loading_frac"], v_limits
    )


def map_intervals(intervals: pd.DataFrame, v_limits: tuple[float, float]) -> list[int]:
    """The intervals the maps draw: the worst of the run and each day's worst (none
    when no interval was checked)."""
    stress = stress_of(intervals, v_limits)
    if not np.isfinite(stress).any():
        return []
    return [int(np.nanargmax(stress)), *worst_per_day(intervals, stress, days_per_frame(intervals))]


def days_per_frame(intervals: pd.DataFrame) -> int:
    """Days per frame of the animation: 1 up to :data:`MAX_FRAMES` days."""
    n_days = pd.to_datetime(intervals["timestamp"]).dt.date.nunique()
    return max(1, -(-n_days // MAX_FRAMES))


def _when(intervals: pd.DataFrame, t: int) -> str:
    return str(pd.Timestamp(intervals["timestamp"].iloc[t]))[:16]


def feeder_map_figures(
    feeder: Feeder,
    households: pd.DataFrame,
    intervals: pd.DataFrame,
    grid: GridTables,
    v_limits: tuple[float, float],
    currency: str,
) -> list[dict[str, Any]]:
    """The worst interval's map and the animation over the days (module docstring), as
    plotly figures' plain data (:func:`scenarios.reports.feeder_map.map_spec`); no figure
    when no interval was checked. ``grid`` holds the buses and lines of
    :func:`map_intervals`."""
    stress = stress_of(intervals, v_limits)
    if not np.isfinite(stress).any():
        return []
    hh: Mapping[str, str] = (
        dict(zip(households["agent_id"].astype(str), households["bus"].astype(str), strict=True))
        if "bus" in households
        else {}
    )
    base = map_base(feeder_layout(feeder), hh, v_limits, currency)
    run_map = RunMap(base, grid)
    worst = int(np.nanargmax(stress))
    what = "a limit broken" if stress[worst] > 1 else "no limit broken"
    worst_fig = map_spec(
        base,
        run_map.style(worst),
        f"Feeder map at {_when(intervals, worst)}: the worst grid state of the run "
        f"({100 * stress[worst]:.0f} % of a limit used, {what})",
    )
    return [worst_fig, _animation(run_map, intervals, stress)]


def _animation(run_map: RunMap, intervals: pd.DataFrame, stress: np.ndarray) -> dict[str, Any]:
    base = run_map.base
    per = days_per_frame(intervals)
    days = worst_per_day(intervals, stress, per)
    n_moving = len(base.layout.line) + 2  # the edges, their midpoints and the buses
    each = "each day's" if per == 1 else f"each {per} days'"

    def title(t: int) -> str:
        return (
            f"Feeder map, {each} worst interval: {_when(intervals, t)} "
            f"({100 * stress[t]:.0f} % of a limit used)"
        )

    frames: list[dict[str, Any]] = [
        {
            "data": map_traces(base, run_map.style(t))[:n_moving],
            "layout": {"title": map_layout(base, title(t))["title"]},
            "name": _when(intervals, t),
            "traces": list(range(n_moving)),
        }
        for t in days
    ]
    step = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
            "transition": {"duration": 0}}  # fmt: skip
    layout = map_layout(base, title(days[0]))
    layout["sliders"] = [
        {
            "active": 0,
            "currentvalue": {"prefix": "day: "},
            "pad": {"t": 30},
            "steps": [
                {"label": f["name"][:10], "method": "animate", "args": [[f["name"]], step]}
                for f in frames
            ],
        }
    ]
    layout["updatemenus"] = [
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
    ]  # fmt: skip
    return {"data": map_traces(base, run_map.style(days[0])), "layout": layout, "frames": frames}
