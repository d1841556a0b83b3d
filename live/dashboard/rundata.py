"""A finished run's results directory, opened for the dashboard (read-only).

``read_run`` checks the directory against the results contract (DESIGN.md, the results
schema :mod:`scenarios.results.schema` read through :func:`scenarios.results.files.read_table`)
and loads the tables into arrays indexed ``[interval, household]`` so that a household
table or a feeder snapshot of one interval is a slice, not a scan. Every problem found is
reported together in one :class:`RunDirError`.

The order book is not part of the required results files. When a run directory holds
``books.parquet`` (``[output] order_books = true``) the supply and demand curves are
drawn from it; otherwise they are *revealed from the fills*
(:func:`live.dashboard.curves.revealed_book`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from live.dashboard.curves import book_curves, revealed_book
from live.dashboard.devices import static_columns
from live.dashboard.feeder import Feeder, feeder_payload, read_feeder
from live.dashboard.records import jsonable, records
from scenarios.kpis.compute import compute_kpis, household_savings
from scenarios.results.agents_missing import no_agents_table
from scenarios.results.files import (
    AGENT_VALUE_COLUMNS,
    AGENTS_FILE,
    BOOKS_FILE,
    BUSES_FILE,
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    KPIS_FILE,
    LINES_FILE,
    MANIFEST_FILE,
    TRADES_FILE,
    ResultsFileError,
    read_table,
)
from scenarios.results.schema import metered_net_kwh


class RunDirError(Exception):
    """A results directory that is missing, incomplete or unreadable."""


def _read_parquet(path: Path, problems: list[str], *whens: str) -> pd.DataFrame | None:
    try:
        return read_table(path, *whens)
    except ResultsFileError as exc:
        problems.append(str(exc))
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
        bill = v["cost"][: t + 1].sum(axis=0)
        base = v["baseline_cost"][: t + 1].sum(axis=0)
        saved = household_savings(bill, base, self.stored_delta_kwh(t), self.retail_price)
        gen, dem = v["generation_kwh"][t], v["demand_kwh"][t]
        frame = pd.DataFrame(
            {
                "agent_id": self.agent_ids,
                **static_columns(self.households),
                "generation_kwh": gen,
                "demand_kwh": dem,
                "net_kwh": metered_net_kwh({k: a[t] for k, a in v.items()}),
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

    @property
    def band_pu(self) -> tuple[float, float] | None:
        """The run's voltage band (``grid.v_min_pu``, ``grid.v_max_pu``) from its manifest."""
        scenario = self.manifest.get("scenario")
        grid = scenario.get("grid") if isinstance(scenario, dict) else None
        if not isinstance(grid, dict) or "v_min_pu" not in grid or "v_max_pu" not in grid:
            return None
        return float(grid["v_min_pu"]), float(grid["v_max_pu"])

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
            self.band_pu,
        )
        if "grid_check" in self.kpis:
            kpis["grid_check"] = self.kpis["grid_check"]
        return {k: jsonable(v) for k, v in kpis.items()}

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
        if self.feeder is None:
            return None
        row = self.interval_records[t]
        return feeder_payload(
            t,
            row.get("timestamp"),
            (self.grid.get("v_min_pu"), self.grid.get("v_max_pu")),
            row.get("curtailed_kwh"),
            *self.feeder.elements(t),
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
    why = no_agents_table(out, "the dashboard's run view")
    if why is not None:
        raise RunDirError(why)
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
    for col in AGENT_VALUE_COLUMNS:
        arr = np.full((n_t, n), np.nan)
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
        buses = _read_parquet(out / BUSES_FILE, problems, "grid")
        lines = _read_parquet(out / LINES_FILE, problems, "grid")
        if not problems and buses is not None and lines is not None:
            feeder = read_feeder(buses, lines, n_t, problems)
    books = None
    if (out / BOOKS_FILE).is_file():
        books = _read_parquet(out / BOOKS_FILE, problems, "books")
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
