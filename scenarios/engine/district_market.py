"""The district level of a district run (issue 18): per interval, the feeders' aggregated
residual curves cleared between the feeders (:mod:`market.nested`), split where the MV
grid breaks (:mod:`scenarios.engine.district_mv`).

The inputs are the :class:`~scenarios.engine.district_feeder.FeederCurve` of every feeder
(its steps of one block of intervals); the outputs are the fill and price of every feeder's steps
(handed back to the feeder, :func:`~scenarios.engine.district_feeder.apply_district`) and
the district's own tables: ``intervals`` (one row per interval) and ``trades`` (one row per
filled step: the district is the counterparty of every step; buyers pay the zone's price
plus the district grid fee, sellers receive the price).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.nested import Steps, clear_district
from scenarios.engine.district_feeder import FeederCurve
from scenarios.engine.district_mv import MvCheck


@dataclass
class DistrictLevel:
    """The district market's outcome of a run: per feeder the fill [kWh] and price
    [currency/kWh] of each of its steps, and the district's tables."""

    filled_kwh: list[np.ndarray]
    price_per_kwh: list[np.ndarray]
    intervals: pd.DataFrame
    trades: pd.DataFrame


def clear_levels(
    curves: list[FeederCurve],
    mv: MvCheck | None,
    n_t: int,
    fee_per_kwh: float,
    t0: int = 0,
) -> DistrictLevel:
    """Clear every interval's district market over the feeders' curves: the ``n_t``
    intervals from ``t0`` on (one block of the run; ``mv`` of the same intervals)."""
    t = np.concatenate([c.t for c in curves]).astype(np.int64) - t0
    feeder = np.concatenate([np.full(len(c.t), c.k, np.int64) for c in curves])
    is_buy = np.concatenate([c.is_buy for c in curves])
    price = np.concatenate([c.price_per_kwh for c in curves])
    energy = np.concatenate([c.energy_kwh for c in curves])
    order = np.argsort(t, kind="stable")
    bounds = np.searchsorted(t[order], np.arange(n_t + 1))
    filled = np.zeros(len(t))
    step_price = np.full(len(t), np.nan)
    volume = np.zeros(n_t)
    zones = np.ones(n_t, np.int64)
    empty = np.zeros(0, np.int64)
    for i in range(n_t):
        at = order[bounds[i] : bounds[i + 1]]
        if len(at) < 2:
            continue
        steps = Steps(empty, feeder[at], is_buy[at], price[at], energy[at])
        res = clear_district(steps, None if mv is None else mv.zone[i, feeder[at]])
        filled[at], step_price[at] = res.filled_kwh, res.price_per_kwh
        volume[i], zones[i] = res.volume_kwh, res.zones
    cut = np.cumsum([len(c.t) for c in curves])[:-1]
    value = np.bincount(t, np.where(is_buy, filled * np.nan_to_num(step_price), 0.0), n_t)
    intervals = pd.DataFrame(
        {
            "t": np.arange(t0, t0 + n_t, dtype=np.int32),
            "clearing_price_per_kwh": np.divide(
                value, volume, out=np.full(n_t, np.nan), where=volume > 0
            ),
            "district_kwh": volume,
            "offered_buy_kwh": np.bincount(t, np.where(is_buy, energy, 0.0), n_t),
            "offered_sell_kwh": np.bincount(t, np.where(is_buy, 0.0, energy), n_t),
            "zones": zones.astype(np.int32),
            "grid_fees": volume * fee_per_kwh,
        }
    )
    if mv is not None:
        intervals["mv_v_min_pu"] = mv.v_min_pu
        intervals["mv_v_max_pu"] = mv.v_max_pu
        intervals["mv_max_line_loading_frac"] = mv.max_loading_frac
        intervals["mv_violations"] = mv.violations.astype(np.int32)
    traded = filled > 0
    ids = [c.feeder_id for c in curves]
    trades = pd.DataFrame(
        {
            "t": (t[traded] + t0).astype(np.int32),
            "feeder": pd.Categorical.from_codes(feeder[traded], categories=ids),
            "side": pd.Categorical(np.where(is_buy[traded], "buy", "sell"), ["buy", "sell"]),
            "limit_price_per_kwh": price[traded],
            "energy_kwh": filled[traded],
            "price_per_kwh": step_price[traded],
            "grid_fee": np.where(is_buy[traded], filled[traded] * fee_per_kwh, 0.0),
        }
    ).sort_values(["t", "feeder", "side"], kind="stable", ignore_index=True)
    return DistrictLevel(np.split(filled, cut), np.split(step_price, cut), intervals, trades)
