"""A finished run's results directory, opened for the dashboard (read-only).

``read_run`` checks the directory against the results contract (DESIGN.md) and loads
the tables into arrays indexed ``[interval, household]`` so that a household table or
a feeder snapshot of one interval is a slice, not a scan. Every problem found is
reported together in one :class:`RunDirError`.

The order book is not part of the results files. When a run directory holds an
optional ``books.parquet`` (``t, side, energy_kwh, price_per_kwh``) the supply and
demand curves are drawn from it; otherwise they are *revealed from the fills*
(:func:`revealed_book`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.kpis.compute import compute_kpis, household_savings
from scenarios.results.files import (
    AGENTS_FILE,
    BUSES_FILE,
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    KPIS_FILE,
    LINES_FILE,
    MANIFEST_FILE,
    TRADES_FILE,
)

BOOKS_FILE = "books.parquet"
"""Optional per-interval order book: ``t, side ("buy"/"sell"), energy_kwh, price_per_kwh``."""

INTERVAL_COLUMNS = (
    "t",
    "timestamp",
    "clearing_price_per_kwh",
    "p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
)
AGENT_COLUMNS = (
    "generation_kwh",
    "demand_kwh",
    "battery_kwh",
    "ev_kwh",
    "soc_kwh",
    "bought_p2p_kwh",
    "sold_p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "cost",
)
TRADE_COLUMNS = ("t", "buyer_id", "seller_id", "energy_kwh", "price_per_kwh")

# Columns of the household table (position at t and bill up to t), in order.
HOUSEHOLD_TABLE_COLUMNS = (
    "agent_id",
    "bus",
    "pv_kwp",
    "battery_kwh_capacity",
    "ev_kwh_capacity",
    "generation_kwh",
    "demand_kwh",
    "net_kwh",
    "bought_p2p_kwh",
    "sold_p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "soc_kwh",
    "ev_soc_kwh",
    "cost_t",
    "bill",
    "baseline_bill",
    "savings",
)


class RunDirError(Exception):
    """A results directory that is missing, incomplete or unreadable."""


def _missing(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> list[str]:
    lost = [c for c in columns if c not in frame.columns]
    return [f"{name}: missing column(s) {', '.join(lost)}"] if lost else []


def _read_parquet(path: Path, problems: list[str]) -> pd.DataFrame | None:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException, ValueError) as exc:
        problems.append(f"{path.name}: not a readable Parquet file ({exc})")
        return None


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: not readable JSON ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a JSON object")
        return None
    return data


def _jsonable(value: Any) -> Any:
    """A plain-JSON value: NaN/inf → None, numpy scalars → Python, timestamps → ISO."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts."""
    cols = list(frame.columns)
    out = []
    arrays = []
    for c in cols:
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            arrays.append([None if pd.isna(v) else v.isoformat() for v in s])
        elif isinstance(s.dtype, pd.CategoricalDtype):
            arrays.append(s.astype(object).where(s.notna(), None).tolist())
        else:
            arrays.append(s.astype(object).where(s.notna(), None).tolist())
    for row in zip(*arrays, strict=True):
        out.append({c: _jsonable(v) for c, v in zip(cols, row, strict=True)})
    return out


@dataclass
class Feeder:
    """Buses and lines of the feeder with values per interval (``[t, element]``)."""

    bus: np.ndarray  # labels, feeder order
    depth: np.ndarray  # hops from the slack bus
    v_pu: np.ndarray
    p_kw: np.ndarray
    nodal_price_per_kwh: np.ndarray
    line: np.ndarray
    from_bus: np.ndarray
    to_bus: np.ndarray
    loading_frac: np.ndarray
    line_p_kw: np.ndarray


