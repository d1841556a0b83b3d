"""Fairness and value KPIs per member type (``kpis.json``): who gains from the
community's market or sharing key, and what the generation is worth to its owners.

Member types, from ``households.parquet`` (a member can be in several; the KPIs of a
type are over all its members, so the types overlap and do not add up to the
community, except ``non_owner``, which excludes the others):

- ``pv``: owns rooftop PV (``pv_kwp > 0``); ``battery``: a home battery
  (``battery_kwh > 0``); ``ev``: an electric car (``ev_kwh > 0``); ``heat_pump``: a heat
  pump (``hp_source > 0``); ``non_owner``: none of these.

Per type ``T`` (``None`` for a type without members, or where a ratio has no
denominator), energies [kWh], money in the scenario's currency, over the run:

- ``T_members``: how many members are of the type;
- ``T_savings``: their savings against the no-P2P baseline, summed, valued as
  ``community_savings`` (:func:`scenarios.kpis.compute.household_savings`);
  ``T_savings_mean``: per member;
- ``T_p2p_share`` = bought / (bought + grid_import): the share of the energy they
  draw through their meters that came from other members (with a sharing key: their
  allocated energy over their metered consumption, allocated + residual supply); the
  community's own is ``p2p_share``;
- ``T_savings_gini`` and ``T_savings_jain``: Gini (:func:`~scenarios.kpis.compute.gini`,
  negatives kept, normalised by the mean absolute saving) and Jain index
  (:func:`~scenarios.kpis.compute.jain`) of the members' savings, as the community's
  ``savings_gini`` and ``savings_jain``.

The value of the generation to its owners (the ``pv`` members), what their surplus —
the energy they put out, ``sold + grid_export`` — earns:

- ``pv_surplus_kwh``: that energy;
- ``pv_surplus_revenue`` = Σ sales × seller price (trades.parquet) + grid_export ×
  feed-in price: what it earned in the run;
- ``pv_feed_in_only_revenue`` = surplus × feed-in price: what feed-in alone would pay;
- ``pv_sharing_gain``: the difference; ``pv_surplus_value_per_kwh`` = revenue / surplus,
  to hold against ``feed_in_price_per_kwh``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scenarios.kpis.compute import gini, household_savings, jain

MEMBER_TYPES = ("pv", "battery", "ev", "heat_pump", "non_owner")
"""The member types, in the order the KPIs and the report list them."""

#: households.parquet's column and the test of ownership of each device type
_OWNS = {"pv": "pv_kwp", "battery": "battery_kwh", "ev": "ev_kwh", "heat_pump": "hp_source"}

#: member_totals' columns the KPIs read
NEEDED = (
    "agent_id",
    "bought_p2p_kwh",
    "sold_p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "cost",
    "baseline_cost",
    "stored_delta_kwh",
    "sales_revenue",
)


def member_types(households: pd.DataFrame) -> pd.DataFrame:
    """Boolean columns :data:`MEMBER_TYPES`, one row per member of ``households``
    (``households.parquet``'s columns ``pv_kwp``, ``battery_kwh``, ``ev_kwh``,
    ``hp_source``; a missing device column means nobody owns that device)."""
    owns = {
        name: (
            households[col].to_numpy(dtype=np.float64) > 0
            if col in households
            else np.zeros(len(households), dtype=bool)
        )
        for name, col in _OWNS.items()
    }
    frame = pd.DataFrame(owns, index=households.index)
    frame["non_owner"] = ~frame.any(axis=1)
    return frame[list(MEMBER_TYPES)]


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def member_type_kpis(
    members: pd.DataFrame,
    households: pd.DataFrame,
    retail_price_per_kwh: float,
    feed_in_price_per_kwh: float,
) -> dict[str, Any]:
    """The KPIs per member type and the value of the generation (module docstring).

    ``members``: one row per member with the columns :data:`NEEDED` (run totals, as
    :func:`scenarios.results.member_totals.member_totals` reads them);
    ``households``: the static table (``households.parquet``), matched by ``agent_id``.

    Raises
    ------
    ValueError
        When a column is missing or the two tables do not hold the same members.
    """
    lost = [c for c in NEEDED if c not in members]
    if lost:
        raise ValueError(f"member totals: missing column(s) {', '.join(lost)}")
    ids = members["agent_id"].astype(str)
    static = households.assign(agent_id=households["agent_id"].astype(str))
    static = static.set_index("agent_id")
    if set(ids) != set(static.index) or ids.duplicated().any():
        raise ValueError("member totals and households.parquet do not hold the same members")
    types = member_types(static.loc[ids.to_numpy()])
    savings = household_savings(
        members["cost"].to_numpy(dtype=np.float64),
        members["baseline_cost"].to_numpy(dtype=np.float64),
        members["stored_delta_kwh"].to_numpy(dtype=np.float64),
        retail_price_per_kwh,
    )
    bought = members["bought_p2p_kwh"].to_numpy(dtype=np.float64)
    imported = members["grid_import_kwh"].to_numpy(dtype=np.float64)
    kpis: dict[str, Any] = {}
    for name in MEMBER_TYPES:
        mask = types[name].to_numpy()
        count = int(mask.sum())
        s = savings[mask]
        kpis[f"{name}_members"] = count
        kpis[f"{name}_savings"] = float(s.sum()) if count else None
        kpis[f"{name}_savings_mean"] = float(s.mean()) if count else None
        kpis[f"{name}_p2p_share"] = _ratio(
            float(bought[mask].sum()), float(bought[mask].sum() + imported[mask].sum())
        )
        kpis[f"{name}_savings_gini"] = gini(s)
        kpis[f"{name}_savings_jain"] = jain(s)
    kpis.update(_generation_value(members, types["pv"].to_numpy(), feed_in_price_per_kwh))
    return kpis


def _generation_value(
    members: pd.DataFrame, owners: np.ndarray, feed_in_price_per_kwh: float
) -> dict[str, Any]:
    """What the owners' surplus earned, against feed-in alone (module docstring)."""
    sold = float(members["sold_p2p_kwh"].to_numpy()[owners].sum())
    exported = float(members["grid_export_kwh"].to_numpy()[owners].sum())
    surplus = sold + exported
    revenue = float(members["sales_revenue"].to_numpy()[owners].sum())
    revenue += exported * feed_in_price_per_kwh
    feed_in_only = surplus * feed_in_price_per_kwh
    some = bool(owners.any())
    return {
        "pv_surplus_kwh": surplus if some else None,
        "pv_surplus_revenue": revenue if some else None,
        "pv_feed_in_only_revenue": feed_in_only if some else None,
        "pv_sharing_gain": revenue - feed_in_only if some else None,
        "pv_surplus_value_per_kwh": _ratio(revenue, surplus),
    }
