"""The district's fills booked back into one LV feeder's files (issue 18), one block of
intervals at a time (:mod:`scenarios.engine.district_blocks`).

Per block, the feeder's residual orders of the block (``district_orders.parquet``) are
merged into their steps again (:func:`market.nested.merge_steps`, as the district merged
them), each step's fill is shared by its orders pro rata to their residual energy
(:func:`market.nested.allocate_pro_rata`), written (``district_fills.parquet``) and booked
into the block's rows of ``agents.parquet`` and ``intervals.parquet``, which are read and
written again block by block: a buyer's district kWh is bought P2P instead of imported
(its bill changes by ``kWh × (price + fee − retail)``), a seller's is sold instead of
exported (``kWh × (feed_in − price)``). Every column keeps its type and, where the schema
stores it in steps (:data:`~scenarios.results.schema.QUANTUM`), its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from market.nested import allocate_pro_rata, merge_steps
from scenarios.engine.district_blocks import (
    AppendWriter,
    BlockReader,
    BlockWriter,
    block_range,
    is_buy,
    n_blocks,
    row_blocks,
)
from scenarios.results.agents_writer import narrowed
from scenarios.results.schema import AGENTS_FILE, HOUSEHOLDS_FILE, INTERVALS_FILE, columns

StepFills = Callable[[int], tuple[np.ndarray, np.ndarray]]
"""Block ``i`` → the fill [kWh] and price [currency/kWh] of each of the feeder's steps of
that block (in :func:`market.nested.merge_steps` order)."""


def book_fills(
    where: Path,
    orders_file: str,
    fills_file: str,
    fee_per_kwh: float,
    block: int,
    step_fills: StepFills,
    traded: bool,
) -> None:
    """Allocate, write and book the district's fills of the feeder in ``where`` (module
    docstring); ``traded``: whether any step was filled (else agents and intervals stay
    as written)."""
    n_t = pq.ParquetFile(where / INTERVALS_FILE).metadata.num_rows
    ids = pq.read_table(where / HOUSEHOLDS_FILE, columns=["agent_id"]).column(0)
    agent_ids = ids.to_numpy(zero_copy_only=False).astype(str)
    n = len(agent_ids)
    orders = BlockReader(where / orders_file, block)
    fills = AppendWriter(where / fills_file, gather=True)
    books = _Books(where, n, block) if traded else None
    for i in range(n_blocks(n_t, block)):
        a, b = block_range(i, n_t, block)
        part = orders.read(i)
        t = part.column("t").to_numpy().astype(np.int64)
        buy = is_buy(part.column("side"))
        energy = part.column("energy_kwh").to_numpy()
        steps = merge_steps(t, buy, part.column("price_per_kwh").to_numpy(), energy)
        filled_kwh, price_per_kwh = step_fills(i)
        d = allocate_pro_rata(steps.group, energy, steps.energy_kwh, filled_kwh)
        price = np.nan_to_num(np.asarray(price_per_kwh, float)[steps.group])
        fee = np.where(buy, d * fee_per_kwh, 0.0)
        keep = d > 0
        fills.write(
            pa.table(
                {
                    "t": pa.array(t[keep], pa.int32()),
                    "agent_id": part.column("agent_id").filter(pa.array(keep)),
                    "side": part.column("side").filter(pa.array(keep)),
                    "energy_kwh": d[keep],
                    "price_per_kwh": price[keep],
                    "grid_fee": fee[keep],
                }
            )
        )
        if books is None:
            continue
        agent = part.column("agent_id").to_numpy(zero_copy_only=False).astype(str)
        row = (t - a) * n + pd.Categorical(agent, categories=agent_ids).codes
        retail = part.column("retail_price_per_kwh").to_numpy()
        feed_in = part.column("feed_in_price_per_kwh").to_numpy()
        money = np.where(buy, d * (price + fee_per_kwh - retail), d * (feed_in - price))
        size = n * (b - a)
        delta = {
            "bought_p2p_kwh": np.bincount(row, np.where(buy, d, 0.0), size),
            "sold_p2p_kwh": np.bincount(row, np.where(buy, 0.0, d), size),
            "grid_import_kwh": -np.bincount(row, np.where(buy, d, 0.0), size),
            "grid_export_kwh": -np.bincount(row, np.where(buy, 0.0, d), size),
            "cost": np.bincount(row, money, size),
        }
        books.agents(a, b, agent_ids, delta)
        per_t = {name: v.reshape(b - a, n).sum(axis=1) for name, v in delta.items()}
        per_t["grid_fees"] = np.bincount(t - a, fee, b - a)
        per_t.pop("bought_p2p_kwh"), per_t.pop("sold_p2p_kwh")
        books.intervals(a, b, per_t)
    fills.close()
    if books is not None:
        books.close()


class _Books:
    """agents.parquet and intervals.parquet, read and written again block by block."""

    def __init__(self, where: Path, n: int, block: int) -> None:
        self._paths = (where / AGENTS_FILE, where / INTERVALS_FILE)
        self._blocks = (row_blocks(self._paths[0], n * block), row_blocks(self._paths[1], block))
        self._out = tuple(BlockWriter(p, pq.ParquetFile(p).schema_arrow) for p in self._paths)

    def agents(self, a: int, b: int, ids: np.ndarray, delta: dict[str, np.ndarray]) -> None:
        table = next(self._blocks[0])
        t = table.column("t").to_numpy()
        agent = table.column("agent_id").to_numpy(zero_copy_only=False).astype(str)
        n = len(ids)
        if len(t) != n * (b - a) or not (
            np.array_equal(t, np.repeat(np.arange(a, b), n))
            and np.array_equal(agent, np.tile(ids, b - a))
        ):
            raise ValueError(f"{self._paths[0]}: rows are not interval-major over households")
        self._out[0].write(_added(table, AGENTS_FILE, delta))

    def intervals(self, a: int, b: int, delta: dict[str, np.ndarray]) -> None:
        table = next(self._blocks[1])
        if not np.array_equal(table.column("t").to_numpy(), np.arange(a, b)):
            raise ValueError(f"{self._paths[1]}: rows are not one per interval in order")
        self._out[1].write(_added(table, INTERVALS_FILE, delta))

    def close(self) -> None:
        for w in self._out:
            w.close()


def _added(table: pa.Table, file: str, delta: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    """``table``'s columns with ``delta`` added (schema ``file``: each column in its type
    and, where the schema stores it in steps, in its steps)."""
    spec = {c.name: c for c in columns(file)}
    out: dict[str, pa.Array] = {name: table.column(name) for name in table.column_names}
    for name, add in delta.items():
        col = table.column(name)
        new = narrowed(spec[name], col.to_numpy().astype(float) + add)
        out[name] = pa.array(new).cast(col.type)
    return out