@dataclass(eq=False)
class RunData:
    """A run's tables, checked and arranged for interval-by-interval access."""

    path: Path
    name: str
    intervals: pd.DataFrame
    interval_records: list[dict[str, Any]]
    kpis: dict[str, Any]
    manifest: dict[str, Any]
    agent_ids: np.ndarray
    households: pd.DataFrame  # static table, in agent_ids order
    values: dict[str, np.ndarray]  # column → (T, n)
    trades: pd.DataFrame
    trade_start: np.ndarray  # trades of interval t are rows trade_start[t]:trade_start[t+1]
    feeder: Feeder | None
    books: pd.DataFrame | None
    market: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    interval_minutes: int = 15

    @property
    def n_intervals(self) -> int:
        return len(self.intervals)

    @property
    def n_households(self) -> int:
        return len(self.agent_ids)

    @property
    def interval_hours(self) -> float:
        return self.interval_minutes / 60.0

    # ----------------------------------------------------------------- per interval
    def household_table(self, t: int) -> pd.DataFrame:
        """Each household's position in interval ``t`` and its bill up to ``t``."""
        v = self.values
        hh = self.households
        bill = v["cost"][: t + 1].sum(axis=0)
        base = v["baseline_cost"][: t + 1].sum(axis=0)
        saved = household_savings(bill, base, self.stored_delta_kwh(t), self.retail_price)
        gen, dem = v["generation_kwh"][t], v["demand_kwh"][t]
        frame = pd.DataFrame(
            {
                "agent_id": self.agent_ids,
                "bus": hh["bus"].to_numpy() if "bus" in hh else None,
                "pv_kwp": hh.get("pv_kwp", pd.Series(np.nan, index=hh.index)).to_numpy(),
                "battery_kwh_capacity": hh.get(
                    "battery_kwh", pd.Series(np.nan, index=hh.index)
                ).to_numpy(),
                "ev_kwh_capacity": hh.get("ev_kwh", pd.Series(np.nan, index=hh.index)).to_numpy(),
                "generation_kwh": gen,
                "demand_kwh": dem,
                "net_kwh": gen - dem - v["battery_kwh"][t] - v["ev_kwh"][t],
                "bought_p2p_kwh": v["bought_p2p_kwh"][t],
                "sold_p2p_kwh": v["sold_p2p_kwh"][t],
                "grid_import_kwh": v["grid_import_kwh"][t],
                "grid_export_kwh": v["grid_export_kwh"][t],
                "soc_kwh": v["soc_kwh"][t],
                "ev_soc_kwh": v["ev_soc_kwh"][t],
                "cost_t": v["cost"][t],
                "bill": bill,
                "baseline_bill": base,
                "savings": saved,
            }
        )
        return frame

    def household_series(self, index: int) -> pd.DataFrame:
        """One household over every interval."""
        frame = pd.DataFrame({"t": self.intervals["t"].to_numpy()})
        frame["timestamp"] = self.intervals["timestamp"].to_numpy()
        for name, arr in self.values.items():
            frame[name] = arr[:, index]
        frame["bill"] = frame["cost"].cumsum()
        return frame

    def trades_between(self, t_from: int, t_to: int) -> pd.DataFrame:
        """Trades of intervals ``t_from..t_to`` (inclusive)."""
        lo, hi = self.trade_start[t_from], self.trade_start[t_to + 1]
        return self.trades.iloc[lo:hi]

    @property
    def retail_price(self) -> float:
        """The retail tariff the savings value stored energy at [currency/kWh]."""
        return float(self.market.get("retail_price_per_kwh", 0.0))

    def stored_delta_kwh(self, t: int) -> np.ndarray:
        """Each household's stored energy at the end of ``t`` minus its baseline's [kWh]
        (zero for a run written before the baseline's was recorded)."""
        v = self.values
        delta = v["soc_kwh"][t] + v["ev_soc_kwh"][t] - v["baseline_stored_kwh"][t]
        return np.nan_to_num(delta)

    @lru_cache(maxsize=256)  # noqa: B019 — one RunData per process, bounded cache
    def kpis_at(self, t: int) -> dict[str, Any]:
        """KPIs over intervals ``0..t``; the run's own kpis.json at the last interval."""
        if t >= self.n_intervals - 1:
            return dict(self.kpis)
        cost = self.values["cost"][: t + 1].sum(axis=0)
        base = self.values["baseline_cost"][: t + 1].sum(axis=0)
        kpis = compute_kpis(
            self.intervals.iloc[: t + 1],
            cost,
            base,
            self.stored_delta_kwh(t),
            self.retail_price,
            self.interval_hours,
            self.market.get("currency", "EUR"),
        )
        if "grid_check" in self.kpis:
            kpis["grid_check"] = self.kpis["grid_check"]
        return {k: _jsonable(v) for k, v in kpis.items()}

    def book(self, t: int) -> dict[str, Any]:
        """Supply and demand curves of interval ``t`` with its clearing point."""
        row = self.interval_records[t]
        if self.books is not None:
            sel = self.books[self.books["t"] == t]
            buy, sell = sel[sel["side"] == "buy"], sel[sel["side"] == "sell"]
            curves = book_curves(
                buy["energy_kwh"].to_numpy(float),
                buy["price_per_kwh"].to_numpy(float),
                sell["energy_kwh"].to_numpy(float),
                sell["price_per_kwh"].to_numpy(float),
            )
            source = "order book (books.parquet)"
        else:
            curves = revealed_book(
                self.trades_between(t, t),
                self.values["grid_import_kwh"][t],
                self.values["grid_export_kwh"][t],
                self.market.get("retail_price_per_kwh"),
                self.market.get("feed_in_price_per_kwh"),
            )
            source = "revealed from fills (the results files hold no order book)"
        return {
            "t": t,
            "timestamp": row.get("timestamp"),
            "source": source,
            "price_per_kwh": row.get("clearing_price_per_kwh"),
            "volume_kwh": row.get("p2p_kwh"),
            **curves,
        }

    def feeder_state(self, t: int) -> dict[str, Any] | None:
        """Voltage, injection and nodal price at every bus, loading of every line, at ``t``."""
        f = self.feeder
        if f is None:
            return None
        return {
            "t": t,
            "timestamp": self.interval_records[t].get("timestamp"),
            "v_min_limit_pu": self.grid.get("v_min_pu"),
            "v_max_limit_pu": self.grid.get("v_max_pu"),
            "curtailed_kwh": self.interval_records[t].get("curtailed_kwh"),
            "buses": [
                {
                    "bus": str(b),
                    "depth": int(d),
                    "v_pu": _jsonable(float(v)),
                    "p_kw": _jsonable(float(p)),
                    "nodal_price_per_kwh": _jsonable(float(c)),
                }
                for b, d, v, p, c in zip(
                    f.bus, f.depth, f.v_pu[t], f.p_kw[t], f.nodal_price_per_kwh[t], strict=True
                )
            ],
            "lines": [
                {
                    "line": str(n),
                    "from_bus": str(a),
                    "to_bus": str(b),
                    "loading_frac": _jsonable(float(x)),
                    "p_kw": _jsonable(float(p)),
                }
                for n, a, b, x, p in zip(
                    f.line, f.from_bus, f.to_bus, f.loading_frac[t], f.line_p_kw[t], strict=True
                )
            ],
        }


