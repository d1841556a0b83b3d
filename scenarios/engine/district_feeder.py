"""One LV feeder of a district run (issue 18): its own market and grid check, run by the
single-feeder engine, and what it leaves to the district.

:func:`run_feeder` runs feeder ``k``'s households exactly as a single run of them would
(:func:`scenarios.engine.runner.run` on the district's LV feeder, into
``OUT/feeder=<id>/``) and collects, per interval, its *residual*: every household's
exchange still committed with the utility, ``committed − sold + bought`` (the unmatched
part of its net order, :mod:`market.settlement`), offered to the district at the limit
price of that net order; and the feeder's transformer flow (its slack power, export
positive). :func:`apply_district` books the district's fills into the feeder's
agents.parquet and intervals.parquet afterwards (bought or sold P2P, less import or
export, the bill): the two levels exchange nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agents.households.community import KIND_NET, Plan
from market.orders import TINY_KWH
from market.settlement import Tariffs
from scenarios.config.schema import Scenario
from scenarios.engine.interval import IntervalResult
from scenarios.results.schema import AGENTS_FILE, HOUSEHOLDS_FILE, INTERVALS_FILE


def feeder_dir(out_dir: Path, feeder_id: str) -> Path:
    """The partition of feeder ``feeder_id``: ``OUT/feeder=<id>/``."""
    return Path(out_dir) / f"feeder={feeder_id}"


def households_per_feeder(total: int, n_feeders: int) -> list[int]:
    """``community.households`` spread over the LV feeders, the first ones one more."""
    q, r = divmod(total, n_feeders)
    return [q + (1 if k < r else 0) for k in range(n_feeders)]


def feeder_scenario(scenario: Scenario, k: int, feeder_id: str, households: int) -> Scenario:
    """The scenario of LV feeder ``k``: its households (seed ``simulation.seed + k``), the
    feeder named ``<district>/<feeder_id>`` (the engine is handed the feeder itself)."""
    sim = scenario.simulation.model_copy(update={"seed": scenario.simulation.seed + k})
    community = scenario.community.model_copy(update={"households": households})
    grid = scenario.grid.model_copy(update={"feeder": f"{scenario.grid.feeder}/{feeder_id}"})
    return scenario.model_copy(update={"simulation": sim, "community": community, "grid": grid})


@dataclass
class FeederPart:
    """What a feeder hands the district: its residual orders (one row per household and
    interval with a residual), its transformer flow and its utility prices per interval."""

    k: int
    feeder_id: str
    t: np.ndarray
    household: np.ndarray
    is_buy: np.ndarray
    price_per_kwh: np.ndarray
    energy_kwh: np.ndarray
    slack_p_kw: np.ndarray
    slack_q_kvar: np.ndarray
    retail_per_kwh: np.ndarray
    feed_in_per_kwh: np.ndarray
    kpis: dict[str, Any]
    agent_ids: np.ndarray


class _Residuals:
    """The observer of :func:`scenarios.engine.batch.simulate` that collects them."""

    def __init__(self, n_t: int, out_lines: np.ndarray | None) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.slack_p = np.zeros(n_t)
        self.slack_q = np.zeros(n_t)
        self.retail = np.zeros(n_t)
        self.feed_in = np.zeros(n_t)
        self.out_lines = out_lines

    def __call__(self, t: int, plan: Plan, res: IntervalResult, tariffs: Tariffs) -> None:
        self.retail[t] = tariffs.retail_price_per_kwh
        self.feed_in[t] = tariffs.feed_in_price_per_kwh
        o = res.outcome
        if o is not None and o.check is not None and self.out_lines is not None:
            self.slack_p[t] = -o.check.line_p_kw[self.out_lines].sum()
            self.slack_q[t] = -o.check.line_q_kvar[self.out_lines].sum()
        elif o is not None:
            self.slack_p[t], self.slack_q[t] = o.p_kw.sum(), o.q_kvar.sum()
        to_utility = res.committed_net_kwh - res.flows.sold_kwh + res.flows.bought_kwh
        net = plan.kind == KIND_NET
        hh, buy, price = plan.household[net], plan.is_buy[net], plan.price_per_kwh[net]
        r = to_utility[hh]
        keep = np.where(buy, r < -TINY_KWH, r > TINY_KWH)
        keep[np.setdiff1d(np.arange(len(hh)), np.unique(hh, return_index=True)[1])] = False
        if keep.any():  # one residual per household: its first net order's price
            self.parts.append(
                (np.full(int(keep.sum()), t, np.int32), hh[keep].astype(np.int32), buy[keep],
                 price[keep], np.abs(r[keep]))
            )  # fmt: skip


def run_feeder(scenario: Scenario, k: int, out_dir: Path) -> FeederPart:
    """Run LV feeder ``k`` of the scenario's district into ``OUT/feeder=<id>/``."""
    from grid.district_networks import load_district
    from scenarios.engine.runner import run

    district = load_district(scenario.grid.feeder)
    fid = district.feeder_ids[k]
    n_k = households_per_feeder(scenario.community.households, district.n_feeders)[k]
    sub = feeder_scenario(scenario, k, fid, n_k)
    f = district.feeders[k]
    out_lines = np.flatnonzero(f.lines["from_bus"].to_numpy() == f.slack_bus)
    collect = _Residuals(scenario.simulation.n_intervals, out_lines)
    result = run(sub, feeder_dir(out_dir, fid), feeder=f, observer=collect, report=False)
    cols = [np.concatenate(c) for c in zip(*collect.parts, strict=True)] if collect.parts else [
        np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool), np.zeros(0), np.zeros(0)
    ]  # fmt: skip
    ids = pq.read_table(result.out_dir / HOUSEHOLDS_FILE, columns=["agent_id"])
    t, hh, buy, price, energy = cols
    return FeederPart(k, fid, t, hh, buy, price, energy, collect.slack_p, collect.slack_q,
                      collect.retail, collect.feed_in, result.kpis,
                      ids.column(0).to_numpy(zero_copy_only=False).astype(str))  # fmt: skip


