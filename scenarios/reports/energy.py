"""The report's community energy figures: power flows and stored energy over time; a
long run's in time buckets (:mod:`scenarios.reports.buckets`: the mean power and the mean
stored energy per bucket)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scenarios.reports.buckets import Buckets


def flows_figure(iv: pd.DataFrame, interval_hours: float) -> go.Figure:
    """Community power flows over time [kW]: sources positive, uses negative."""
    fig = go.Figure()
    b = Buckets.of(iv["timestamp"], interval_hours)
    x = b.x(iv["timestamp"])
    series = (
        ("generation_kwh", "PV generation", 1, "#ff7f0e"),
        ("demand_kwh", "household demand", -1, "#1f77b4"),
        ("ev_kwh", "EV charging", -1, "#9467bd"),
        ("battery_kwh", "battery charging", -1, "#2ca02c"),
        ("heat_pump_kwh", "heat pumps", -1, "#8c564b"),
        ("grid_import_kwh", "grid import", 1, "#7f7f7f"),
        ("grid_export_kwh", "grid export", -1, "#bcbd22"),
        ("p2p_kwh", "traded P2P", 1, "#d62728"),
    )
    for col, name, sign, color in series:
        if col == "heat_pump_kwh" and not iv.get(col, pd.Series([0.0])).gt(0).any():
            continue  # drawn for runs with heat pumps only
        fig.add_trace(
            go.Scatter(
                x=x,
                y=b.reduce(sign * iv[col] / interval_hours, "mean"),
                name=name,
                mode="lines",
                line={"color": color, "width": 1.2},
            )
        )
    fig.update_layout(
        title="Community energy flows (sources positive, uses negative)",
        yaxis_title="power [kW]" + b.suffix("mean"),
        hovermode="x unified",
    )
    return fig


def stored_energy_figure(iv: pd.DataFrame) -> go.Figure:
    """Energy stored in the home batteries and in the EVs, each on its own axis (left and
    right): a fleet of cars ten times the batteries' size does not flatten their curve."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    b = Buckets.of(iv["timestamp"])
    x = b.x(iv["timestamp"])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=b.reduce(iv["battery_soc_kwh"], "mean"),
            name="home batteries (left axis)",
            mode="lines",
            line={"color": "#2ca02c"},
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=b.reduce(iv["ev_soc_kwh"], "mean"),
            name="EVs (right axis)",
            mode="lines",
            line={"color": "#9467bd"},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title="Stored energy (sum over households)" + b.suffix("mean"), hovermode="x unified"
    )
    fig.update_yaxes(title_text="home batteries [kWh]", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="EVs [kWh]", rangemode="tozero", showgrid=False, secondary_y=True)
    return fig