def _step(kwh: np.ndarray, price: np.ndarray, descending: bool) -> dict[str, list[float]]:
    """A step curve through cumulative energy [kWh] at the limit prices, best first."""
    keep = kwh > 0
    kwh, price = kwh[keep], price[keep]
    if not len(kwh):
        return {"energy_kwh": [], "price_per_kwh": []}
    order = np.argsort(-price if descending else price, kind="stable")
    q = np.concatenate([[0.0], np.cumsum(kwh[order])])
    p = price[order]
    return {"energy_kwh": np.repeat(q, 2)[1:-1].tolist(), "price_per_kwh": np.repeat(p, 2).tolist()}


def book_curves(
    buy_kwh: np.ndarray, buy_price: np.ndarray, sell_kwh: np.ndarray, sell_price: np.ndarray
) -> dict[str, Any]:
    """Demand (bids, highest first) and supply (asks, lowest first) step curves."""
    return {"demand": _step(buy_kwh, buy_price, True), "supply": _step(sell_kwh, sell_price, False)}


def revealed_book(
    trades: pd.DataFrame,
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    retail: float | None,
    feed_in: float | None,
) -> dict[str, Any]:
    """Supply and demand as the fills reveal them, when the book itself is not stored.

    Matched demand is drawn at the price each buyer paid, matched supply at the price each
    seller received. What went to the utility instead was not matched in the market: the
    buyers' limits lay at or below the clearing price and the sellers' at or above it, so
    it is drawn at the bound every limit respects — unmatched demand at the feed-in
    tariff, unmatched supply at the retail tariff. The curves therefore meet at the
    clearing point; their shape away from it is a bound, not the book.
    """
    energy = trades["energy_kwh"].to_numpy(float)
    paid = trades["price_per_kwh"].to_numpy(float)
    got = (
        trades["seller_price_per_kwh"].to_numpy(float) if "seller_price_per_kwh" in trades else paid
    )
    got = np.where(np.isfinite(got), got, paid)
    low = feed_in if feed_in is not None else 0.0
    high = retail if retail is not None else (float(paid.max()) if len(paid) else 1.0)
    b_kwh = np.append(energy, float(np.nansum(import_kwh)))
    b_price = np.append(paid, low)
    s_kwh = np.append(energy, float(np.nansum(export_kwh)))
    s_price = np.append(got, high)
    return book_curves(b_kwh, b_price, s_kwh, s_price)


