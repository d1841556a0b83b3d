"""One LV feeder of a district run (issue 18): its own market and grid check, run by the
single-feeder engine, and what it leaves to the district.

:func:`run_feeder` runs feeder ``k``'s households exactly as a single run of them would
(:func:`scenarios.engine.runner.run` on the district's LV feeder, into
``OUT/feeder=<id>/``) and collects, per interval, its *residual*: every household's
exchange still committed with the utility, ``committed − sold + bought`` (the unmatched
part of its net order, :mod:`market.settlement`), offered to the district at the limit
price of that net order; and the feeder's transformer flow (its slack power, export
positive). The residual orders stay in the feeder's partition (:data:`ORDERS_FILE`); the
district gets only the feeder's aggregated curve (one step per interval, side and limit
price) and its transformer flow, and returns the fill and price of every step.
:func:`apply_district` allocates those to the households and books them into the
feeder's agents.parquet and intervals.parquet (bought or sold P2P, less import or export,
the bill).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from agents.households.community import KIND_NET, Plan
from grid.district import District
from market.nested import allocate_pro_rata, merge_steps
from market.orders import TINY_KWH
from market.settlement import Tariffs
from scenarios.config.schema import Scenario
from scenarios.engine.interval import IntervalResult
from scenarios.results.agents_writer import narrowed
from scenarios.results.schema import AGENTS_FILE, HOUSEHOLDS_FILE, INTERVALS_FILE, columns
from scenarios.results.stream import TableStream


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
class FeederCurve:
    """What a feeder hands the district: its aggregated residual curve (steps of one
    interval, side and limit price: ``t``, ``is_buy``, ``price_per_kwh``, ``energy_kwh``)
    and its transformer flow per interval [kW, kvar]. No household is named."""

    k: int
    feeder_id: str
    t: np.ndarray
    is_buy: np.ndarray
    price_per_kwh: np.ndarray
    energy_kwh: np.ndarray
    slack_p_kw: np.ndarray
    slack_q_kvar: np.ndarray


ORDERS_FILE = "district_orders.parquet"
"""``feeder=<id>/district_orders.parquet``: the residual orders the feeder offered to the
district (t, agent_id, side, energy_kwh, price_per_kwh) and the utility's prices of their
interval (retail_price_per_kwh, feed_in_price_per_kwh)."""
FILLS_FILE = "district_fills.parquet"
"""``feeder=<id>/district_fills.parquet``: the district's fills of them (t, agent_id, side,
energy_kwh, price_per_kwh, grid_fee)."""


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


def run_feeder(scenario: Scenario, k: int, out_dir: Path) -> FeederCurve:
    """Run LV feeder ``k`` of the scenario's district into ``OUT/feeder=<id>/`` (with the
    district level also its residual orders, :data:`ORDERS_FILE`) and return its curve."""
    from scenarios.engine.runner import run

    district = _district(scenario.grid.feeder)
    fid = district.feeder_ids[k]
    n_k = households_per_feeder(scenario.community.households, district.n_feeders)[k]
    sub = feeder_scenario(scenario, k, fid, n_k)
    f = district.feeders[k]
    out_lines = np.flatnonzero(f.lines["from_bus"].to_numpy() == f.slack_bus)
    collect = _Residuals(scenario.simulation.n_intervals, out_lines)
    where = feeder_dir(out_dir, fid)
    run(sub, where, feeder=f, observer=collect, report=False)
    t, hh, buy, price, energy = _orders(collect)
    if "district" in scenario.market.levels:
        ids = pq.read_table(where / HOUSEHOLDS_FILE, columns=["agent_id"]).column(0)
        agent = ids.to_numpy(zero_copy_only=False).astype(str)[hh]
        pq.write_table(
            pa.table(
                {
                    "t": pa.array(t, pa.int32()),
                    "agent_id": pa.array(agent).dictionary_encode(),
                    "side": pa.array(np.where(buy, "buy", "sell")).dictionary_encode(),
                    "energy_kwh": energy,
                    "price_per_kwh": price,
                    "retail_price_per_kwh": collect.retail[t],
                    "feed_in_price_per_kwh": collect.feed_in[t],
                }
            ),
            where / ORDERS_FILE,
        )
    steps = merge_steps(t, buy, price, energy)
    return FeederCurve(k, fid, steps.key.astype(np.int32), steps.is_buy, steps.price_per_kwh,
                       steps.energy_kwh, collect.slack_p, collect.slack_q)  # fmt: skip


@functools.cache
def _district(spec: str) -> District:
    """The district (built once per process: every feeder task of a worker shares it)."""
    from grid.district_networks import load_district

    return load_district(spec)


def _orders(collect: _Residuals) -> tuple[np.ndarray, ...]:
    if not collect.parts:
        e = np.zeros(0, np.int32)
        return e, e, np.zeros(0, bool), np.zeros(0), np.zeros(0)
    return tuple(np.concatenate(c) for c in zip(*collect.parts, strict=True))


def apply_district(
    feeder_id: str,
    filled_kwh: np.ndarray,
    price_per_kwh: np.ndarray,
    fee_per_kwh: float,
    out_dir: Path,
) -> None:
    """Allocate the district's fills of the feeder's curve (``filled_kwh`` and the price
    per step of :func:`run_feeder`'s curve) to its residual orders pro rata within each
    step (:func:`market.nested.allocate_pro_rata`), write them (:data:`FILLS_FILE`) and book
    them into the feeder's agents.parquet and intervals.parquet (types as written): a
    buyer's district kWh is bought P2P instead of imported (its bill changes by ``kWh ×
    (price + fee − retail)``), a seller's is sold instead of exported (``kWh × (feed_in −
    price)``)."""
    where = feeder_dir(out_dir, feeder_id)
    orders = pq.read_table(where / ORDERS_FILE)
    t = orders.column("t").to_numpy().astype(np.int64)
    buy = orders.column("side").to_numpy(zero_copy_only=False).astype(str) == "buy"
    energy = orders.column("energy_kwh").to_numpy()
    steps = merge_steps(t, buy, orders.column("price_per_kwh").to_numpy(), energy)
    d = allocate_pro_rata(steps.group, energy, steps.energy_kwh, filled_kwh)
    price = np.nan_to_num(np.asarray(price_per_kwh, float)[steps.group])
    fee = np.where(buy, d * fee_per_kwh, 0.0)
    traded = d > 0
    pq.write_table(
        pa.table(
            {
                "t": pa.array(t[traded], pa.int32()),
                "agent_id": orders.column("agent_id").filter(pa.array(traded)),
                "side": orders.column("side").filter(pa.array(traded)),
                "energy_kwh": d[traded],
                "price_per_kwh": price[traded],
                "grid_fee": fee[traded],
            }
        ),
        where / FILLS_FILE,
    )
    if not traded.any():
        return
    agents = pq.read_table(where / AGENTS_FILE, columns=["t", "agent_id"])
    t_col = agents.column("t").to_numpy()
    n_t = int(t_col.max()) + 1
    n = len(t_col) // n_t
    ids = agents.column("agent_id").combine_chunks()
    hh_col = ids.indices.to_numpy(zero_copy_only=False)
    if len(t_col) != n * n_t or not (
        np.array_equal(t_col, np.repeat(np.arange(n_t), n))
        and np.array_equal(hh_col, np.tile(np.arange(n), n_t))
    ):
        raise ValueError(f"{where / AGENTS_FILE}: rows are not interval-major over households")
    agent = orders.column("agent_id").to_numpy(zero_copy_only=False).astype(str)
    row = t * n + pd.Categorical(agent, categories=ids.dictionary.to_pylist()).codes
    retail = orders.column("retail_price_per_kwh").to_numpy()
    feed_in = orders.column("feed_in_price_per_kwh").to_numpy()
    money = np.where(buy, d * (price + fee_per_kwh - retail), d * (feed_in - price))
    size = n * n_t
    delta = {
        "bought_p2p_kwh": np.bincount(row, np.where(buy, d, 0.0), size),
        "sold_p2p_kwh": np.bincount(row, np.where(buy, 0.0, d), size),
        "grid_import_kwh": -np.bincount(row, np.where(buy, d, 0.0), size),
        "grid_export_kwh": -np.bincount(row, np.where(buy, 0.0, d), size),
        "cost": np.bincount(row, money, size),
    }
    _add_into(where / AGENTS_FILE, AGENTS_FILE, delta)
    per_t = {name: v.reshape(n_t, n).sum(axis=1) for name, v in delta.items()}
    per_t["grid_fees"] = np.bincount(t, fee, n_t)
    per_t.pop("bought_p2p_kwh"), per_t.pop("sold_p2p_kwh")
    _add_into(where / INTERVALS_FILE, INTERVALS_FILE, per_t)


def _add_into(path: Path, file: str, delta: dict[str, np.ndarray]) -> None:
    """Add ``delta`` to the columns of the results file ``path`` (schema ``file``) and
    write it again as the run's writers do: each column in its type and, where the schema
    stores it in steps (:data:`~scenarios.results.schema.QUANTUM`), in its steps."""
    table = pq.read_table(path)
    spec = {c.name: c for c in columns(file)}
    for name, add in delta.items():
        i = table.schema.get_field_index(name)
        col = table.column(i)
        new = narrowed(spec[name], col.to_numpy().astype(float) + add)
        table = table.set_column(i, table.schema.field(i), pa.array(new).cast(col.type))
    ids = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    stream = TableStream(path, table.schema, ids, always=True)
    stream.write({name: table.column(name) for name in table.column_names})
    stream.close()
