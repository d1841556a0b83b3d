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
- ``violation_hours`` counts hours with any voltage or thermal limit broken after
  clearing, by the linear model against its limits with their safety margins;
  ``ac_violation_hours`` (``pyomo+ac``) those in which the AC power flow breaks the
  scenario's own band or a rating (loading above 1), with no margin;
  ``violation_hours_background`` those the feeder's own background load breaks without
  the community (the linear model's screen of the background alone).
- ``community_savings`` = baseline cost − cost + ``end_stored_energy_value``, where the
  baseline is the same households, devices and profiles on the same feeder with no P2P
  market (self-consumption only, the utility as the only counterparty), checked by the
  same grid rules: where a limit would break it is curtailed and its EV charging
  deferred by the same re-clearing (:mod:`scenarios.engine.baseline`), so a feasible run is
  compared with a feasible baseline. ``baseline_curtailed_kwh`` and
  ``baseline_violation_hours`` are the baseline's own curtailment and violation hours.
- ``end_stored_energy_delta_kwh`` = energy stored in batteries and EVs at the end of the
  run minus the baseline's [kWh]; ``end_stored_energy_value`` = that times the retail
  price. Savings are thus not bought by leaving storage emptier than the baseline (say,
  EV charging deferred past the end and never made up): a missing kWh would have to be
  bought at retail, and a kWh more saves a retail purchase. Each household's saving is
  valued the same way (:func:`household_savings`).
  A live market (the dashboard, :mod:`live.dashboard.live_kpis`) runs no baseline
  community: its baseline is each household's metered energy with the utility alone
  (:func:`metered_baseline_cost`), with the same stored energy (delta 0).
- ``market_surplus``: what buyers paid minus what sellers received over the run; the
  market operator keeps it (pay-as-bid, McAfee). Money balance of the households:
  ``community_cost = utility imports + imbalance_cost − exports + grid_fees +
  market_surplus``.
  ``imbalance_cost`` (intervals.parquet, ``market.settlement``) is zero for the batch
  engine's households, which order exactly their net position.
- ``dimmed_kwh``: the controllable devices' planned draw the grid operator dimmed to the
  guaranteed minimum under §14a EnWG (``grid.controllable_share``, ``grid.dimming_min_kw``,
  :mod:`scenarios.engine.dimming`); ``dimming_hours`` the hours in which it dimmed;
  ``ev_shortfall_kwh`` the least-laxity EV charging it dimmed (what the cars lack at
  departure, before the charger's efficiency); ``baseline_dimmed_kwh`` the baseline's.
- ``welfare`` / ``optimal_welfare``: gains from trade of the mechanism's clearings at
  the declared limit prices and the LP welfare optimum of the same books, summed over
  the intervals (before network re-clearing); ``efficiency`` = their ratio (allocative
  efficiency of the mechanism, 1 for the uniform auction).
- ``self_sufficiency_own`` = 1 − (grid_import + p2p) / consumption: the share of
  consumption met behind the households' own meters (own PV, net of their storage);
  ``self_sufficiency_shared`` = p2p / consumption: the share met by energy bought from
  (shared by) other members. They add up to ``self_sufficiency``: with an energy-sharing
  key the first is what each member reaches alone (the allocation moves no energy), the
  second what the community adds.
- ``savings_gini``: Gini coefficient of the households' savings (:func:`gini`); 0 when
  all save the same, towards 1 the more the savings are concentrated on few households.
  Savings can be negative (a household worse off than with the utility alone), so the
  mean absolute difference is normalised by the mean *absolute* saving, not the mean
  (see :func:`gini` for why, and the bound).
- ``savings_jain``: Jain's fairness index of the savings (:func:`jain`),
  ``(Σ s)² / (n Σ s²)``; 1 when all save the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market.settlement import Tariffs, settle
from scenarios.results.schema import INTERVALS_FILE, device_energy_columns


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def energy_shares(
    generation: float, consumption: float, imported: float, exported: float, p2p: float
) -> dict[str, float | None]:
    """The community's energy shares (module docstring) from its totals [kWh]:
    ``consumption`` is demand plus the devices' net uptake, ``p2p`` the energy the
    households bought from other members (every market level)."""
    return {
        "self_sufficiency": _ratio(consumption - imported, consumption),
        "self_consumption": _ratio(generation - exported, generation),
        "self_sufficiency_own": _ratio(consumption - imported - p2p, consumption),
        "self_sufficiency_shared": _ratio(p2p, consumption),
        "p2p_share": _ratio(p2p, p2p + imported),
    }


def gini(values: np.ndarray) -> float | None:
    """Gini coefficient ``Σ_i Σ_j |x_i − x_j| / (2 n² mean(|x|))``; None when every
    value is 0 (or there is none).

    For non-negative values ``mean(|x|) = mean(x)`` and this is the standard Gini,
    ``0 ≤ G ≤ (n − 1)/n``. Savings may be negative; the standard formula then exceeds 1
    and is undefined for a mean ≤ 0, and the usual repairs distort it: dropping or
    zeroing the negative values hides exactly the households a fairness index should
    show (De Battisti, Porro & Vernizzi 2019, Electron. J. Appl. Stat. Anal. 12(1)), and
    shifting by the minimum makes the index depend on the worst value and not be
    invariant to a common saving. Normalising by the mean absolute value keeps every
    household, is scale invariant, and keeps the bound (after the normalisations of
    Raffinetti, Siletti & Vernizzi 2015, Stat. Methods Appl. 24(3)): since
    ``|x_i − x_j| ≤ |x_i| + |x_j|``, ``Σ_i Σ_j |x_i − x_j| ≤ 2 (n − 1) Σ|x|``, so
    ``0 ≤ G ≤ (n − 1)/n``, the maximum when one household gains and one loses and the
    rest are at 0. Read it as relative variability of the savings.

    Computed in ``O(n log n)`` from the sorted values:
    ``Σ_i (2 i − n − 1) x_(i) / (n Σ|x|)`` with ranks ``i = 1..n``.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.shape[0]
    if n == 0:
        return None
    scale = float(np.abs(x).sum())
    if scale <= 0:
        return None
    rank = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * rank - n - 1) @ x) / (n * scale))


def jain(values: np.ndarray) -> float | None:
    """Jain's fairness index ``(Σ x)² / (n Σ x²)`` (Jain, Chiu & Hawe 1984, DEC-TR-301);
    None when every value is 0 (or there is none).

    For non-negative values ``1/n ≤ J ≤ 1``: 1 when all are equal, ``k/n`` when ``k``
    share equally and the rest get nothing. It is computed on the values as they are:
    by Cauchy–Schwarz ``0 ≤ J ≤ 1`` for any signs, 1 only when all are equal; gains and
    losses cancel in ``Σ x``, so savings of mixed signs read as less fair (``J = 0``
    when they sum to zero), which is the intent: a community where some lose what
    others gain is not fair.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    squares = float(x @ x)
    if n == 0 or squares <= 0:
        return None
    return float(x.sum() ** 2 / (n * squares))


def household_savings(
    cost_total: np.ndarray,
    baseline_cost_total: np.ndarray,
    end_stored_delta_kwh: np.ndarray,
    retail_price_per_kwh: float,
) -> np.ndarray:
    """Each household's savings against the no-P2P baseline [currency]:
    ``baseline cost − cost + retail × (stored energy − the baseline's stored energy)``,
    the stored energies [kWh] at the end of the run (or of the intervals summed)."""
    return baseline_cost_total - cost_total + retail_price_per_kwh * end_stored_delta_kwh


def metered_baseline_cost(
    bought_kwh: np.ndarray,
    sold_kwh: np.ndarray,
    grid_import_kwh: np.ndarray,
    grid_export_kwh: np.ndarray,
    tariffs: Tariffs,
) -> np.ndarray:
    """A live household's no-P2P baseline cost of one interval [currency]: its metered
    net ``sold − bought + export − import`` (DESIGN.md's balance) settled with the
    utility alone (:func:`market.settlement.settle` with no trades, the batch baseline's
    tariff rule). A live market runs no baseline community; this is its baseline."""
    net = sold_kwh - bought_kwh + grid_export_kwh - grid_import_kwh
    zero = np.zeros(len(net))
    return settle(net, net, zero, zero, zero, zero, tariffs).cost


def compute_kpis(
    intervals: pd.DataFrame,
    cost_total: np.ndarray,
    baseline_cost_total: np.ndarray | None,
    end_stored_delta_kwh: np.ndarray,
    retail_price_per_kwh: float,
    interval_hours: float,
    currency: str,
    band_pu: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """KPIs from the interval table and each household's run totals.

    The batch run, its replay and the live dashboard all compute their KPIs here;
    ``baseline_cost_total`` None (a live market watched without its tariffs) leaves the
    savings KPIs None.

    ``end_stored_delta_kwh``: each household's stored energy at the end of the intervals
    minus its baseline's [kWh], valued at ``retail_price_per_kwh`` in the savings.

    ``band_pu``: the scenario's own voltage band (``grid.v_min_pu``, ``grid.v_max_pu``),
    which the AC violation hours are judged by (None: not computed).
    """
    gen = float(intervals["generation_kwh"].sum())
    demand = float(intervals["demand_kwh"].sum())
    devices = [c for c in device_energy_columns(INTERVALS_FILE) if c in intervals]
    consumption = demand + float(sum(intervals[c].sum() for c in devices))
    imported = float(intervals["grid_import_kwh"].sum())
    exported = float(intervals["grid_export_kwh"].sum())
    p2p = float(intervals["p2p_kwh"].sum())
    traded = intervals["p2p_kwh"] > 0
    prices = intervals.loc[traded, "clearing_price_per_kwh"]
    volume = intervals.loc[traded, "p2p_kwh"]
    cost = float(cost_total.sum())
    violations = intervals.get("violations")
    checked = violations is not None and violations.notna().any()
    curtailed = intervals.get("curtailed_kwh")
    base_curtailed = intervals.get("baseline_curtailed_kwh")
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
        **energy_shares(gen, consumption, imported, exported, p2p),
        "intervals_with_trade": int(traded.sum()),
        "mean_price_per_kwh": float(np.average(prices, weights=volume)) if p2p > 0 else None,
        "min_price_per_kwh": float(prices.min()) if p2p > 0 else None,
        "max_price_per_kwh": float(prices.max()) if p2p > 0 else None,
        "community_cost": cost,
        **_savings_kpis(
            cost_total, baseline_cost_total, end_stored_delta_kwh, retail_price_per_kwh
        ),
        "grid_fees": float(intervals["grid_fees"].sum()),
        **_market_kpis(intervals, p2p),
        "peak_import_kw": float(intervals["grid_import_kwh"].max() / interval_hours),
        "peak_export_kw": float(intervals["grid_export_kwh"].max() / interval_hours),
        "violation_hours": (float((violations > 0).sum() * interval_hours) if checked else None),
        "violation_hours_background": (
            float((intervals["violations_background"] > 0).sum() * interval_hours)
            if "violations_background" in intervals
            else None
        ),
        "baseline_violation_hours": (
            float((intervals["baseline_violations"] > 0).sum() * interval_hours)
            if checked and "baseline_violations" in intervals
            else None
        ),
        "curtailed_kwh": float(curtailed.sum()) if curtailed is not None else 0.0,
        "baseline_curtailed_kwh": (
            float(base_curtailed.sum()) if base_curtailed is not None else 0.0
        ),
        "recleared_intervals": (
            int(intervals["recleared"].sum()) if "recleared" in intervals else None
        ),
        "losses_kwh": (
            float(intervals["losses_kwh"].sum())
            if "losses_kwh" in intervals and intervals["losses_kwh"].notna().any()
            else None
        ),
        **_dimming_kpis(intervals, interval_hours),
        **_ac_kpis(intervals, interval_hours, band_pu),
    }


def _dimming_kpis(intervals: pd.DataFrame, interval_hours: float) -> dict[str, Any]:
    """§14a dimming over the run (zero where the table has no dimming columns)."""

    def total(name: str) -> float:
        return float(intervals[name].sum()) if name in intervals else 0.0

    dimmed = intervals.get("dimmed_kwh")
    return {
        "dimmed_kwh": total("dimmed_kwh"),
        "dimming_hours": float((dimmed > 0).sum() * interval_hours) if dimmed is not None else 0.0,
        "ev_shortfall_kwh": total("ev_shortfall_kwh"),
        "baseline_dimmed_kwh": total("baseline_dimmed_kwh"),
    }


SAVINGS_KPIS = (
    "baseline_cost",
    "end_stored_energy_delta_kwh",
    "end_stored_energy_value",
    "community_savings",
    "savings_frac",
    "savings_gini",
    "savings_jain",
    "household_savings_min",
    "household_savings_median",
    "household_savings_max",
    "households_better_off_frac",
)


def _savings_kpis(
    cost_total: np.ndarray,
    baseline_cost_total: np.ndarray | None,
    end_stored_delta_kwh: np.ndarray,
    retail_price_per_kwh: float,
) -> dict[str, Any]:
    """The savings against the no-P2P baseline, None without a baseline or households."""
    if baseline_cost_total is None or len(cost_total) == 0:
        return dict.fromkeys(SAVINGS_KPIS)
    savings = household_savings(
        cost_total, baseline_cost_total, end_stored_delta_kwh, retail_price_per_kwh
    )
    baseline = float(baseline_cost_total.sum())
    stored_delta = float(end_stored_delta_kwh.sum())
    values = (
        baseline,
        stored_delta,
        retail_price_per_kwh * stored_delta,
        float(savings.sum()),
        _ratio(float(savings.sum()), abs(baseline)),
        gini(savings),
        jain(savings),
        float(savings.min()),
        float(np.median(savings)),
        float(savings.max()),
        float(np.mean(savings >= -1e-9)),
    )
    return dict(zip(SAVINGS_KPIS, values, strict=True))


def _market_kpis(intervals: pd.DataFrame, p2p_kwh: float) -> dict[str, Any]:
    """Market surplus, seller prices, welfare and efficiency of the mechanism."""
    if "market_surplus" not in intervals:
        return {}
    traded = intervals["p2p_kwh"] > 0
    best = float(intervals["optimal_welfare"].sum())
    got = float(intervals["welfare"].sum())
    seller = intervals.loc[traded, "seller_price_per_kwh"]
    volume = intervals.loc[traded, "p2p_kwh"]
    return {
        "market_surplus": float(intervals["market_surplus"].sum()),
        "mean_seller_price_per_kwh": (
            float(np.average(seller, weights=volume)) if p2p_kwh > 0 else None
        ),
        "welfare": got,
        "optimal_welfare": best,
        "efficiency": got / best if best > 0 else None,
    }


def _ac_kpis(
    intervals: pd.DataFrame, interval_hours: float, band_pu: tuple[float, float] | None
) -> dict[str, Any]:
    """How far the linear feeder model was from pandapower's AC power flow (pyomo+ac), and
    the hours AC breaks the scenario's own band or a rating (no model margins)."""
    if "ac_max_v_error_pu" not in intervals:
        return {}
    hours = {}
    if band_pu is not None:
        for side in ("", "baseline_"):
            broken = (
                (intervals[f"{side}ac_v_min_pu"] < band_pu[0])
                | (intervals[f"{side}ac_v_max_pu"] > band_pu[1])
                | (intervals[f"{side}ac_max_line_loading_frac"] > 1.0)
            )
            hours[f"{side}ac_violation_hours"] = float(broken.sum() * interval_hours)
    return {
        **hours,
        "ac_max_voltage_error_pu": float(intervals["ac_max_v_error_pu"].max()),
        "ac_v_min_pu": float(intervals["ac_v_min_pu"].min()),
        "ac_v_max_pu": float(intervals["ac_v_max_pu"].max()),
        "ac_max_line_loading_frac": float(intervals["ac_max_line_loading_frac"].max()),
        "baseline_ac_v_min_pu": float(intervals["baseline_ac_v_min_pu"].min()),
        "baseline_ac_v_max_pu": float(intervals["baseline_ac_v_max_pu"].max()),
        "baseline_ac_max_line_loading_frac": float(
            intervals["baseline_ac_max_line_loading_frac"].max()
        ),
    }