def _feeder(
    buses: pd.DataFrame, lines: pd.DataFrame, n_t: int, problems: list[str]
) -> Feeder | None:
    bus_order = list(dict.fromkeys(buses.loc[buses["t"] == buses["t"].min(), "bus"].astype(str)))
    line_order = list(dict.fromkeys(lines.loc[lines["t"] == lines["t"].min(), "line"].astype(str)))
    nb, nl = len(bus_order), len(line_order)
    if len(buses) != n_t * nb or len(lines) != n_t * nl:
        problems.append(
            f"{BUSES_FILE}/{LINES_FILE}: expected one row per element and interval "
            f"({n_t} × {nb} buses, {n_t} × {nl} lines), found {len(buses)} and {len(lines)}"
        )
        return None

    def grid_of(frame: pd.DataFrame, key: str, order: list[str], col: str) -> np.ndarray:
        pos = pd.Index(order).get_indexer(frame[key].astype(str))
        out = np.full((n_t, len(order)), np.nan)
        out[frame["t"].to_numpy(), pos] = frame[col].to_numpy(float)
        return out

    first = lines[lines["t"] == lines["t"].min()]
    link = dict(zip(first["to_bus"].astype(str), first["from_bus"].astype(str), strict=True))
    depth = np.zeros(nb, dtype=int)
    for i, b in enumerate(bus_order):
        hops, cur = 0, b
        while cur in link and hops <= nb:
            cur, hops = link[cur], hops + 1
        depth[i] = hops
    frm = first.set_index(first["line"].astype(str))
    return Feeder(
        bus=np.array(bus_order, dtype=object),
        depth=depth,
        v_pu=grid_of(buses, "bus", bus_order, "v_pu"),
        p_kw=grid_of(buses, "bus", bus_order, "p_kw"),
        nodal_price_per_kwh=grid_of(buses, "bus", bus_order, "nodal_price_per_kwh"),
        line=np.array(line_order, dtype=object),
        from_bus=frm.loc[line_order, "from_bus"].astype(str).to_numpy(),
        to_bus=frm.loc[line_order, "to_bus"].astype(str).to_numpy(),
        loading_frac=grid_of(lines, "line", line_order, "loading_frac"),
        line_p_kw=grid_of(lines, "line", line_order, "p_kw"),
    )


