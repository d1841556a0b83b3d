"""How a KPI of ``kpis.json`` is written for people: one formatter for the command
line's tables and the HTML reports.

The kind of a KPI follows from its name (DESIGN.md "Units, signs, time": units go in
names): ``_per_kwh`` a price, ``_kwh`` energy, ``_kw`` power, ``_frac`` and the shares a
percentage, ``_hours`` hours, ``_pu`` per unit, ``_s`` seconds; money carries no unit
suffix: it is listed in :data:`MONEY` or ends in one of :data:`MONEY_SUFFIXES`. Money is
written with two decimals and thousands separators, never in scientific notation.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

MONEY = frozenset(
    {
        "community_cost",
        "baseline_cost",
        "community_savings",
        "grid_fees",
        "market_surplus",
        "welfare",
        "optimal_welfare",
        "central_welfare",
        "household_savings_min",
        "household_savings_median",
        "household_savings_max",
    }
)
#: money by suffix: the KPIs per member type (``pv_savings``, ``pv_surplus_revenue``, …)
MONEY_SUFFIXES = ("_cost", "_savings", "_savings_mean", "_revenue", "_gain")
SHARES = frozenset(
    {
        "self_sufficiency",
        "self_consumption",
        "self_sufficiency_own",
        "self_sufficiency_shared",
        "p2p_share",
        "efficiency",
        "central_efficiency",
    }
)
MISSING = "—"


def kpi_kind(key: str) -> str:
    """``money``, ``price``, ``pct``, ``energy``, ``power``, ``hours``, ``pu``, ``seconds``
    or ``number``."""
    if key in MONEY or key.endswith(MONEY_SUFFIXES):
        return "money"
    if key.endswith("_per_kwh"):
        return "price"
    if key in SHARES or key.endswith(("_frac", "_share")):
        return "pct"
    for suffix, kind in (
        ("_kwh", "energy"),
        ("_kw", "power"),
        ("_hours", "hours"),
        ("_pu", "pu"),
        ("_s", "seconds"),
    ):
        if key.endswith(suffix):
            return kind
    return "number"


def format_kpi(key: str, value: Any, currency: str = "EUR") -> str:
    """``value`` of KPI ``key`` with its unit; ``—`` for a missing (None, NaN) value."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # counts (numpy's too), booleans as 0/1
        return f"{int(value):,}"
    try:
        v = float(value)
    except (TypeError, ValueError):  # None, pandas' NA
        return MISSING
    if not math.isfinite(v):
        return MISSING
    kind = kpi_kind(key)
    if kind == "money":
        return f"{v:,.2f} {currency}"
    if kind == "price":
        return f"{v:.4f} {currency}/kWh"
    if kind == "pct":
        return f"{100 * v:.1f} %"
    if kind == "energy":
        return f"{v:,.1f} kWh"
    if kind == "power":
        return f"{v:,.1f} kW"
    if kind == "hours":
        return f"{v:,.2f} h"
    if kind == "pu":
        return f"{v:.4f} p.u."
    if kind == "seconds":
        return f"{v:,.1f} s"
    return f"{v:,.3f}"
