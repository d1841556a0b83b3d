"""The report pages' common HTML: plotly figures in one template (plotly.js embedded once,
from the installed plotly package, so a page loads nothing from the network), KPI cards
and the page around them."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from scenarios.kpis.format import format_kpi

PAGE_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.kpi{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:150px}
.kpi .v{font-size:1.4em;font-weight:600} .kpi .l{color:#666;font-size:.85em}"""


@cache
def report_template() -> dict[str, Any]:
    """The reports' plotly template as plain data, read once: assigning it by name
    deep-copies and validates it per figure (0.3 s each)."""
    return go.Figure(layout={"template": "plotly_white"}).to_dict()["layout"]["template"]


def figures_html(figures: Sequence[go.Figure]) -> str:
    """The figures as HTML fragments in the reports' template, plotly.js in the first."""
    parts = []
    template = report_template()
    for i, fig in enumerate(figures):
        fig.update_layout(
            height=fig.layout.height or 420, margin={"l": 60, "r": 30, "t": 60, "b": 50}
        )
        spec = fig.to_dict()
        spec["layout"]["template"] = template  # built once, not validated per figure
        parts.append(
            pio.to_html(
                spec,
                full_html=False,
                include_plotlyjs=(i == 0),
                config={"displaylogo": False},
                auto_play=False,
                validate=False,
            )
        )
    return "".join(parts)


def kpi_cards(kpis: Mapping[str, Any], labels: Sequence[tuple[str, str]], currency: str) -> str:
    """One card per ``(key, label)``: the KPI as :func:`format_kpi` writes it."""
    cards = "".join(
        f'<div class="kpi"><div class="v">{format_kpi(k, kpis.get(k), currency)}</div>'
        f'<div class="l">{html.escape(label)}</div></div>'
        for k, label in labels
    )
    return f'<div class="kpis">{cards}</div>'


def page_html(title: str, body: str, css: str = "") -> str:
    """A whole report page: ``title`` (escaped) as its title and heading, then ``body``."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} — p2pgrid report</title>
<style>
{PAGE_CSS}
{css}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