def read_run(path: str | Path) -> RunData:
    """Open and check a results directory written by ``p2pgrid run``.

    Raises
    ------
    RunDirError
        When the directory is missing, or any required file is missing, unreadable or
        lacks a required column; the message lists every problem.
    """
    out = Path(path)
    if not out.exists():
        raise RunDirError(f"no results directory at {out}")
    if not out.is_dir():
        raise RunDirError(
            f"{out} is not a directory (expected the --out directory of `p2pgrid run`)"
        )
    required = (INTERVALS_FILE, AGENTS_FILE, TRADES_FILE, KPIS_FILE, MANIFEST_FILE)
    lost = [f for f in required if not (out / f).is_file()]
    if lost:
        raise RunDirError(
            f"{out} is not a complete results directory: missing "
            f"{', '.join(lost)} (write one with `p2pgrid run FILE --out DIR`)"
        )
    problems: list[str] = []
    intervals = _read_parquet(out / INTERVALS_FILE, problems)
    agents = _read_parquet(out / AGENTS_FILE, problems)
    trades = _read_parquet(out / TRADES_FILE, problems)
    kpis = _read_json(out / KPIS_FILE, problems)
    manifest = _read_json(out / MANIFEST_FILE, problems)
    households = None
    if (out / HOUSEHOLDS_FILE).is_file():
        households = _read_parquet(out / HOUSEHOLDS_FILE, problems)
    if intervals is not None:
        problems += _missing(intervals, INTERVALS_FILE, INTERVAL_COLUMNS)
    if agents is not None:
        problems += _missing(agents, AGENTS_FILE, ("t", "agent_id", *AGENT_COLUMNS))
    if trades is not None:
        problems += _missing(trades, TRADES_FILE, TRADE_COLUMNS)
    if problems:
        raise RunDirError(f"{out}: " + "; ".join(problems))
    assert intervals is not None and agents is not None and trades is not None
    assert kpis is not None and manifest is not None

    n_t = len(intervals)
    if n_t == 0 or not np.array_equal(intervals["t"].to_numpy(), np.arange(n_t)):
        raise RunDirError(f"{out}: {INTERVALS_FILE} must hold intervals 0..T-1 in order")
    ids = agents["agent_id"].astype(str)
    agent_ids = np.array(list(dict.fromkeys(ids)), dtype=object)
    n = len(agent_ids)
    if len(agents) != n_t * n:
        raise RunDirError(
            f"{out}: {AGENTS_FILE} has {len(agents)} rows, expected "
            f"{n_t} intervals × {n} households"
        )
    t_idx = agents["t"].to_numpy()
    a_idx = pd.Index(agent_ids).get_indexer(ids)
    if t_idx.min() < 0 or t_idx.max() >= n_t:
        raise RunDirError(f"{out}: {AGENTS_FILE} has intervals outside 0..{n_t - 1}")
    values: dict[str, np.ndarray] = {}
    for col in (
        *AGENT_COLUMNS,
        "ev_soc_kwh",
        "baseline_cost",
        "baseline_stored_kwh",
        "curtailed_kwh",
    ):
        arr = np.full((n_t, n), np.nan)
        if col in agents:
            arr[t_idx, a_idx] = agents[col].to_numpy(float)
        values[col] = arr
    if np.isnan(values["cost"]).any():
        raise RunDirError(f"{out}: {AGENTS_FILE} lacks a row for some household and interval")

    if households is None or "agent_id" not in households:
        households = pd.DataFrame({"agent_id": agent_ids})
        if "bus" in agents:
            households["bus"] = agents.loc[agents["t"] == 0, "bus"].astype(str).to_numpy()
    households = (
        households.assign(agent_id=households["agent_id"].astype(str))
        .set_index("agent_id")
        .reindex(agent_ids)
        .reset_index()
    )

    trades = trades.sort_values("t", kind="stable").reset_index(drop=True)
    for c in ("buyer_id", "seller_id"):
        trades[c] = trades[c].astype(str)
    trade_start = np.searchsorted(trades["t"].to_numpy(), np.arange(n_t + 1), side="left")

    feeder = None
    if (out / BUSES_FILE).is_file() and (out / LINES_FILE).is_file():
        buses = _read_parquet(out / BUSES_FILE, problems)
        lines = _read_parquet(out / LINES_FILE, problems)
        if buses is not None:
            problems += _missing(buses, BUSES_FILE, ("t", "bus", "v_pu", "p_kw"))
        if lines is not None:
            problems += _missing(
                lines, LINES_FILE, ("t", "line", "from_bus", "to_bus", "loading_frac")
            )
        if not problems and buses is not None and lines is not None:
            if "nodal_price_per_kwh" not in buses:
                buses["nodal_price_per_kwh"] = np.nan
            if "p_kw" not in lines:
                lines["p_kw"] = np.nan
            feeder = _feeder(buses, lines, n_t, problems)
    books = None
    if (out / BOOKS_FILE).is_file():
        books = _read_parquet(out / BOOKS_FILE, problems)
        if books is not None:
            problems += _missing(books, BOOKS_FILE, ("t", "side", "energy_kwh", "price_per_kwh"))
    if problems:
        raise RunDirError(f"{out}: " + "; ".join(problems))

    scenario = manifest.get("scenario", {}) if isinstance(manifest.get("scenario"), dict) else {}
    sim = scenario.get("simulation", {}) or {}
    return RunData(
        path=out,
        name=str(scenario.get("name") or out.name),
        intervals=intervals,
        interval_records=records(intervals),
        kpis=kpis,
        manifest=manifest,
        agent_ids=agent_ids,
        households=households,
        values=values,
        trades=trades,
        trade_start=trade_start,
        feeder=feeder,
        books=books,
        market=dict(scenario.get("market", {}) or {}, currency=kpis.get("currency", "EUR")),
        grid=dict(scenario.get("grid", {}) or {}),
        interval_minutes=int(sim.get("interval_minutes", 15)),
    )
