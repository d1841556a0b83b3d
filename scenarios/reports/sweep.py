"""The sweep page ``sweep.html``: KPIs over the swept parameters, readable offline.

plotly.js is embedded once, from the installed plotly package; the page loads nothing
from the network.

Layout of a KPI over the parameters: with two or more swept keys, a heatmap over the
first two (the mean over any others), or a scatter coloured by the KPI when the
variants do not fill that grid (random samples); with one key, a line; with none
varying, a bar per variant.

Rules that keep the panels honest:

- a key swept over listed values (a grid, not a random sample) is discrete: its axis is
  categorical, one tick per value, in sweep order (not a continuous axis padded to
  values never run, such as a battery share of -0.1);
- a KPI that is the same in every variant gets no panel, one line saying so;
- a colour bar is centred on zero (diverging ``RdBu``) only for a signed KPI (money, such
  as the savings, which may be either side of zero); the others span their own range
  on ``Viridis``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scenarios.kpis.format import format_kpi, kpi_kind
from scenarios.reports.html_page import figures_html, write_page
from scenarios.results.files import INTERVALS_FILE
from scenarios.studies.sweep_variants import SweepSpec

_CSS = """table{border-collapse:collapse;margin:16px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
tr.failed td{background:#fde8e8}
pre{white-space:pre-wrap;font-size:12px}"""

MAX_PRICE_BOXES = 80
"""Most variants whose price distributions are drawn (evenly spaced over the sweep)."""

_FIGURE_KPIS: tuple[tuple[str, str], ...] = (
    ("community_savings", "Community savings vs no-P2P [{currency}]"),
    ("self_sufficiency", "Self-sufficiency [-]"),
    ("violation_hours", "Violation hours after clearing [h]"),
    ("curtailed_kwh", "PV curtailed by the grid check [kWh]"),
)

_TABLE_KPIS: tuple[tuple[str, str], ...] = (
    ("self_sufficiency", "self-suff."),
    ("p2p_share", "P2P share"),
    ("community_savings", "savings"),
    ("mean_price_per_kwh", "mean price"),
    ("violation_hours", "violations"),
    ("violation_hours_background", "bg violations"),
    ("curtailed_kwh", "curtailed"),
    ("wall_time_s", "wall time"),
)


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(_label(v) for v in value) + "]"
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    values = [v for v in series if v is not None]
    return bool(values) and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )


def _axes(ok: pd.DataFrame, keys: list[str]) -> list[str]:
    """Swept keys that take more than one value among the finished variants."""
    return [k for k in keys if ok[k].map(_label).nunique() > 1]


def _axis_values(series: pd.Series, discrete: bool) -> pd.Series:
    if discrete or not _is_numeric(series):
        return series.map(_label)
    return series.astype(float)


def _category_order(series: pd.Series) -> list[str]:
    """A discrete key's values as axis labels: numbers in ascending order, others in
    the order the sweep ran them."""
    values = list(dict.fromkeys(v for v in series if v is not None))
    if _is_numeric(series):
        values.sort()
    return [_label(v) for v in values]


def is_signed(kpi: str) -> bool:
    """Whether a KPI may be either side of zero (money: savings, costs), so that its
    colour bar is centred on zero."""
    return kpi_kind(kpi) == "money"


def is_constant(values: pd.Series) -> bool:
    """Whether every finished variant has the same value (within 1e-12, relative)."""
    z = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    return len(z) > 0 and bool(np.ptp(z) <= 1e-12 * max(1.0, float(np.abs(z).max())))


def _colors(kpi: str, z: np.ndarray, prefix: str) -> dict[str, Any]:
    """Colour-scale settings (``prefix`` "z" for a heatmap, "c" for markers)."""
    if is_signed(kpi):
        return {"colorscale": "RdBu", f"{prefix}mid": 0.0}
    finite = z[np.isfinite(z)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    return {"colorscale": "Viridis", f"{prefix}min": lo, f"{prefix}max": hi}


def _kpi_figure(
    ok: pd.DataFrame, axes: list[str], discrete: set[str], kpi: str, title: str
) -> go.Figure:
    fig = go.Figure()
    z = pd.to_numeric(ok[kpi], errors="coerce") if kpi in ok else pd.Series(dtype=float)
    cat = {"type": "category", "categoryorder": "array"}
    if len(axes) >= 2:
        ax, ay = axes[0], axes[1]
        x, y = _axis_values(ok[ax], ax in discrete), _axis_values(ok[ay], ay in discrete)
        frame = pd.DataFrame({"x": x.to_numpy(), "y": y.to_numpy(), "z": z.to_numpy()})
        grid = frame.groupby(["y", "x"], sort=True)["z"].mean().unstack("x")
        if ax in discrete:
            grid = grid.reindex(columns=_category_order(ok[ax]))
        if ay in discrete:
            grid = grid.reindex(index=_category_order(ok[ay]))
        filled = grid.notna().to_numpy().mean() if grid.size else 0.0
        if filled >= 0.75:
            fig.add_trace(
                go.Heatmap(
                    x=list(grid.columns),
                    y=list(grid.index),
                    z=grid.to_numpy(),
                    colorbar={"title": kpi},
                    hoverongaps=False,
                    texttemplate="%{z:.3g}",
                    **_colors(kpi, grid.to_numpy(float), "z"),
                )
            )
        else:
            fig.add_trace(
                go.Scatter(
                    x=frame["x"],
                    y=frame["y"],
                    mode="markers",
                    text=ok["variant"],
                    marker={
                        "color": frame["z"],
                        "size": 11,
                        "showscale": True,
                        "colorbar": {"title": kpi},
                        **_colors(kpi, frame["z"].to_numpy(float), "c"),
                    },
                )
            )
        more = f" (mean over {', '.join(axes[2:])})" if len(axes) > 2 else ""
        fig.update_layout(title=title + more, xaxis_title=ax, yaxis_title=ay)
        if ax in discrete:
            fig.update_xaxes(**cat, categoryarray=_category_order(ok[ax]))
        if ay in discrete:
            fig.update_yaxes(**cat, categoryarray=_category_order(ok[ay]))
    elif len(axes) == 1:
        ax = axes[0]
        x = _axis_values(ok[ax], ax in discrete)
        frame = pd.DataFrame({"x": x.to_numpy(), "z": z.to_numpy()})
        mean = frame.groupby("x", sort=True)["z"].mean()
        if ax in discrete:
            mean = mean.reindex(_category_order(ok[ax]))
        fig.add_trace(
            go.Scatter(x=list(mean.index), y=mean.to_numpy(), mode="lines+markers", name="mean")
        )
        if len(frame) > len(mean):
            fig.add_trace(
                go.Scatter(
                    x=frame["x"],
                    y=frame["z"],
                    mode="markers",
                    name="variants",
                    marker={"opacity": 0.5},
                )
            )
        fig.update_layout(title=title, xaxis_title=ax, yaxis_title=kpi)
        if ax in discrete:
            fig.update_xaxes(**cat, categoryarray=_category_order(ok[ax]))
    else:
        fig.add_trace(go.Bar(x=ok["variant"], y=z))
        fig.update_layout(title=title, xaxis_title="variant", yaxis_title=kpi)
    return fig


def _short(row: pd.Series, axes: list[str]) -> str:
    parts = [f"{k.rsplit('.', 1)[-1]}={_label(row[k])}" for k in axes]
    return f"{row['variant']} " + " ".join(parts) if parts else str(row["variant"])


def _price_figure(
    ok: pd.DataFrame, axes: list[str], variants_dir: Path, currency: str
) -> tuple[go.Figure, str]:
    pick = ok
    note = ""
    if len(ok) > MAX_PRICE_BOXES:
        index = np.unique(np.linspace(0, len(ok) - 1, MAX_PRICE_BOXES).round().astype(int))
        pick = ok.iloc[index]
        note = f" ({len(pick)} of {len(ok)} variants, evenly spaced)"
    fig = go.Figure()
    for _, row in pick.iterrows():
        path = variants_dir / str(row["variant"]) / INTERVALS_FILE
        if not path.is_file():
            continue
        iv = pd.read_parquet(path, columns=["clearing_price_per_kwh", "p2p_kwh"])
        traded = iv.loc[iv["p2p_kwh"] > 0, "clearing_price_per_kwh"]
        fig.add_trace(go.Box(y=traded, name=_short(row, axes), boxmean=True))
    fig.update_layout(
        title="P2P clearing price per interval with trade" + note,
        yaxis_title=f"price [{currency}/kWh]",
        showlegend=False,
    )
    return fig, note


def _table_html(table: pd.DataFrame, keys: list[str], currency: str) -> str:
    head = ["variant", "status", *keys, "seed", *(label for _, label in _TABLE_KPIS)]
    rows = []
    for _, row in table.iterrows():
        cells = [html.escape(str(row["variant"])), html.escape(str(row["status"]))]
        cells += [html.escape(_label(row[k])) for k in keys]
        cells.append(str(row["seed"]))
        for key, _ in _TABLE_KPIS:
            cells.append(format_kpi(key, row.get(key), currency))
        style = ' class="failed"' if row["status"] != "ok" else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _failures_html(table: pd.DataFrame) -> str:
    failed = table[table["status"] != "ok"]
    if failed.empty:
        return "<p>Every variant finished.</p>"
    items = "".join(
        f"<li><b>{html.escape(str(r['variant']))}</b>: <pre>{html.escape(str(r['error']))}</pre>"
        "</li>"
        for _, r in failed.iterrows()
    )
    return f"<h2>Failed variants ({len(failed)})</h2><ul>{items}</ul>"


def write_sweep(path: Path, spec: SweepSpec, table: pd.DataFrame, variants_dir: Path) -> Path:
    """Write the sweep page to ``path`` (self-contained HTML); ``path``."""
    ok = table[table["status"] == "ok"].reset_index(drop=True)
    currency = str(ok["currency"].iloc[0]) if "currency" in ok and len(ok) else "EUR"
    axes = _axes(ok, spec.keys) if len(ok) else []
    discrete = {p.key for p in spec.parameters if not p.random}
    figures: list[go.Figure | str] = []
    if len(ok):
        for kpi, title in _FIGURE_KPIS:
            if kpi not in ok or not pd.to_numeric(ok[kpi], errors="coerce").notna().any():
                continue
            label = title.format(currency=currency)
            if is_constant(ok[kpi]):
                value = format_kpi(kpi, pd.to_numeric(ok[kpi], errors="coerce").dropna().iloc[0])
                figures.append(
                    f'<p class="constant"><b>{html.escape(label)}</b>: {html.escape(value)} '
                    "in every variant (no panel drawn).</p>"
                )
            else:
                figures.append(_kpi_figure(ok, axes, discrete, kpi, label))
        figures.append(_price_figure(ok, axes, variants_dir, currency)[0])
    for fig in figures:
        if isinstance(fig, go.Figure):
            fig.update_layout(height=480)
    keys = ", ".join(spec.keys)
    seeds = (
        "common random numbers: every variant uses the base seed"
        if spec.seed_rule == "common"
        else "one seed per variant, derived from the base seed and its parameters"
    )
    counts = table["status"].value_counts()
    ok_count, failed_count = int(counts.get("ok", 0)), int(counts.get("failed", 0))
    intro = f"""<p>{len(table)} variants over {html.escape(keys)}; {ok_count} finished,
{failed_count} failed. Seeds: {html.escape(seeds)}. Each variant's full
results, report and scenario are in <code>variants/&lt;id&gt;/</code>; the KPI table is
<code>kpis.parquet</code>.</p>
"""
    table_html = f"""{_failures_html(table)}
<h2>All variants</h2>
{_table_html(table, spec.keys, currency)}"""
    body = [intro, *figures_html(figures), table_html]
    return write_page(path, f"{spec.name}: parameter sweep", body, _CSS)
