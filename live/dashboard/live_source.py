"""A live market as the dashboard sees it: the payloads it publishes (DESIGN.md "MQTT
contract"), read through the protocol codec and turned into the dashboard's tables.

The transport is not here: :class:`live.dashboard.mqtt_source.MqttSource` feeds a
:class:`LiveSource` from the broker, :class:`live.dashboard.market_source.MarketSource`
from a market in the same process; both hand it the same payloads.

Each ``market/result`` is pushed to browsers as it arrives. Settlements and readings of
an interval revise that interval's row in one coalesced push a moment later. The row
is intervals.parquet's columns: the result's (:func:`live.payloads.decode_result`),
and the community sums of the households' settlements and readings
(:data:`live.payloads.COMMUNITY_SUMS`), which win where they report (a settlement
re-issued for a late meter, :mod:`live.corrections`, revises its interval: the highest
``version`` counts). Optional parts are used when present: ``market/result``'s ``book``
(:func:`live.book.decode_curve`) and ``grid.buses`` / ``grid.lines``; without a book the
curves are revealed from the fills as for a finished run. The trades (with household
ids) come from ``market/book``, which only the operator account may read: without it
the trades table stays empty.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from live.book import decode_curve, decode_trades
from live.dashboard.curves import book_curves, revealed_book
from live.dashboard.devices import static_columns
from live.dashboard.feeder import feeder_payload, live_feeder
from live.dashboard.feeder_map import MapBuilder
from live.dashboard.live_kpis import HouseholdMoney, live_kpis, tariffs_of
from live.dashboard.records import records
from live.dashboard.sources import MAX_T, Source
from live.payloads import (
    COMMUNITY_SUMS,
    READING_FIELDS,
    SETTLEMENT_FIELDS,
    decode_reading,
    decode_result,
    decode_settlement,
)
from scenarios.results.schema import (
    AGENTS_FILE,
    TRADES_FILE,
    device_energy_columns,
    metered_net_kwh,
    names,
)

REVISION_DELAY_S = 0.25
#: a household's values, in the table's order: the settlement's, then the reading's
HOUSEHOLD_VALUES = tuple(dict.fromkeys(c.name for c in SETTLEMENT_FIELDS + READING_FIELDS))
_TRADE_COLUMNS = [c for c in names(TRADES_FILE) if not c.endswith("_kind")]


def interval_of(payload: dict[str, Any]) -> int | None:
    """A payload's interval index ``t``, None unless an integer in [0, MAX_T]."""
    t = payload.get("t")
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= MAX_T:
        return None
    return t


