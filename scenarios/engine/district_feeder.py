"""One LV feeder of a district run (issue 18): its own market and grid check, run by the
single-feeder engine, and what it leaves to the district.

:func:`stream_feeder` runs feeder ``k``'s households exactly as a single run of them
would (:func:`scenarios.engine.runner.run` on the district's LV feeder, into
``OUT/feeder=<id>/``) and streams, per interval, its *residual*: every household's
exchange still committed with the utility, ``committed − sold + bought`` (the unmatched
part of its net order, :mod:`market.settlement`), offered to the district at the limit
price of that net order (:data:`ORDERS_FILE`); and the feeder's transformer flow (its
slack power, export positive, :data:`TRANSFORMER_FILE`). Both are held for one block of
intervals and appended to the partition as one row group
(:mod:`scenarios.engine.district_blocks`). The district reads them block by block, merges
each block's orders into the feeder's aggregated curve (:func:`curve`: one step per
interval, side and limit price) and returns the fill and price of every step (:data:`STEPS_FILE`);
:func:`book_feeder` allocates those to the households and books them into the feeder's
agents.parquet and intervals.parquet (:mod:`scenarios.engine.district_booking`).
:func:`run_feeder` and :func:`apply_district` do the same for the whole run as one block
(the curve in memory: for a hand-checked case).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agents.households.community import KIND_NET, Plan
from grid.district import District
from market.nested import merge_steps
from market.orders import TINY_KWH
from market.settlement import Tariffs
from scenarios.config.schema import Scenario
from scenarios.engine.district_blocks import AppendWriter, is_buy
from scenarios.engine.interval import IntervalResult
from scenarios.results.schema import HOUSEHOLDS_FILE, INTERVALS_FILE

DISTRICT_DIR = "district"
"""The district level's own files: ``OUT/district/``."""
TRANSFORMERS_FILE = "transformers.parquet"
"""``OUT/district/transformers.parquet``: every LV feeder's transformer flow per interval."""


def feeder_dir(out_dir: Path, feeder_id: str) -> Path:
    """The partition of feeder ``feeder_id``: ``OUT/feeder=<id>/``."""
    return Path(out_dir) / f"feeder={feeder_id}"


def households_per_feeder(total: int, n_feeders: int) -> list[int]:
    """``community.households`` spread over the LV feeders, the first ones one more."""
    q, r = divmod(total, n_feeders)
    return [q + (1 if k < r else 0) for k in range(n_feeders)]


