"""Writing and reading a run's results files (the contract in DESIGN.md).

Large tables (``agents``, ``trades``, and the grid tables) are streamed to Parquet one
window of intervals at a time, so a year × 1,000 households never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from agents.devices import kind_names
from market.orders import SIDE_NAMES, Side
from scenarios.results.agents_writer import AGENT_VALUE_COLUMNS as AGENT_VALUE_COLUMNS
from scenarios.results.agents_writer import AgentsWriter as AgentsWriter
from scenarios.results.schema import AGENTS_FILE as AGENTS_FILE
from scenarios.results.schema import BOOKS_FILE as BOOKS_FILE
from scenarios.results.schema import BUSES_FILE as BUSES_FILE
from scenarios.results.schema import FILES, arrow_schema, names
from scenarios.results.schema import HOUSEHOLDS_FILE as HOUSEHOLDS_FILE
from scenarios.results.schema import INTERVALS_FILE as INTERVALS_FILE
from scenarios.results.schema import LINES_FILE as LINES_FILE
from scenarios.results.schema import TRADES_FILE as TRADES_FILE
from scenarios.results.stream import COMPRESSION, TableStream

KPIS_FILE = "kpis.json"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
_COMPRESSION = COMPRESSION


class TradesWriter:
    """Streams ``trades.parquet``: one row per trade."""

    SCHEMA = arrow_schema(TRADES_FILE)
    """``buy_kind``/``sell_kind``: which of the buyer's and the seller's orders the trade
    fills (``net``, ``battery``, ``ev``: with ``t``, the agent and the side, one row of
    books.parquet, whose limit the trade's price respects). The columns of a run are
    those present under its conditions (``whens``, :func:`scenarios.results.schema.names`)."""

    def __init__(self, out_dir: Path, agent_ids: np.ndarray, whens: tuple[str, ...] = ()) -> None:
        self._ids = pa.array(agent_ids.astype(str), pa.string())
        present = set(names(TRADES_FILE, *whens))
        self._stream = TableStream(
            out_dir / TRADES_FILE,
            pa.schema([f for f in self.SCHEMA if f.name in present]),
            ["buyer_id", "seller_id", "buy_kind", "sell_kind"],
            always=True,
        )
        self.rows = 0

    def write_trades(
        self,
        t: np.ndarray,
        buyer: np.ndarray,
        seller: np.ndarray,
        energy_kwh: np.ndarray,
        price_per_kwh: np.ndarray,
        seller_price_per_kwh: np.ndarray,
        grid_fee: np.ndarray,
        buy_kind: np.ndarray,
        sell_kind: np.ndarray,
        network_charge_per_kwh: np.ndarray,
    ) -> None:
        """Write trades; ``buyer``/``seller`` are household rows, the kinds
        order-kind codes of the orders they fill (named by :func:`order_kinds`)."""
        kinds = order_kinds()
        columns = {
            "t": t.astype(np.int32),
            "buyer_id": pa.DictionaryArray.from_arrays(buyer.astype(np.int32), self._ids),
            "seller_id": pa.DictionaryArray.from_arrays(seller.astype(np.int32), self._ids),
            "energy_kwh": energy_kwh,
            "price_per_kwh": price_per_kwh,
            "seller_price_per_kwh": seller_price_per_kwh,
            "grid_fee": grid_fee,
            "network_charge_per_kwh": network_charge_per_kwh,
            "buy_kind": pa.DictionaryArray.from_arrays(buy_kind.astype(np.int32), kinds),
            "sell_kind": pa.DictionaryArray.from_arrays(sell_kind.astype(np.int32), kinds),
        }
        self._stream.write({f.name: columns[f.name] for f in self._stream.schema})
        self.rows += len(t)

    def close(self) -> None:
        self._stream.close()


class BooksWriter:
    """Streams ``books.parquet`` (``[output] order_books = true``): one row per order as
    submitted to the market, before any re-clearing by the feeder."""

    SCHEMA = arrow_schema(BOOKS_FILE)
    SIDES = pa.array(SIDE_NAMES, pa.string())

    def __init__(self, out_dir: Path, agent_ids: np.ndarray) -> None:
        self._ids = pa.array(agent_ids.astype(str), pa.string())
        self._stream = TableStream(out_dir / BOOKS_FILE, self.SCHEMA, ["agent_id", "side", "kind"])
        self.rows = 0

    def write_orders(
        self,
        t: np.ndarray,
        household: np.ndarray,
        is_buy: np.ndarray,
        kind: np.ndarray,
        energy_kwh: np.ndarray,
        price_per_kwh: np.ndarray,
    ) -> None:
        """Write orders; ``household`` are household rows."""
        side = np.where(is_buy, Side.BUY, Side.SELL).astype(np.int32)
        self._stream.write(
            {
                "t": t.astype(np.int32),
                "agent_id": pa.DictionaryArray.from_arrays(household.astype(np.int32), self._ids),
                "side": pa.DictionaryArray.from_arrays(side, self.SIDES),
                "kind": pa.DictionaryArray.from_arrays(kind.astype(np.int32), order_kinds()),
                "energy_kwh": energy_kwh,
                "price_per_kwh": price_per_kwh,
            }
        )
        self.rows += len(t)

    def close(self) -> None:
        self._stream.close()


def order_kinds() -> pa.Array:
    """The order kinds' names by code (``net``, then the registered devices)."""
    return pa.array(kind_names(), pa.string())


ROW_GROUP_ROWS = 1 << 12
"""Rows per row group of a table written whole: a reader that streams the file (a
district's booking, :mod:`scenarios.engine.district_blocks`) decodes one row group's
pages at a time, 1.3 MB of a 39-column ``intervals.parquet``, not a year's 11 MB."""


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a small table whole (intervals, households), in row groups of
    :data:`ROW_GROUP_ROWS` rows."""
    frame.to_parquet(path, index=False, compression=_COMPRESSION, row_group_size=ROW_GROUP_ROWS)
    pa.default_memory_pool().release_unused()  # the Arrow copy of a year's intervals: 20 MB


def write_json(data: Mapping[str, Any], path: Path) -> None:
    """Write JSON with NaN/inf as null (JSON has no NaN)."""
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class ResultsFileError(ValueError):
    """A results file that cannot be read, or lacks a column the schema requires."""


def read_table(path: Path, *whens: str) -> pd.DataFrame:
    """One results table, checked against the schema: every column it requires (and the
    columns present under the conditions ``whens``, :func:`names`) must be there.

    Raises
    ------
    ResultsFileError
        When the file is not readable Parquet, or lacks such columns (all named).
    """
    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise ResultsFileError(f"{path.name}: not a readable Parquet file ({exc})") from None
    if path.name in FILES:
        lost = [c for c in names(path.name, *whens) if c not in frame.columns]
        if lost:
            raise ResultsFileError(f"{path.name}: missing column(s) {', '.join(lost)}")
    return frame


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """Open a results directory: the tables as DataFrames, KPIs and manifest as dicts.

    The two large tables are read whole; open them with pyarrow or DuckDB for
    year-long runs.
    """
    out = Path(out_dir)
    result: dict[str, Any] = {}
    for file in FILES:
        name = file.removesuffix(".parquet")
        if (out / file).exists():
            result[name] = pd.read_parquet(out / file)
    for name, file in (("kpis", KPIS_FILE), ("manifest", MANIFEST_FILE)):
        result[name] = json.loads((out / file).read_text(encoding="utf-8"))
    return result