@dataclass
class DistrictFills:
    """The district's fills of one feeder's residual orders (aligned with them) [kWh] and
    each fill's price and grid fee per kWh [currency/kWh]."""

    filled_kwh: np.ndarray
    price_per_kwh: np.ndarray
    fee_per_kwh: np.ndarray


def apply_district(part: FeederPart, fills: DistrictFills, out_dir: Path) -> None:
    """Book the district's fills into the feeder's agents.parquet and intervals.parquet
    (types as written): a buyer's district kWh is bought P2P instead of imported (its bill
    changes by ``kWh × (price + fee − retail)``), a seller's is sold instead of exported
    (``kWh × (feed_in − price)``)."""
    d = fills.filled_kwh
    if not (d > 0).any():
        return
    where = feeder_dir(out_dir, part.feeder_id)
    agents = pq.read_table(where / AGENTS_FILE)
    t_col = agents.column("t").to_numpy()
    n_t = int(t_col.max()) + 1
    n = len(t_col) // n_t
    layout = np.tile(np.arange(n), n_t)
    hh_col = agents.column("agent_id").combine_chunks().indices.to_numpy(zero_copy_only=False)
    if len(t_col) != n * n_t or not (
        np.array_equal(t_col, np.repeat(np.arange(n_t), n)) and np.array_equal(hh_col, layout)
    ):
        raise ValueError(f"{where / AGENTS_FILE}: rows are not interval-major over households")
    row = part.t.astype(np.int64) * n + part.household
    buy = part.is_buy
    t = part.t
    money = np.where(
        buy,
        d * (fills.price_per_kwh + fills.fee_per_kwh - part.retail_per_kwh[t]),
        d * (part.feed_in_per_kwh[t] - fills.price_per_kwh),
    )
    delta = {
        "bought_p2p_kwh": np.bincount(row, np.where(buy, d, 0.0), n * n_t),
        "sold_p2p_kwh": np.bincount(row, np.where(buy, 0.0, d), n * n_t),
        "grid_import_kwh": -np.bincount(row, np.where(buy, d, 0.0), n * n_t),
        "grid_export_kwh": -np.bincount(row, np.where(buy, 0.0, d), n * n_t),
        "cost": np.bincount(row, money, n * n_t),
    }
    pq.write_table(_added(agents, delta), where / AGENTS_FILE)
    intervals = pq.read_table(where / INTERVALS_FILE)
    per_t = {name: v.reshape(n_t, n).sum(axis=1) for name, v in delta.items()}
    per_t["grid_fees"] = np.bincount(t, np.where(buy, d * fills.fee_per_kwh, 0.0), n_t)
    per_t.pop("bought_p2p_kwh"), per_t.pop("sold_p2p_kwh")
    pq.write_table(_added(intervals, per_t), where / INTERVALS_FILE)


def _added(table: pa.Table, delta: dict[str, np.ndarray]) -> pa.Table:
    """``table`` with ``delta`` added to its columns, each kept in its type."""
    for name, add in delta.items():
        i = table.schema.get_field_index(name)
        col = table.column(i)
        new = col.to_numpy().astype(float) + add
        table = table.set_column(i, table.schema.field(i), pa.array(new).cast(col.type))
    return table
