"""The district level of a district run (issue 18): per interval, the feeders' residual
curves cleared between the feeders (:mod:`market.nested`), split where the MV grid breaks
(:mod:`scenarios.engine.district_mv`), the fills allocated back to the households.

The inputs are the :class:`~scenarios.engine.district_feeder.FeederPart` of every feeder
(their residual orders of the whole run); the outputs are each feeder's
:class:`~scenarios.engine.district_feeder.DistrictFills` and the district's own tables:
``intervals`` (one row per interval) and ``trades`` (one row per household fill: the
district is the counterparty of every fill, buyers pay the zone's price plus the district
grid fee, sellers receive the price).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.nested import Steps, allocate_pro_rata, clear_district, merge_steps
from scenarios.engine.district_feeder import DistrictFills, FeederPart
from scenarios.engine.district_mv import MvCheck


@dataclass
class DistrictLevel:
    """The district market's outcome of a run."""

    fills: list[DistrictFills]
    intervals: pd.DataFrame
    trades: pd.DataFrame


def clear_levels(
    parts: list[FeederPart], mv: MvCheck | None, n_t: int, fee_per_kwh: float
) -> DistrictLevel:
    """Clear every interval's district market over the feeders' residual curves."""
    nf = len(parts)
    t = np.concatenate([p.t for p in parts]).astype(np.int64)
    feeder = np.concatenate([np.full(len(p.t), p.k) for p in parts]).astype(np.int64)
    is_buy = np.concatenate([p.is_buy for p in parts])
    price = np.concatenate([p.price_per_kwh for p in parts])
    energy = np.concatenate([p.energy_kwh for p in parts])
    # one curve per feeder and interval: steps sorted by interval, then feeder
    steps = merge_steps(t * nf + feeder, is_buy, price, energy)
    step_t = steps.feeder // nf
    step_f = steps.feeder % nf
    bounds = np.searchsorted(step_t, np.arange(n_t + 1))
    filled = np.zeros(len(step_t))
    step_price = np.full(len(step_t), np.nan)
    volume = np.zeros(n_t)
    zones = np.ones(n_t, np.int64)
    for i in range(n_t):
        a, b = bounds[i], bounds[i + 1]
        if b - a < 2:
            continue
        sub = Steps(np.zeros(0, np.int64), step_f[a:b], steps.is_buy[a:b],
                    steps.price_per_kwh[a:b], steps.energy_kwh[a:b])  # fmt: skip
        zone = None if mv is None else mv.zone[i, step_f[a:b]]
        res = clear_district(sub, zone)
        filled[a:b], step_price[a:b] = res.filled_kwh, res.price_per_kwh
        volume[i], zones[i] = res.volume_kwh, res.zones
    order_fill = allocate_pro_rata(steps.group, energy, steps.energy_kwh, filled)
    order_price = step_price[steps.group]
    fills, start = [], 0
    for p in parts:
        s = slice(start, start + len(p.t))
        fills.append(
            DistrictFills(
                order_fill[s], np.nan_to_num(order_price[s]), np.full(len(p.t), fee_per_kwh)
            )
        )
        start += len(p.t)
    traded = order_fill > 0
    buy_kwh = np.bincount(t, np.where(is_buy, energy, 0.0), n_t)
    sell_kwh = np.bincount(t, np.where(is_buy, 0.0, energy), n_t)
    value = np.bincount(t[traded & is_buy], (order_fill * order_price)[traded & is_buy], n_t)
    intervals = pd.DataFrame(
        {
            "t": np.arange(n_t, dtype=np.int32),
            "clearing_price_per_kwh": np.divide(
                value, volume, out=np.full(n_t, np.nan), where=volume > 0
            ),
            "district_kwh": volume,
            "offered_buy_kwh": buy_kwh,
            "offered_sell_kwh": sell_kwh,
            "zones": zones.astype(np.int32),
            "grid_fees": volume * fee_per_kwh,
        }
    )
    if mv is not None:
        intervals["mv_v_min_pu"] = mv.v_min_pu
        intervals["mv_v_max_pu"] = mv.v_max_pu
        intervals["mv_max_line_loading_frac"] = mv.max_loading_frac
        intervals["mv_violations"] = mv.violations.astype(np.int32)
    ids = np.concatenate([np.full(len(p.t), p.feeder_id, dtype=object) for p in parts])
    hh = np.concatenate([p.agent_ids[p.household] for p in parts])
    trades = pd.DataFrame(
        {
            "t": t[traded].astype(np.int32),
            "feeder": pd.Categorical(ids[traded], categories=[p.feeder_id for p in parts]),
            "agent_id": hh[traded],
            "side": pd.Categorical(np.where(is_buy[traded], "buy", "sell"), ["buy", "sell"]),
            "energy_kwh": order_fill[traded],
            "price_per_kwh": order_price[traded],
            "grid_fee": np.where(is_buy[traded], order_fill[traded] * fee_per_kwh, 0.0),
        }
    )
    return DistrictLevel(fills, intervals, trades)
