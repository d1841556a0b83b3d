"""The district report's figures (:mod:`scenarios.reports.district_report`): every series
folded per time bucket into the bucket's lowest and highest value (or its sum, for
energy), never its mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scenarios.reports.run import NAMES_AXIS


@dataclass(frozen=True)
class Buckets:
    """The report's time buckets: ``of[t]`` each interval's bucket, ``size`` intervals per
    bucket, ``starts`` each bucket's first timestamp."""

    of: np.ndarray
    size: int
    starts: np.ndarray

    @property
    def n(self) -> int:
        return len(self.starts)

    @property
    def label(self) -> str:
        return "" if self.size == 1 else f" (per {self.size} intervals: lowest and highest)"

    def empty(self, how: str) -> np.ndarray:
        """An accumulator for :meth:`fold`: zeros for ``sum``, NaN for ``min``/``max``."""
        return np.zeros(self.n) if how == "sum" else np.full(self.n, np.nan)

    def fold(self, acc: np.ndarray, t: np.ndarray, v: np.ndarray, how: str) -> None:
        """Fold the values ``v`` of intervals ``t`` into ``acc`` in place (NaN skipped)."""
        b = self.of[np.asarray(t, np.int64)]
        ok = ~np.isnan(v)
        if how == "sum":
            acc += np.bincount(b[ok], v[ok], self.n)
        else:
            (np.fmin if how == "min" else np.fmax).at(acc, b[ok], v[ok])

    def reduce(self, t: np.ndarray, v: np.ndarray, how: str) -> np.ndarray:
        acc = self.empty(how)
        self.fold(acc, t, np.asarray(v, float), how)
        return acc


def _line(fig: go.Figure, x: np.ndarray, y: np.ndarray, name: str, **kw: object) -> None:
    fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", connectgaps=False, **kw))


def level_energy_figure(
    b: Buckets, lv: dict[str, np.ndarray], d_iv: pd.DataFrame | None
) -> go.Figure:
    """Energy per level over time [kWh per bucket]: within the feeders, between them,
    with the utility."""
    fig = go.Figure()
    _line(fig, b.starts, lv["p2p_kwh"], "feeder markets (within the LV feeders)")
    if d_iv is not None and "district_kwh" in d_iv:
        _line(fig, b.starts, b.reduce(d_iv["t"], d_iv["district_kwh"], "sum"),
              "district market (between the feeders)")  # fmt: skip
    _line(fig, b.starts, lv["grid_import_kwh"], "utility import")
    _line(fig, b.starts, lv["grid_export_kwh"], "utility export")
    per = "interval" if b.size == 1 else f"{b.size} intervals"
    fig.update_layout(
        title="Energy per level", yaxis_title=f"energy [kWh per {per}]", hovermode="x unified"
    )
    return fig


def price_figure(
    b: Buckets, d_iv: pd.DataFrame, currency: str, tariff: tuple[float, float]
) -> go.Figure:
    """The district's clearing price (lowest and highest of the bucket) and its volume."""
    t = d_iv["t"].to_numpy()
    price = d_iv["clearing_price_per_kwh"].to_numpy(float)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=b.starts, y=b.reduce(t, d_iv["district_kwh"], "sum"), name="district kWh",
               marker_color="#9ecae1", opacity=0.7),
        secondary_y=True,
    )  # fmt: skip
    for how, name, color in (
        ("max", "highest price", "#d62728"),
        ("min", "lowest price", "#ff9896"),
    ):
        fig.add_trace(
            go.Scatter(x=b.starts, y=b.reduce(t, price, how), name=name, mode="lines",
                       line={"color": color}, connectgaps=False),
            secondary_y=False,
        )  # fmt: skip
    for y, label, dash in ((tariff[0], "retail", "dash"), (tariff[1], "feed-in", "dot")):
        fig.add_hline(y=y, line_dash=dash, line_color="grey", annotation_text=label,
                      secondary_y=False)  # fmt: skip
    fig.update_layout(title=f"District price{b.label}", hovermode="x unified")
    fig.update_yaxes(title_text=f"price [{currency}/kWh]", secondary_y=False)
    fig.update_yaxes(title_text="district volume [kWh]", secondary_y=True)
    return fig


def band_figure(
    b: Buckets,
    lv: dict[str, np.ndarray],
    d_iv: pd.DataFrame | None,
    limits: tuple[float, float],
) -> go.Figure:
    """MV voltage band and the LV feeders' band (over all feeders) with the limits."""
    fig = go.Figure()
    if d_iv is not None and "mv_v_min_pu" in d_iv:
        t = d_iv["t"].to_numpy()
        _line(fig, b.starts, b.reduce(t, d_iv["mv_v_max_pu"], "max"), "MV highest",
              line={"color": "#1f77b4"})  # fmt: skip
        _line(fig, b.starts, b.reduce(t, d_iv["mv_v_min_pu"], "min"), "MV lowest",
              line={"color": "#1f77b4", "dash": "dot"})  # fmt: skip
    _line(fig, b.starts, lv["v_max_pu"], "LV highest (any feeder)", line={"color": "#ff7f0e"})
    _line(fig, b.starts, lv["v_min_pu"], "LV lowest (any feeder)",
          line={"color": "#ff7f0e", "dash": "dot"})  # fmt: skip
    for limit in limits:
        fig.add_hline(y=limit, line_dash="dash", line_color="red")
    fig.update_layout(
        title=f"Voltage band{b.label} — limits {limits[0]}–{limits[1]} p.u.",
        yaxis_title="voltage [p.u.]",
        hovermode="x unified",
    )
    return fig


def loading_figure(b: Buckets, lv: dict[str, np.ndarray], d_iv: pd.DataFrame | None) -> go.Figure:
    """The highest MV and LV loading of each bucket [%]."""
    fig = go.Figure()
    if d_iv is not None and "mv_max_line_loading_frac" in d_iv:
        mv = b.reduce(d_iv["t"].to_numpy(), d_iv["mv_max_line_loading_frac"], "max")
        _line(fig, b.starts, 100 * mv, "MV lines and HV/MV transformer")
    _line(fig, b.starts, 100 * lv["max_line_loading_frac"], "LV lines and MV/LV transformers")
    fig.add_hline(y=100, line_dash="dash", line_color="red")
    fig.update_layout(
        title=f"Highest line loading{b.label}", yaxis_title="loading [%]", hovermode="x unified"
    )
    return fig


def transformer_figure(
    b: Buckets, feeder_ids: Sequence[str], low: np.ndarray, high: np.ndarray
) -> go.Figure:
    """Each MV/LV transformer's flow per bucket [kW, export to MV positive]: the bucket's
    extreme (its lowest or highest flow, whichever is larger in size)."""
    extreme = np.where(np.abs(low) > np.abs(high), low, high)
    span = float(np.nanmax(np.abs(extreme), initial=0.0)) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=extreme,
            x=b.starts,
            y=list(feeder_ids),
            zmin=-span,
            zmax=span,
            colorscale="RdBu",
            colorbar={"title": "kW"},
            customdata=np.stack([low, high], axis=-1),
            hovertemplate="%{y} %{x}<br>lowest %{customdata[0]:.1f} kW, "
            "highest %{customdata[1]:.1f} kW<extra></extra>",
        )
    )
    fig.update_layout(
        title="MV/LV transformer flows (export to the MV grid positive; per bucket the "
        "larger of its lowest and highest)",
        yaxis=NAMES_AXIS,
        height=max(420, 14 * len(feeder_ids) + 120),
    )
    return fig