def feeder_scenario(scenario: Scenario, k: int, feeder_id: str, households: int) -> Scenario:
    """The scenario of LV feeder ``k``: its households (seed ``simulation.seed + k``) under
    the district's weather (``weather_seed``: the district's), the feeder named
    ``<district>/<feeder_id>`` (the engine is handed the feeder itself)."""
    sim = scenario.simulation
    sim = sim.model_copy(update={"seed": sim.seed + k, "weather_seed": sim.sky_seed})
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
interval (retail_price_per_kwh, feed_in_price_per_kwh); one row group per block of
intervals (:mod:`scenarios.engine.district_blocks`)."""
FILLS_FILE = "district_fills.parquet"
"""``feeder=<id>/district_fills.parquet``: the district's fills of them (t, agent_id, side,
energy_kwh, price_per_kwh, grid_fee)."""
TRANSFORMER_FILE = "_transformer.parquet"
"""``feeder=<id>/_transformer.parquet``: the feeder's transformer flow per interval (t,
p_kw, q_kvar), one row group per block; the district reads it block by block and removes
it (a leading ``_``: Parquet datasets skip it)."""
_RESIDUALS_FILE = "_residuals.parquet"
"""The residual orders as the interval loop streams them (household index, not id);
:data:`ORDERS_FILE` once the run has written its households."""


class _Residuals:
    """The observer of :func:`scenarios.engine.batch.simulate` that streams them: one
    block of intervals is held, then written (:data:`_RESIDUALS_FILE`, with the district
    level; :data:`TRANSFORMER_FILE`, with the grid check)."""

    def __init__(self, n_t: int, block: int, where: Path, orders: bool, flows: bool,
                 out_lines: np.ndarray | None) -> None:  # fmt: skip
        self.n_t, self.block = n_t, block
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.slack = np.zeros((2, min(block, n_t)))
        self.out_lines = out_lines
        self.orders = AppendWriter(where / _RESIDUALS_FILE) if orders else None
        self.flows = AppendWriter(where / TRANSFORMER_FILE) if flows else None

    def __call__(self, t: int, plan: Plan, res: IntervalResult, tariffs: Tariffs) -> None:
        i = t % self.block
        o = res.outcome
        if o is not None and o.check is not None and self.out_lines is not None:
            self.slack[0, i] = -o.check.line_p_kw[self.out_lines].sum()
            self.slack[1, i] = -o.check.line_q_kvar[self.out_lines].sum()
        elif o is not None:
            self.slack[0, i], self.slack[1, i] = o.p_kw.sum(), o.q_kvar.sum()
        to_utility = res.committed_net_kwh - res.flows.sold_kwh + res.flows.bought_kwh
        net = plan.kind == KIND_NET
        hh, buy, price = plan.household[net], plan.is_buy[net], plan.price_per_kwh[net]
        r = to_utility[hh]
        keep = np.where(buy, r < -TINY_KWH, r > TINY_KWH)
        keep[np.setdiff1d(np.arange(len(hh)), np.unique(hh, return_index=True)[1])] = False
        m = int(keep.sum())
        if keep.any():  # one residual per household: its first net order's price
            self.parts.append(
                (np.full(m, t, np.int32), hh[keep].astype(np.int32), buy[keep], price[keep],
                 np.abs(r[keep]), np.full(m, tariffs.retail_price_per_kwh),
                 np.full(m, tariffs.feed_in_price_per_kwh))
            )  # fmt: skip
        if i == self.block - 1 or t == self.n_t - 1:
            self._flush(t - i, i + 1)

    def _flush(self, a: int, n: int) -> None:
        if self.flows is not None:
            t = np.arange(a, a + n, dtype=np.int32)
            p, q = self.slack[0, :n].copy(), self.slack[1, :n].copy()
            self.flows.write(pa.table({"t": t, "p_kw": p, "q_kvar": q}))
        if self.orders is not None:
            cols = [np.concatenate(c) for c in zip(*self.parts, strict=True)] or [
                np.zeros(0, d) for d in (np.int32, np.int32, bool, float, float, float, float)
            ]
            names = ("t", "hh", "is_buy", "price_per_kwh", "energy_kwh",
                     "retail_price_per_kwh", "feed_in_price_per_kwh")  # fmt: skip
            self.orders.write(pa.table(dict(zip(names, cols, strict=True))))
        self.parts = []
        self.slack[:] = 0.0

    def close(self) -> None:
        for w in (self.orders, self.flows):
            if w is not None:
                w.close()


def stream_feeder(scenario: Scenario, k: int, out_dir: Path, block: int) -> None:
    """Run LV feeder ``k`` of the scenario's district into ``OUT/feeder=<id>/``, streaming
    its transformer flow (:data:`TRANSFORMER_FILE`, with the grid check) and, with the
    district level, its residual orders (:data:`ORDERS_FILE`) in blocks of ``block``
    intervals."""
    from scenarios.engine.runner import run

    district = _district(scenario.grid.feeder)
    fid = district.feeder_ids[k]
    n_k = households_per_feeder(scenario.community.households, district.n_feeders)[k]
    sub = feeder_scenario(scenario, k, fid, n_k)
    f = district.feeders[k]
    out_lines = np.flatnonzero(f.lines["from_bus"].to_numpy() == f.slack_bus)
    where = feeder_dir(out_dir, fid)
    where.mkdir(parents=True, exist_ok=True)
    orders = "district" in scenario.market.levels
    flows = scenario.grid.check != "off"
    collect = _Residuals(scenario.simulation.n_intervals, block, where, orders, flows, out_lines)
    try:
        run(sub, where, feeder=f, observer=collect, report=False)
    finally:
        collect.close()
    if orders:
        _name_orders(where)


def _name_orders(where: Path) -> None:
    """:data:`_RESIDUALS_FILE` into :data:`ORDERS_FILE`, row group by row group: the
    households' ids for their indices, the side as ``buy``/``sell``."""
    ids = pq.read_table(where / HOUSEHOLDS_FILE, columns=["agent_id"]).column(0)
    agent_ids = ids.to_numpy(zero_copy_only=False).astype(str)
    src = pq.ParquetFile(where / _RESIDUALS_FILE)
    out = AppendWriter(where / ORDERS_FILE)
    for g in range(max(src.num_row_groups, 1)):
        part = src.read_row_group(g) if src.num_row_groups else src.schema_arrow.empty_table()
        hh = part.column("hh").to_numpy()
        buy = part.column("is_buy").to_numpy(zero_copy_only=False)
        cols = {
            "t": part.column("t"),
            "agent_id": pa.array(agent_ids[hh], pa.string()).dictionary_encode(),
            "side": pa.array(np.where(buy, "buy", "sell"), pa.string()).dictionary_encode(),
        }
        for name in ORDER_VALUES:
            cols[name] = part.column(name)
        out.write(pa.table(cols))
    out.close()
    (where / _RESIDUALS_FILE).unlink()


