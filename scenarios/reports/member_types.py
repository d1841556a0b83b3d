"""The report's figure of the fairness KPIs per member type
(:mod:`scenarios.kpis.member_types`): who gains, and how evenly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from scenarios.kpis.member_types import MEMBER_TYPES

LABELS = {
    "pv": "PV owners",
    "battery": "battery owners",
    "ev": "EV owners",
    "heat_pump": "heat-pump owners",
    "non_owner": "no device",
}


def _number(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def member_type_figures(kpis: Mapping[str, Any], currency: str) -> list[go.Figure]:
    """Mean savings per member of each type, with the type's size, shared-energy share,
    Gini and Jain index; none when the KPIs have no member types (no baseline)."""
    shown = [
        t
        for t in MEMBER_TYPES
        if kpis.get(f"{t}_members") and kpis.get(f"{t}_savings_mean") is not None
    ]
    if not shown:
        return []
    labels = [
        f"{LABELS[t]}<br>{kpis[f'{t}_members']} members, P2P share "
        f"{_number(kpis.get(f'{t}_p2p_share'), '.0%')}<br>Gini "
        f"{_number(kpis.get(f'{t}_savings_gini'), '.2f')}, Jain "
        f"{_number(kpis.get(f'{t}_savings_jain'), '.2f')}"
        for t in shown
    ]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[kpis[f"{t}_savings_mean"] for t in shown],
            marker_color="#2ca02c",
            name="mean savings",
        )
    )
    fig.add_hline(y=0, line_color="black")
    fig.update_layout(
        title="Savings per member type against the no-P2P baseline "
        "(a member can be in several types)",
        yaxis_title=f"mean savings per member over the run [{currency}]",
    )
    return [fig]
