"""KPIs and household money of a live market, from what it publishes.

The KPIs are :func:`scenarios.kpis.compute.compute_kpis`, the function that writes a batch
run's ``kpis.json`` and serves its replay, applied to the interval rows the dashboard
builds from ``market/result`` and the settlements (as intervals.parquet's columns, the
results schema's), and to each household's bill. The no-P2P baseline of a live
household is :func:`scenarios.kpis.compute.metered_baseline_cost`, with the same stored energy.
Without the tariffs (``p2pgrid dashboard --broker`` without ``--scenario``) there is no
baseline and the savings KPIs are None.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market.settlement import Tariffs
from scenarios.kpis.compute import compute_kpis, metered_baseline_cost
from scenarios.results.schema import INTERVALS_FILE, columns

#: intervals.parquet's numeric columns: the required ones always in the KPIs' table
#: (null where the market published nothing), the conditional ones (the grid's) only
#: when some interval carried them
_NUMERIC = tuple(c for c in columns(INTERVALS_FILE) if c.dtype in ("float64", "int64", "bool"))
_POSITION = ("bought_p2p_kwh", "sold_p2p_kwh", "grid_import_kwh", "grid_export_kwh")


def tariffs_of(market: dict[str, Any]) -> Tariffs | None:
    """The utility's tariffs of a market description, None when they are not known."""
    retail = market.get("retail_price_per_kwh")
    feed_in = market.get("feed_in_price_per_kwh")
    if retail is None or feed_in is None:
        return None
    return Tariffs(float(retail), float(feed_in), float(market.get("grid_fee_per_kwh") or 0.0))


class HouseholdMoney:
    """Each household's cost and baseline cost per interval, in household order.

    ``index`` maps a household id to its row; rows only grow as households appear.
    """

    def __init__(self, tariffs: Tariffs | None) -> None:
        self.tariffs = tariffs
        self.index: dict[str, int] = {}
        self._cost: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def row(self, agent_id: str) -> int:
        return self.index.setdefault(agent_id, len(self.index))

    def record(self, t: int, positions: dict[str, dict[str, float]]) -> None:
        """Interval ``t``'s settlements (:func:`live.payloads.decode_settlement`)."""
        rows = np.fromiter((self.row(a) for a in positions), np.int64, len(positions))
        values = list(positions.values())
        cost = np.array([v.get("cost", np.nan) for v in values], float)
        if self.tariffs is not None:
            e = np.array([[v.get(k, np.nan) for k in _POSITION] for v in values], float)
            e = e.reshape(len(values), len(_POSITION))
            base = metered_baseline_cost(e[:, 0], e[:, 1], e[:, 2], e[:, 3], self.tariffs)
        else:
            base = np.full(len(values), np.nan)
        self._cost[t] = (rows, cost, base)

    def totals(self, t: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Cost and baseline cost of every household over the intervals ``≤ t``."""
        n = len(self.index)
        cost, base = np.zeros(n), np.zeros(n)
        for tt, (rows, c, b) in self._cost.items():
            if tt <= t:
                cost += np.bincount(rows, c, n)
                base += np.bincount(rows, b, n)
        return cost, (base if self.tariffs is not None else None)


def interval_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The dashboard's live interval rows as the numeric table compute_kpis reads."""
    frame = pd.DataFrame(rows, index=range(len(rows)))
    table = {}
    for c in _NUMERIC:
        values = pd.to_numeric(frame[c.name], errors="coerce") if c.name in frame else None
        if c.required:
            table[c.name] = np.nan if values is None else values
        elif values is not None and values.notna().any():
            table[c.name] = values
    return pd.DataFrame(table, index=range(len(rows))).astype(float)


def live_kpis(
    rows: list[dict[str, Any]],
    money: HouseholdMoney,
    t: int,
    interval_hours: float,
    currency: str,
) -> dict[str, Any]:
    """The KPIs of ``kpis.json`` over the live intervals ``rows`` (up to ``t``)."""
    cost, base = money.totals(t)
    retail = money.tariffs.retail_price_per_kwh if money.tariffs is not None else 0.0
    return compute_kpis(
        interval_frame(rows), cost, base, np.zeros(len(cost)), retail, interval_hours, currency
    )