ORDER_VALUES = ("energy_kwh", "price_per_kwh", "retail_price_per_kwh", "feed_in_price_per_kwh")


def run_feeder(scenario: Scenario, k: int, out_dir: Path) -> FeederCurve:
    """Run LV feeder ``k`` (:func:`stream_feeder`, one block: the whole run) and return
    its curve and transformer flow for the whole run, read back from its files."""
    n_t = scenario.simulation.n_intervals
    stream_feeder(scenario, k, out_dir, n_t)
    fid = _district(scenario.grid.feeder).feeder_ids[k]
    where = feeder_dir(out_dir, fid)
    slack = np.zeros((2, n_t))
    if (where / TRANSFORMER_FILE).exists():
        flows = pq.read_table(where / TRANSFORMER_FILE)
        slack = np.stack([flows.column(c).to_numpy() for c in ("p_kw", "q_kvar")])
    if "district" in scenario.market.levels:
        return curve(k, fid, pq.read_table(where / ORDERS_FILE), slack)
    e = np.zeros(0)
    return FeederCurve(k, fid, np.zeros(0, np.int32), np.zeros(0, bool), e, e, *slack)


def curve(k: int, feeder_id: str, orders: pa.Table, slack: np.ndarray) -> FeederCurve:
    """Feeder ``k``'s aggregated curve of its residual ``orders`` (:data:`ORDERS_FILE`
    rows) and its transformer flow ``slack`` (``(2, T)``: p_kw, q_kvar)."""
    buy = is_buy(orders.column("side"))
    t = orders.column("t").to_numpy()
    steps = merge_steps(t, buy, orders.column("price_per_kwh").to_numpy(),
                        orders.column("energy_kwh").to_numpy())  # fmt: skip
    return FeederCurve(k, feeder_id, steps.key.astype(np.int32), steps.is_buy,
                       steps.price_per_kwh, steps.energy_kwh, slack[0], slack[1])  # fmt: skip


@functools.cache
def _district(spec: str) -> District:
    """The district (built once per process: every feeder task of a worker shares it)."""
    from grid.district_networks import load_district

    return load_district(spec)


def apply_district(
    feeder_id: str,
    filled_kwh: np.ndarray,
    price_per_kwh: np.ndarray,
    fee_per_kwh: float,
    out_dir: Path,
) -> None:
    """Allocate the district's fills of the feeder's curve (``filled_kwh`` and the price
    per step of :func:`run_feeder`'s curve, the whole run) to its residual orders, write
    them (:data:`FILLS_FILE`) and book them into the feeder's agents.parquet and
    intervals.parquet (:func:`scenarios.engine.district_booking.book_fills`, one block:
    the whole run)."""
    from scenarios.engine.district_booking import book_fills

    where = feeder_dir(out_dir, feeder_id)
    n_t = pq.ParquetFile(where / INTERVALS_FILE).metadata.num_rows
    filled = np.asarray(filled_kwh, float)
    whole = (filled, np.asarray(price_per_kwh, float))
    traded = bool((filled > 0).any())
    book_fills(where, ORDERS_FILE, FILLS_FILE, fee_per_kwh, n_t, lambda i: whole, traded)


STEPS_FILE = "_district_steps.parquet"
"""``feeder=<id>/_district_steps.parquet``: the district's fill and price of each step of
the feeder's curve (t, filled_kwh, price_per_kwh), one row group per block; written by the
district level, read and removed by :func:`book_feeder`."""


def book_feeder(
    feeder_id: str, fee_per_kwh: float, block: int, traded: bool, out_dir: Path
) -> None:
    """Book the district's fills (:data:`STEPS_FILE`) into feeder ``feeder_id``'s files,
    block by block (:func:`scenarios.engine.district_booking.book_fills`)."""
    from scenarios.engine.district_blocks import BlockReader
    from scenarios.engine.district_booking import book_fills

    where = feeder_dir(out_dir, feeder_id)
    steps = BlockReader(where / STEPS_FILE, block)

    def step_fills(i: int) -> tuple[np.ndarray, np.ndarray]:
        part = steps.read(i)
        return part.column("filled_kwh").to_numpy(), part.column("price_per_kwh").to_numpy()

    book_fills(where, ORDERS_FILE, FILLS_FILE, fee_per_kwh, block, step_fills, traded)
    (where / STEPS_FILE).unlink()
