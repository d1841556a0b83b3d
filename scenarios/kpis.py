"""Key performance indicators of a run (``kpis.json``).

Definitions (community level, over the whole run; energies [kWh], money in the
scenario's currency):

- ``consumption_kwh`` = household demand + net EV charging + net battery uptake (the
  storage losses and change of stored energy); then
  ``generation − consumption = grid_export − grid_import`` for the community.
- ``self_sufficiency`` = 1 − grid_import / consumption: the share of consumption met
  from the community's own generation (Luthander et al. 2015, Appl. Energy 142).
- ``self_consumption`` = 1 − grid_export / generation: the share of PV used inside the
  community, by its owner or a neighbour.
- ``p2p_share`` = p2p / (p2p + grid_import): of all energy the households bought, the
  share bought from neighbours.
- ``community_savings`` = baseline cost − cost, where the baseline is the same
  households, devices and profiles with no P2P market (self-consumption only,
  everything else with the utility).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def compute_kpis(
    intervals: pd.DataFrame,
    cost_total: np.ndarray,
    baseline_cost_total: np.ndarray,
    interval_hours: float,
    currency: str,
) -> dict[str, Any]:
    """KPIs from the interval table and each household's run totals."""
    gen = float(intervals["generation_kwh"].sum())
    demand = float(intervals["demand_kwh"].sum())
    consumption = demand + float(intervals["ev_kwh"].sum() + intervals["battery_kwh"].sum())
    imported = float(intervals["grid_import_kwh"].sum())
    exported = float(intervals["grid_export_kwh"].sum())
    p2p = float(intervals["p2p_kwh"].sum())
    traded = intervals["p2p_kwh"] > 0
    prices = intervals.loc[traded, "clearing_price_per_kwh"]
    volume = intervals.loc[traded, "p2p_kwh"]
    savings = baseline_cost_total - cost_total
    cost = float(cost_total.sum())
    baseline = float(baseline_cost_total.sum())
    violations = intervals.get("violations")
    checked = violations is not None and violations.notna().any()
    curtailed = intervals.get("curtailed_kwh")
    return {
        "currency": currency,
        "intervals": len(intervals),
        "hours": len(intervals) * interval_hours,
        "generation_kwh": gen,
        "demand_kwh": demand,
        "consumption_kwh": consumption,
        "grid_import_kwh": imported,
        "grid_export_kwh": exported,
        "p2p_kwh": p2p,
        "self_sufficiency": _ratio(consumption - imported, consumption),
        "self_consumption": _ratio(gen - exported, gen),
        "p2p_share": _ratio(p2p, p2p + imported),
        "intervals_with_trade": int(traded.sum()),
        "mean_price_per_kwh": float(np.average(prices, weights=volume)) if p2p > 0 else None,
        "min_price_per_kwh": float(prices.min()) if p2p > 0 else None,
        "max_price_per_kwh": float(prices.max()) if p2p > 0 else None,
        "community_cost": cost,
        "baseline_cost": baseline,
        "community_savings": baseline - cost,
        "savings_frac": _ratio(baseline - cost, abs(baseline)),
        "grid_fees": float(intervals["grid_fees"].sum()),
        "household_savings_min": float(savings.min()),
        "household_savings_median": float(np.median(savings)),
        "household_savings_max": float(savings.max()),
        "households_better_off_frac": float(np.mean(savings >= -1e-9)),
        "peak_import_kw": float(intervals["grid_import_kwh"].max() / interval_hours),
        "peak_export_kw": float(intervals["grid_export_kwh"].max() / interval_hours),
        "violation_hours": (
            float((violations > 0).sum() * interval_hours) if checked else None
        ),
        "curtailed_kwh": float(curtailed.sum()) if curtailed is not None else 0.0,
        "recleared_intervals": (
            int(intervals["recleared"].sum()) if "recleared" in intervals else None
        ),
        "losses_kwh": (
            float(intervals["losses_kwh"].sum())
            if "losses_kwh" in intervals and intervals["losses_kwh"].notna().any() else None
        ),
        **_ac_kpis(intervals),
    }


def _ac_kpis(intervals: pd.DataFrame) -> dict[str, Any]:
    """How far the linear feeder model was from pandapower's AC power flow (pyomo+ac)."""
    if "ac_max_v_error_pu" not in intervals:
        return {}
    return {
        "ac_max_voltage_error_pu": float(intervals["ac_max_v_error_pu"].max()),
        "ac_v_min_pu": float(intervals["ac_v_min_pu"].min()),
        "ac_v_max_pu": float(intervals["ac_v_max_pu"].max()),
    }
