"""Each member's totals over a run, from its results files or from the totals the run
accumulated as it wrote them (:class:`~scenarios.results.agents_writer.AgentTotals`).

``agents.parquet`` (or ``agents_daily.parquet``) and ``trades.parquet`` are read in
blocks of rows (:func:`~scenarios.results.blocks.read_blocks`, only the columns needed),
so a year-long run of many households never has to fit in memory. The KPIs per member
type (:mod:`scenarios.kpis.member_types`) read these totals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.results.agents_writer import AgentTotals
from scenarios.results.blocks import read_blocks
from scenarios.results.files import ResultsFileError
from scenarios.results.schema import (
    AGENTS_DAILY_FILE,
    AGENTS_FILE,
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    TRADES_FILE,
    device_energy_columns,
)

#: agents.parquet's columns summed per member [kWh or currency]
SUMMED = (
    "generation_kwh",
    "demand_kwh",
    "bought_p2p_kwh",
    "sold_p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "cost",
    "baseline_cost",
)
_END_STATE = ("soc_kwh", "ev_soc_kwh", "baseline_stored_kwh")


def _rows(ids: pa.Array, where: dict[str, int], source: str) -> np.ndarray:
    """Household rows of a dictionary-encoded id column (plain strings also read)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_encode()
    try:
        lookup = np.array([where[a] for a in ids.dictionary.to_pylist()], dtype=np.int64)
    except KeyError as exc:
        raise ResultsFileError(f"{source}: member {exc.args[0]!r} is not in households") from None
    return lookup[ids.indices.to_numpy(zero_copy_only=False)]


def member_totals(run_dir: str | Path, totals: AgentTotals | None = None) -> pd.DataFrame:
    """One row per member, in ``households.parquet``'s order.

    Columns: ``agent_id``, ``bus`` (None without the feeder in the run), the sums over
    the run of :data:`SUMMED`, ``device_kwh`` (Σ device energy, + charging),
    ``consumption_kwh`` = demand + ``device_kwh`` (what ``kpis.json`` calls consumption),
    ``stored_delta_kwh`` (battery + EV energy at the end minus the baseline's), and from
    ``trades.parquet`` ``sales_revenue`` (Σ energy × seller price over its sales),
    ``purchase_cost`` (Σ energy × buyer price over its purchases) and ``fees_paid``
    (Σ grid fee over its purchases) [currency]. The agents' part from ``totals`` (the
    run's, in households.parquet's order) when given, else from agents.parquet or
    agents_daily.parquet, whichever the run wrote.

    Raises
    ------
    ResultsFileError
        When a file is missing, lacks a column, or names a member households.parquet
        does not have.
    """
    out = Path(run_dir)
    agents_file = next((f for f in (AGENTS_FILE, AGENTS_DAILY_FILE) if (out / f).is_file()), "")
    for name in (HOUSEHOLDS_FILE, INTERVALS_FILE, TRADES_FILE):
        if not (out / name).is_file():
            raise ResultsFileError(f"{out}: no {name} (not a results directory of a run?)")
    if totals is None and not agents_file:
        raise ResultsFileError(
            f'{out}: no {AGENTS_FILE} nor {AGENTS_DAILY_FILE} (a run with [output] agents = "none"'
            " keeps its members' totals in kpis.json only)"
        )
    households = pd.read_parquet(out / HOUSEHOLDS_FILE, columns=["agent_id", "bus"])
    ids = households["agent_id"].astype(str).to_numpy()
    where = {a: i for i, a in enumerate(ids)}
    n = len(ids)
    devices = list(device_energy_columns(AGENTS_FILE))
    if totals is not None:
        sums = {c: totals.sums[c].copy() for c in SUMMED}
        sums["device_kwh"] = sum((totals.sums[c] for c in devices), np.zeros(n))
        last = totals.last
        stored_delta = last["soc_kwh"] + last["ev_soc_kwh"] - last["baseline_stored_kwh"]
    else:
        sums, stored_delta = _agent_sums(out, agents_file, where, devices)

    money = {c: np.zeros(n) for c in ("sales_revenue", "purchase_cost", "fees_paid")}
    trade_columns = [
        "buyer_id",
        "seller_id",
        "energy_kwh",
        "price_per_kwh",
        "seller_price_per_kwh",
        "grid_fee",
    ]
    for batch in read_blocks(out / TRADES_FILE, trade_columns):
        col = {name: batch.column(name) for name in trade_columns}
        buyer = _rows(col["buyer_id"], where, TRADES_FILE)
        seller = _rows(col["seller_id"], where, TRADES_FILE)
        energy = col["energy_kwh"].to_numpy()
        money["sales_revenue"] += np.bincount(
            seller, energy * col["seller_price_per_kwh"].to_numpy(), n
        )
        money["purchase_cost"] += np.bincount(buyer, energy * col["price_per_kwh"].to_numpy(), n)
        money["fees_paid"] += np.bincount(buyer, col["grid_fee"].to_numpy(), n)

    frame = pd.DataFrame({"agent_id": ids, "bus": households["bus"].to_numpy(), **sums})
    frame["consumption_kwh"] = frame["demand_kwh"] + frame["device_kwh"]
    frame["stored_delta_kwh"] = stored_delta
    for c, v in money.items():
        frame[c] = v
    return frame


def _agent_sums(
    out: Path, file: str, where: dict[str, int], devices: list[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:data:`SUMMED` and ``device_kwh`` per member, and the stored energy at the end
    against the baseline's, from ``file`` (agents.parquet or agents_daily.parquet)."""
    n = len(where)
    key = "day" if file == AGENTS_DAILY_FILE else "t"
    last = pq.ParquetFile(out / INTERVALS_FILE).metadata.num_rows - 1
    if key == "day":
        last = int(pq.read_table(out / file, columns=["day"]).column(0).to_numpy().max())
    columns = [key, "agent_id", *SUMMED, *devices, *_END_STATE]
    agents = pq.ParquetFile(out / file)
    lost = [c for c in columns if c not in agents.schema_arrow.names]
    if lost:
        raise ResultsFileError(f"{file}: missing column(s) {', '.join(lost)}")
    sums = {c: np.zeros(n) for c in (*SUMMED, "device_kwh")}
    stored_delta = np.zeros(n)
    for batch in read_blocks(out / file, columns):
        col = {name: batch.column(name) for name in columns}
        rows = _rows(col["agent_id"], where, file)
        for c in SUMMED:
            sums[c] += np.bincount(rows, col[c].to_numpy(), n)
        for c in devices:
            sums["device_kwh"] += np.bincount(rows, col[c].to_numpy(), n)
        end = col[key].to_numpy() == last
        stored_delta[rows[end]] = (
            col["soc_kwh"].to_numpy()[end].astype(np.float64)
            + col["ev_soc_kwh"].to_numpy()[end]
            - col["baseline_stored_kwh"].to_numpy()[end]
        )
    return sums, stored_delta
