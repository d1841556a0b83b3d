"""The comparison page ``compare.html``: mechanisms side by side, readable offline.

plotly.js is embedded once, from the installed plotly package; the page loads nothing
from the network.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scenarios.kpis.format import format_kpi
from scenarios.reports.html_page import figures_html, write_page

_CSS = """table{border-collapse:collapse;margin:16px 0}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}
tr th:first-child{text-align:left}"""

_TABLE_FORMAT: tuple[tuple[str, str], ...] = (
    ("efficiency", "Efficiency"),
    ("welfare", "Welfare"),
    ("optimal_welfare", "Optimal welfare"),
    ("p2p_kwh", "P2P energy"),
    ("p2p_share", "P2P share"),
    ("mean_price_per_kwh", "Mean buyer price"),
    ("mean_seller_price_per_kwh", "Mean seller price"),
    ("market_surplus", "Market surplus (operator)"),
    ("grid_fees", "Grid fees"),
    ("community_savings", "Community savings"),
    ("household_savings_median", "Median household savings"),
    ("households_better_off_frac", "Households better off"),
    ("savings_gini", "Gini of savings"),
)


def _table_html(table: pd.DataFrame, currency: str) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in table["mechanism"])
    body = []
    for key, label in _TABLE_FORMAT:
        cells = "".join(f"<td>{format_kpi(key, v, currency)}</td>" for v in table[key])
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _bars(table: pd.DataFrame, currency: str) -> go.Figure:
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "Allocative efficiency [%]",
            "P2P share of purchases [%]",
            f"Money [{currency}]",
        ),
    )
    names = table["mechanism"]
    fig.add_trace(go.Bar(x=names, y=100 * table["efficiency"], name="efficiency"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=100 * table["p2p_share"], name="P2P share"), 1, 2)
    for key, label in (
        ("community_savings", "community savings"),
        ("market_surplus", "market surplus (operator)"),
        ("grid_fees", "grid fees"),
    ):
        fig.add_trace(go.Bar(x=names, y=table[key], name=label), 1, 3)
    fig.update_layout(title="Welfare, P2P share and where the money goes", barmode="group")
    return fig


def _prices(intervals: Mapping[str, pd.DataFrame], currency: str) -> go.Figure:
    fig = go.Figure()
    for name, iv in intervals.items():
        traded = iv[iv["p2p_kwh"] > 0]
        fig.add_trace(
            go.Box(y=traded["clearing_price_per_kwh"], name=f"{name} (buyers)", boxmean=True)
        )
        fig.add_trace(
            go.Box(y=traded["seller_price_per_kwh"], name=f"{name} (sellers)", boxmean=True)
        )
    fig.update_layout(
        title="Prices per interval with trade (volume-weighted per interval)",
        yaxis_title=f"price [{currency}/kWh]",
        showlegend=False,
    )
    return fig


def _savings(savings: pd.DataFrame, table: pd.DataFrame, currency: str) -> go.Figure:
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.7, 0.3],
        subplot_titles=("Household savings against the no-P2P baseline", "Gini of savings"),
    )
    for name, part in savings.groupby("mechanism", sort=False):
        fig.add_trace(go.Box(y=part["savings"], name=str(name), boxpoints="all", jitter=0.4), 1, 1)
    fig.add_trace(
        go.Bar(x=table["mechanism"], y=table["savings_gini"], name="Gini", showlegend=False),
        1,
        2,
    )
    fig.update_yaxes(title_text=f"savings over the run [{currency}]", row=1, col=1)
    fig.update_layout(title="Household savings distribution and fairness", showlegend=False)
    return fig


def write_comparison(
    path: Path,
    title: str,
    table: pd.DataFrame,
    savings: pd.DataFrame,
    intervals: Mapping[str, pd.DataFrame],
    currency: str,
) -> Path:
    """Write the comparison page to ``path`` (self-contained HTML); ``path``."""
    figures = [
        _bars(table, currency),
        _prices(intervals, currency),
        _savings(savings, table, currency),
    ]
    for fig in figures:
        fig.update_layout(height=460)
    names = ", ".join(table["mechanism"])
    intro = f"""<p>The same scenario (same seed, households, profiles and limit prices) run once per
mechanism: {html.escape(names)}. Efficiency is welfare at the declared limit prices over
the welfare optimum of the same order books. The market surplus (buyers' payments minus
sellers' receipts) goes to the market operator.</p>
{_table_html(table, currency)}
"""
    return write_page(
        path, f"{title}: market mechanisms compared", [intro, *figures_html(figures)], _CSS
    )
