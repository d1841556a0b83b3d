"""The run's ``report.html``: KPIs and plotly figures, readable offline.

plotly.js is embedded once, from the installed plotly package; the page loads nothing
from the network.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scenarios.engine.batch import Showcase
from scenarios.reports.buckets import Buckets
from scenarios.reports.energy import flows_figure, stored_energy_figure
from scenarios.reports.grid_tables import ElementTable, GridTables, time_buckets
from scenarios.reports.html_page import Figure, figures_html, kpi_cards

_KPI_LABELS: Sequence[tuple[str, str]] = (
    ("self_sufficiency", "Self-sufficiency"),
    ("self_consumption", "Self-consumption"),
    ("p2p_share", "P2P share of purchases"),
    ("p2p_kwh", "P2P energy"),
    ("community_savings", "Community savings"),
    ("savings_frac", "Savings vs no-P2P"),
    ("mean_price_per_kwh", "Mean P2P price"),
    ("households_better_off_frac", "Households better off"),
    ("peak_import_kw", "Peak import"),
    ("violation_hours", "Violation hours"),
    ("curtailed_kwh", "Curtailed"),
)


def _price_figure(iv: pd.DataFrame, market: Mapping[str, Any], b: Buckets) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    volume = f"P2P volume [kWh {b.per()}]" if b.bucketed else "P2P volume [kWh]"
    x = b.x(iv["timestamp"])
    fig.add_trace(
        go.Bar(
            x=x,
            y=b.reduce(iv["p2p_kwh"], "sum"),
            name=volume,
            marker_color="#9ecae1",
            opacity=0.7,
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=b.reduce(iv["clearing_price_per_kwh"], "mean"),
            name="clearing price" + (" (mean)" if b.bucketed else ""),
            mode="lines",
            line={"color": "#d62728"},
            connectgaps=False,
        ),
        secondary_y=False,
    )
    for key, label, dash in (
        ("retail_price_per_kwh", "retail", "dash"),
        ("feed_in_price_per_kwh", "feed-in", "dot"),
    ):
        fig.add_hline(
            y=market[key],
            line_dash=dash,
            line_color="grey",
            annotation_text=label,
            secondary_y=False,
        )
    fig.update_layout(
        title="Clearing price and P2P volume" + b.suffix("mean price, summed volume"),
        hovermode="x unified",
    )
    fig.update_yaxes(title_text=f"price [{market['currency']}/kWh]", secondary_y=False)
    fig.update_yaxes(title_text=volume, secondary_y=True)
    return fig


def _savings_figure(savings: np.ndarray, currency: str) -> go.Figure:
    fig = go.Figure(
        go.Histogram(x=savings, nbinsx=min(40, max(5, len(savings) // 3)), marker_color="#2ca02c")
    )
    fig.add_vline(x=0, line_color="black")
    fig.update_layout(
        title="Household savings against the no-P2P baseline",
        xaxis_title=f"savings over the run [{currency}]",
        yaxis_title="households",
    )
    return fig


def _step_curve(kwh: np.ndarray, price: np.ndarray, descending: bool) -> tuple[list, list]:
    order = np.argsort(-price if descending else price, kind="stable")
    q = np.concatenate([[0.0], np.cumsum(kwh[order])])
    p = price[order]
    x = np.repeat(q, 2)[1:-1]
    y = np.repeat(p, 2)
    return x.tolist(), y.tolist()


def _book_figure(show: Showcase, when: str, currency: str) -> go.Figure:
    fig = go.Figure()
    if show.t >= 0:
        bx, by = _step_curve(show.buy_kwh, show.buy_price_per_kwh, descending=True)
        sx, sy = _step_curve(show.sell_kwh, show.sell_price_per_kwh, descending=False)
        fig.add_trace(
            go.Scatter(
                x=bx,
                y=by,
                name="demand (bids)",
                mode="lines",
                line={"shape": "linear", "color": "#1f77b4"},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=sx,
                y=sy,
                name="supply (asks)",
                mode="lines",
                line={"shape": "linear", "color": "#ff7f0e"},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[show.volume_kwh],
                y=[show.price_per_kwh],
                name="clearing point",
                mode="markers",
                marker={"size": 12, "color": "#d62728"},
            )
        )
    fig.update_layout(
        title=f"Supply and demand at {when} (the interval with the most P2P trade)",
        xaxis_title="energy [kWh]",
        yaxis_title=f"limit price [{currency}/kWh]",
    )
    return fig


def report_body(
    kpis: Mapping[str, Any],
    intervals: pd.DataFrame,
    household_savings: np.ndarray,
    showcase: Showcase,
    market: Mapping[str, Any],
    interval_hours: float,
    extra_figures: Sequence[Figure] = (),
) -> Iterator[str | bytes]:
    """The report page's body (:func:`~scenarios.reports.html_page.write_page` writes
    the page), a part at a time."""
    currency = market["currency"]
    when = str(intervals["timestamp"].iloc[showcase.t]) if showcase.t >= 0 else "no interval"
    figures = [
        _price_figure(intervals, market, Buckets.of(intervals["timestamp"], interval_hours)),
        flows_figure(intervals, interval_hours),
        stored_energy_figure(intervals),
        _savings_figure(household_savings, currency),
        _book_figure(showcase, when, currency),
        *extra_figures,
    ]
    first = html.escape(str(intervals["timestamp"].iloc[0]))
    yield f"<p>{len(intervals)} intervals from {first}</p>" + kpi_cards(kpis, _KPI_LABELS, currency)
    yield from figures_html(figures)


#: The curtailment figure's bars of a run that dimmed: column, label, colour.
_DIMMING_BARS = (
    ("dimmed_kwh", "dimmed by the grid operator (§14a) [kWh]", "#9467bd"),
    ("ev_shortfall_kwh", "of it EV charging missing at departure [kWh]", "#17becf"),
)

#: Bus and line names are labels, not numbers or dates (``1-2`` is not 17 May 2011),
#: drawn in feeder order from the top.
NAMES_AXIS = {"type": "category", "autorange": "reversed"}


def grid_figures(
    intervals: pd.DataFrame,
    grid: GridTables,
    v_min_pu: float,
    v_max_pu: float,
    currency: str,
) -> list[go.Figure]:
    """Voltage along the feeder over time, line loadings, curtailment and nodal prices;
    ``grid``: the run's buses and lines tables summarised over its intervals."""
    bucket, size = time_buckets(intervals["timestamp"])
    starts = intervals["timestamp"].groupby(bucket).first().to_numpy()
    label = "" if size == 1 else f" (per {size} intervals the extreme nearer a limit)"

    def matrix(table: ElementTable, value: str) -> tuple[np.ndarray, np.ndarray]:
        """The buckets holding a value, and the (element, bucket) values there."""
        z = table.bucketed.get(value, np.full((len(table.order), len(starts)), np.nan))
        filled = ~np.isnan(z).all(axis=0)
        return starts[filled], z[:, filled]

    order = grid.buses.order
    v_x, v_low = matrix(grid.buses, "v_pu")
    v_high = matrix(grid.buses, "v_pu_max")[1] if "v_pu_max" in grid.buses.bucketed else v_low
    # per bus and bucket the voltage closer to its limit (relative to the allowed band):
    # the lowest, or the highest where the rise uses more of the band than the drop
    rise_wins = (v_high - 1.0) / (v_max_pu - 1.0) > (1.0 - v_low) / (1.0 - v_min_pu)
    v_fig = go.Figure(
        go.Heatmap(
            z=np.where(rise_wins, v_high, v_low),
            x=v_x,
            y=order,
            zmin=v_min_pu - 0.02,
            zmax=v_max_pu + 0.02,
            colorscale="RdBu",
            colorbar={"title": "v [p.u.]"},
        )
    )
    v_fig.update_layout(
        title=f"Voltage along the feeder{label} — limits {v_min_pu}–{v_max_pu} p.u.",
        yaxis_title="bus (from the slack)",
        yaxis=NAMES_AXIS,
    )
    b = Buckets.of(intervals["timestamp"])
    x = b.x(intervals["timestamp"])
    band = go.Figure()
    for col, name, how in (
        ("v_max_pu", "highest bus voltage", "max"),
        ("v_min_pu", "lowest bus voltage", "min"),
    ):
        band.add_trace(
            go.Scatter(
                x=x,
                y=b.reduce(intervals[col], how),
                name=name + (f" ({how} {b.per()})" if b.bucketed else ""),
                mode="lines",
            )
        )
    for limit in (v_min_pu, v_max_pu):
        band.add_hline(y=limit, line_dash="dash", line_color="red")
    band.update_layout(
        title="Voltage band over time" + b.suffix("highest max, lowest min"),
        yaxis_title="voltage [p.u.]",
        hovermode="x unified",
    )

    load_order = grid.lines.order
    l_x, loading = matrix(grid.lines, "loading_frac")
    l_fig = go.Figure(
        go.Heatmap(
            z=100 * loading,
            x=l_x,
            y=load_order,
            zmin=0,
            zmax=110,
            colorscale="YlOrRd",
            colorbar={"title": "loading [%]"},
        )
    )
    most = "" if size == 1 else f" (the highest over {size} intervals)"
    l_fig.update_layout(title=f"Line and transformer loading{most}", yaxis=NAMES_AXIS)

    c_fig = make_subplots(specs=[[{"secondary_y": True}]])
    kwh = f"[kWh {b.per()}]" if b.bucketed else "[kWh]"
    c_fig.add_trace(
        go.Bar(
            x=x,
            y=b.reduce(intervals["curtailed_kwh"], "sum"),
            name=f"curtailed PV {kwh}",
            marker_color="#ff7f0e",
        )
    )
    # §14a dimming, where the run dimmed (results written before it have no such columns)
    dimmed = int(intervals["dimmed_kwh"].gt(0).sum()) if "dimmed_kwh" in intervals else 0
    for col, name, color in _DIMMING_BARS if dimmed else ():
        c_fig.add_trace(
            go.Bar(
                x=x,
                y=b.reduce(intervals[col], "sum"),
                name=name.replace("[kWh]", kwh),
                marker_color=color,
            )
        )
    c_fig.add_trace(
        go.Scatter(
            x=x,
            y=b.reduce(intervals["violations_before_reclear"], "max"),
            name="limits broken before re-clearing" + (f" (max {b.per()})" if b.bucketed else ""),
            mode="lines",
            line={"color": "#d62728"},
        ),
        secondary_y=True,
    )
    what = f"Curtailment, §14a dimming ({dimmed} intervals dimmed)" if dimmed else "Curtailment"
    c_fig.update_layout(
        title=f"{what} and re-cleared intervals" + b.suffix("summed energy, max limits broken"),
        hovermode="x unified",
    )
    c_fig.update_yaxes(title_text="energy " + kwh, secondary_y=False)
    c_fig.update_yaxes(title_text="limits broken", secondary_y=True)

    x, prices = matrix(grid.buses, "nodal_price_per_kwh")
    priced = prices.shape[1] > 0
    n_fig = go.Figure()
    if priced:
        n_fig.add_trace(
            go.Heatmap(
                z=prices,
                x=x,
                y=order,
                colorscale="Viridis",
                colorbar={"title": f"{currency}/kWh"},
            )
        )
    n_fig.update_layout(
        title="Nodal prices where the market was re-cleared with the feeder"
        + ("" if priced else f" ({_why_no_nodal_prices(intervals)})"),
        yaxis=NAMES_AXIS,
    )
    return [v_fig, band, l_fig, c_fig, n_fig]


def _why_no_nodal_prices(intervals: pd.DataFrame) -> str:
    """Why no interval has nodal prices: no limit broken, or which limits stayed broken."""
    broken = int((intervals["violations_before_reclear"] > 0).sum())
    if broken == 0:
        return "none: no limit was broken"
    own = int((intervals["violations_background"] > 0).sum())
    return (
        f"none: {broken} intervals broke a limit, {own} of them by the feeder's own load "
        "alone; none was re-cleared to within the limits, so no interval has a price"
    )
