"""The report pages' common HTML: plotly figures in one template (plotly.js embedded once,
from the installed plotly package, so a page loads nothing from the network), KPI cards
and the page around them.

A page is written to its file a part at a time (:func:`write_page`), each figure as it is
turned into HTML (:func:`figures_html`), so the page is never held whole in memory: a
year's run page is 13.7 MB, and building it as one string took four times that
(the parts, their join, the page around them, its encoding; README, "Results that fit in
memory")."""

from __future__ import annotations

import html
import json
import pkgutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import plotly.graph_objects as go
import plotly.io as pio

from scenarios.kpis.format import format_kpi

PAGE_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.kpi{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:150px}
.kpi .v{font-size:1.4em;font-weight:600} .kpi .l{color:#666;font-size:.85em}"""


#: The reports' plotly template, by the name plotly knows it by.
TEMPLATE = "plotly_white"


@cache
def report_template() -> dict[str, Any]:
    """The reports' plotly template as plain data, read once from the file plotly itself
    loads it from (``plotly/package_data/templates/``, the data plotly applies by name:
    ``tests/scenarios/test_report_buckets.py``): assigning it by name deep-copies and
    validates it per figure (0.3 s each), and building it as a figure once costs 0.13 s."""
    data = pkgutil.get_data("plotly", f"package_data/templates/{TEMPLATE}.json")
    if data is None:
        raise FileNotFoundError(f"plotly's template {TEMPLATE!r} (package_data/templates)")
    template: dict[str, Any] = json.loads(data)
    return template


Figure: TypeAlias = go.Figure | Mapping[str, Any] | str
"""A figure of a page: a plotly figure, or its plain data (``data``, ``layout``, ``frames``:
what ``to_dict`` gives, unvalidated; the feeder maps), or HTML written in its place (a
line that says why a panel is not drawn)."""


def figures_html(figures: Sequence[Figure]) -> Iterator[str | bytes]:
    """plotly.js, then the figures as HTML fragments in the reports' template, one at a
    time (plotly.js as the bundle's bytes: through ``to_html`` or ``get_plotlyjs`` its
    4.6 MB took 18 MB to build)."""
    template = report_template()
    yield '<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
    yield '<script type="text/javascript">'
    yield plotly_js()
    yield "</script>"
    for fig in figures:
        if isinstance(fig, str):
            yield fig
            continue
        spec = fig.to_dict() if isinstance(fig, go.Figure) else dict(fig)
        layout = dict(spec.get("layout", {}))
        layout["height"] = layout.get("height") or 420
        layout["margin"] = {**layout.get("margin", {}), "l": 60, "r": 30, "t": 60, "b": 50}
        layout["template"] = template  # built once, not validated per figure
        spec["layout"] = layout
        yield pio.to_html(
            spec,
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False},
            auto_play=False,
            validate=False,
        )


def kpi_cards(kpis: Mapping[str, Any], labels: Sequence[tuple[str, str]], currency: str) -> str:
    """One card per ``(key, label)``: the KPI as :func:`format_kpi` writes it."""
    cards = "".join(
        f'<div class="kpi"><div class="v">{format_kpi(k, kpis.get(k), currency)}</div>'
        f'<div class="l">{html.escape(label)}</div></div>'
        for k, label in labels
    )
    return f'<div class="kpis">{cards}</div>'


def plotly_js() -> bytes:
    """The installed plotly's plotly.js bundle."""
    data = pkgutil.get_data("plotly", "package_data/plotly.min.js")
    assert data is not None
    return data


def write_page(path: Path, title: str, body: Iterable[str | bytes], css: str = "") -> Path:
    """Write a whole report page to ``path``: ``title`` (escaped) as its title and
    heading, then ``body``'s parts (text, or UTF-8 bytes written as they are), each
    written as it comes; ``path``."""
    with open(path, "w", encoding="utf-8") as page:
        page.write(
            f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} — p2pgrid report</title>
<style>
{PAGE_CSS}
{css}
</style></head><body>
<h1>{html.escape(title)}</h1>
"""
        )
        for part in body:
            if isinstance(part, bytes):
                page.flush()
                page.buffer.write(part)
            else:
                page.write(part)
        page.write("\n</body></html>\n")
    return path
