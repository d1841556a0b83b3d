"""The sweep page's panel rules (scenarios.reports.sweep): categorical axes for discrete
keys, one line for a constant KPI, colour bars centred on zero only for signed KPIs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.reports.sweep import _kpi_figure, is_constant, is_signed, write_sweep
from scenarios.studies.sweep_file import load_sweep

BATTERY = [0.0, 0.3, 0.6]
PV = [0.8, 0.2]


def _sweep() -> tuple[object, pd.DataFrame]:
    spec = load_sweep(
        {
            "name": "page",
            "base": {"simulation": {"days": 1}, "community": {"households": 4}},
            "parameters": {"community.battery_share": BATTERY, "community.pv_share": PV},
        }
    )
    rows = []
    for i, (b, p) in enumerate(itertools.product(BATTERY, PV)):
        rows.append(
            {
                "variant": f"v{i:04d}",
                "status": "ok",
                "error": None,
                "seed": 1,
                "currency": "EUR",
                "community.battery_share": b,
                "community.pv_share": p,
                "community_savings": 10 * b - 4 * p,  # -3.2 … 5.2: signed
                "self_sufficiency": 0.1 + b * p,
                "violation_hours": 0.0,  # constant: no panel
                "curtailed_kwh": 0.0,
            }
        )
    return spec, pd.DataFrame(rows)


def test_discrete_keys_are_categories_in_their_values_order() -> None:
    spec, table = _sweep()
    fig = _kpi_figure(table, spec.keys, set(spec.keys), "self_sufficiency", "s")
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    # one tick per swept value, nothing between (no battery share of -0.1 or 0.7)
    assert list(fig.layout.xaxis.categoryarray) == ["0", "0.3", "0.6"]
    assert list(fig.layout.yaxis.categoryarray) == ["0.2", "0.8"]
    heat = fig.data[0]
    assert list(heat.x) == ["0", "0.3", "0.6"] and list(heat.y) == ["0.2", "0.8"]
    # the cell of battery 0.6, pv 0.2 is 0.1 + 0.12
    assert heat.z[0][2] == 0.1 + 0.6 * 0.2


def test_colour_bars_centre_on_zero_only_for_signed_kpis() -> None:
    spec, table = _sweep()
    assert is_signed("community_savings") and not is_signed("self_sufficiency")
    savings = _kpi_figure(table, spec.keys, set(spec.keys), "community_savings", "s").data[0]
    assert savings.zmid == 0.0 and savings.colorscale[0][1] == "rgb(103,0,31)"  # RdBu
    share = _kpi_figure(table, spec.keys, set(spec.keys), "self_sufficiency", "s").data[0]
    assert share.zmid is None
    assert share.zmin == 0.1 and share.zmax == 0.1 + 0.6 * 0.8


def test_a_constant_kpi_is_one_line_not_a_panel(tmp_path: Path) -> None:
    spec, table = _sweep()
    assert is_constant(table["violation_hours"]) and not is_constant(table["self_sufficiency"])
    assert is_constant(pd.Series([2.0, 2.0 + 1e-15, np.nan]))
    page = write_sweep(tmp_path / "sweep.html", spec, table, tmp_path).read_text()
    assert page.count('class="constant"') == 2
    assert "<b>Violation hours after clearing [h]</b>: 0.00 h in every variant" in page
    assert "<b>PV curtailed by the grid check [kWh]</b>: 0.0 kWh in every variant" in page
    # the two varying KPIs and the price boxes are drawn, plotly.js embedded once
    assert page.count('class="plotly-graph-div"') == 3
    assert page.count("plotly.js v") == 1


def test_a_random_key_keeps_a_continuous_axis() -> None:
    spec, table = _sweep()
    fig = _kpi_figure(table, spec.keys, set(), "self_sufficiency", "s")
    assert fig.layout.xaxis.type is None  # numbers, as drawn from a distribution