class LiveSource(Source):
    """A live market's payloads as the dashboard's tables (no transport of its own).

    Parameters
    ----------
    community
        The community name in the topic root ``p2pgrid/<community>/``.
    broker
        The market's broker address, shown on the page.
    market
        Optional tariffs and limits to draw (``currency``, ``retail_price_per_kwh``,
        ``feed_in_price_per_kwh``, ``v_min_pu``, ``v_max_pu``, ``mechanism``) and the
        scenario's ``feeder`` (its ``grid.feeder``: the feeder map's layout, else the map
        is laid out from the published branches); the live command passes its scenario's.
    households
        Optional static table of the households (``households.parquet``'s columns, from
        :func:`scenarios.results.households_table.scenario_households`): their bus and devices in
        the household table, every household listed before it first reports.
    """

    kind = "live"

    def __init__(
        self,
        community: str,
        broker: str,
        market: dict[str, Any] | None = None,
        interval_minutes: int = 15,
        households: pd.DataFrame | None = None,
    ) -> None:
        super().__init__()
        self.community = community
        self.broker = broker
        self.market = dict(market or {})
        self.interval_minutes = interval_minutes
        self._lock = threading.RLock()
        self._clock: dict[str, Any] = {}
        self._stamps: dict[int, str] = {}
        self._results: dict[int, dict[str, Any]] = {}
        self._trades: list[dict[str, Any]] = []
        self._positions: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
        self._versions: dict[tuple[int, str], int] = {}
        self._readings: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
        self.money = HouseholdMoney(tariffs_of(self.market))
        self._agents = self.money.index  # household id → row, in order of appearance
        self._static = (
            households.set_index("agent_id") if households is not None else pd.DataFrame()
        )
        for agent in self._static.index:
            self.money.row(str(agent))
        self._rows: dict[int, dict[str, Any]] = {}
        self._errors = 0
        self._last_error: str | None = None
        self._pending: set[int] = set()
        self._timer: threading.Timer | None = None
        static = self._static
        self.map = MapBuilder(
            self.market.get("feeder"),
            len(static) or int(self.market.get("households") or 0),
            {str(a): str(b) for a, b in static["bus"].items() if b is not None}
            if "bus" in static
            else {},
            (self.market.get("v_min_pu"), self.market.get("v_max_pu")),
            self.market.get("currency", "EUR"),
        )

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    # ------------------------------------------------------------------ payloads
    def on_clock(self, payload: dict[str, Any]) -> None:
        """A ``clock`` of the market's run."""
        t = interval_of(payload)
        with self._lock:
            self._clock = payload
            minutes = payload.get("interval_minutes")
            if isinstance(minutes, int) and not isinstance(minutes, bool) and minutes > 0:
                self.interval_minutes = minutes
            if t is not None and isinstance(payload.get("interval_start"), str):
                self._stamps[t] = payload["interval_start"]

    def on_result(self, payload: dict[str, Any]) -> None:
        """A ``market/result``: its interval's row, pushed at once."""
        t = interval_of(payload)
        if t is None:
            return
        with self._lock:
            self._results[t] = payload
            self._rebuild_row(t)
        self.log.append("interval", t)

    def on_book(self, payload: dict[str, Any]) -> None:
        """The operator's ``market/book``: the interval's trades with household ids."""
        t = interval_of(payload)
        if t is None:
            return
        trades = decode_trades(payload, t)
        with self._lock:
            self._trades = [tr for tr in self._trades if tr["t"] != t] + trades
            for tr in trades:
                self.money.row(tr["buyer_id"])
                self.money.row(tr["seller_id"])

    def on_error(self, payload: dict[str, Any]) -> None:
        """A message the market rejected (``errors``)."""
        with self._lock:
            self._errors += 1
            self._last_error = str(payload.get("reason", ""))[:200]

    def on_settlement(self, agent_id: str, payload: dict[str, Any]) -> None:
        """An ``agents/<id>/settlement``; a lower ``version`` than one held is ignored."""
        t = interval_of(payload)
        if t is None:
            return
        version = payload.get("version")
        version = version if isinstance(version, int) and not isinstance(version, bool) else 1
        with self._lock:
            if version < self._versions.get((t, agent_id), 0):
                return
            self._versions[t, agent_id] = version
            self._store(self._positions, t, agent_id, decode_settlement(payload))

    def on_reading(self, agent_id: str, payload: dict[str, Any]) -> None:
        """An ``agents/<id>/reading``."""
        t = interval_of(payload)
        if t is not None:
            with self._lock:
                self._store(self._readings, t, agent_id, decode_reading(payload))

    def _store(
        self,
        store: dict[int, dict[str, dict[str, float]]],
        t: int,
        agent_id: str,
        values: dict[str, float],
    ) -> None:
        self.money.row(agent_id)
        store[t][agent_id] = values
        if t in self._results:
            self._pending.add(t)
            if self._timer is None:
                self._timer = threading.Timer(REVISION_DELAY_S, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending, self._timer = sorted(self._pending), set(), None
            for t in pending:
                self._rebuild_row(t)
        for t in pending:
            self.log.append("interval", t)

    def _agent_values(self, t: int, agent_id: str) -> dict[str, float]:
        return {
            **self._readings.get(t, {}).get(agent_id, {}),
            **self._positions.get(t, {}).get(agent_id, {}),
        }

    def _rebuild_row(self, t: int) -> None:
        row: dict[str, Any] = {
            "t": t,
            "timestamp": self._stamps.get(t),
            **decode_result(self._results[t]),
        }
        agents = set(self._positions.get(t, {})) | set(self._readings.get(t, {}))
        values = [self._agent_values(t, a) for a in agents]
        for col, src in COMMUNITY_SUMS.items():
            got = [v[src] for v in values if src in v]
            if got:
                row[col] = float(sum(got))
            else:
                row.setdefault(col, None)
        if row["p2p_kwh"] is None:
            row["p2p_kwh"] = 0.0
        row["households_reported"] = len(self._positions.get(t, {}))
        self._rows[t] = row
        self.money.record(t, self._positions.get(t, {}))

    # ------------------------------------------------------------------ the interface
    def meta(self) -> dict[str, Any]:
        return {
            "kind": "live",
            "name": self.community,
            "broker": self.broker,
            "currency": self.market.get("currency", "EUR"),
            "retail_price_per_kwh": self.market.get("retail_price_per_kwh"),
            "feed_in_price_per_kwh": self.market.get("feed_in_price_per_kwh"),
            "mechanism": self.market.get("mechanism"),
            "v_min_pu": self.market.get("v_min_pu"),
            "v_max_pu": self.market.get("v_max_pu"),
            "interval_minutes": self.interval_minutes,
            "households": len(self._agents),
            "intervals": len(self._rows),
            "replay_speed": None,
            "has_feeder": None,
            "has_map": True,  # laid out from the scenario's feeder or the published branches
            "book_source": "market/result book, or revealed from fills",
        }

    def latest_t(self) -> int:
        with self._lock:
            return max(self._rows) if self._rows else -1

    def has_interval(self, t: int) -> bool:
        with self._lock:
            return t in self._rows

    def interval_rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(self._rows[t]) for t in sorted(self._rows) if start <= t <= stop]

    def kpis(self, t: int) -> dict[str, Any]:
        """The KPIs of kpis.json over what the wire shows up to ``t``
        (:func:`live.dashboard.live_kpis.live_kpis`)."""
        rows = self.interval_rows(0, t)
        with self._lock:
            return live_kpis(
                rows,
                self.money,
                t,
                self.interval_minutes / 60.0,
                self.market.get("currency", "EUR"),
            )

    def households(self, t: int) -> pd.DataFrame:
        """Each household's position at ``t``, its devices (when the scenario is known)
        and its bill, baseline bill and savings up to ``t``."""
        with self._lock:
            agents = list(self._agents)
            values = [self._agent_values(t, a) for a in agents]
            bill, base = self.money.totals(t)
        frame = pd.DataFrame(static_columns(self._static.reindex(agents)), index=agents)
        frame = frame.join(
            pd.DataFrame(values, index=agents, columns=list(HOUSEHOLD_VALUES), dtype=float)
        )
        # the metered balance, as a run's table (a device a settlement omits drew nothing)
        devices = {
            d: frame[d].fillna(0.0) if d in frame else 0.0
            for d in device_energy_columns(AGENTS_FILE)
        }
        frame["net_kwh"] = metered_net_kwh(frame.assign(**devices))
        frame["bill"] = bill
        frame["baseline_bill"] = np.nan if base is None else base
        frame["savings"] = frame["baseline_bill"] - frame["bill"]
        return frame.rename_axis("agent_id").reset_index()

    def household(self, agent_id: str) -> dict[str, Any] | None:
        with self._lock:
            if agent_id not in self._agents:
                return None
            ts = sorted(set(self._positions) | set(self._readings))
            series = [{"t": t, **self._agent_values(t, agent_id)} for t in ts]
        known = agent_id in self._static.index
        static = records(self._static.loc[[agent_id]].reset_index())[0] if known else {}
        return {"agent_id": agent_id, "static": {"agent_id": agent_id, **static}, "series": series}

    def trades(self, t_from: int, t_to: int, agent_id: str | None) -> pd.DataFrame:
        with self._lock:
            rows = [
                tr
                for tr in self._trades
                if t_from <= tr["t"] <= t_to
                and (agent_id is None or agent_id in (tr["buyer_id"], tr["seller_id"]))
            ]
        return pd.DataFrame(rows, columns=_TRADE_COLUMNS).sort_values("t", kind="stable")

    def book(self, t: int) -> dict[str, Any] | None:
        with self._lock:
            res = self._results.get(t)
            if res is None:
                return None
            row = self._rows[t]
            book = res.get("book")
            if isinstance(book, dict):
                curves = book_curves(
                    *decode_curve(book.get("buy")), *decode_curve(book.get("sell"))
                )
                source = "order book (market/result)"
            else:
                trades = pd.DataFrame(
                    [tr for tr in self._trades if tr["t"] == t],
                    columns=["energy_kwh", "price_per_kwh", "seller_price_per_kwh"],
                )
                pos = self._positions.get(t, {}).values()
                curves = revealed_book(
                    trades,
                    np.array([p.get("grid_import_kwh", 0.0) for p in pos]),
                    np.array([p.get("grid_export_kwh", 0.0) for p in pos]),
                    self.market.get("retail_price_per_kwh"),
                    self.market.get("feed_in_price_per_kwh"),
                )
                source = "revealed from fills (market/result carries no book)"
        return {
            "t": t,
            "timestamp": row["timestamp"],
            "source": source,
            "price_per_kwh": row["clearing_price_per_kwh"],
            "volume_kwh": row["p2p_kwh"],
            **curves,
        }

    def feeder(self, t: int) -> dict[str, Any] | None:
        with self._lock:
            res = self._results.get(t)
            row = self._rows.get(t, {})
        elements = live_feeder(res.get("grid")) if res is not None else None
        if elements is None:
            return None
        return feeder_payload(
            t,
            self._stamps.get(t),
            (self.market.get("v_min_pu"), self.market.get("v_max_pu")),
            row.get("curtailed_kwh"),
            *elements,
        )
