"""The dashboard's live source: a market's MQTT topics (DESIGN.md "MQTT contract").

Subscribes under ``p2pgrid/<community>/`` to ``clock``, ``market/result``,
``agents/+/settlement``, ``agents/+/reading`` and ``errors`` with paho-mqtt 2.x
(``CallbackAPIVersion.VERSION2``), reconnecting with backoff while the broker is down;
the page shows the broker's state and recovers when it comes back.

Each ``market/result`` is pushed to browsers as it arrives. Settlements and readings of
an interval revise that interval's row (import, export, generation, demand, stored
energy) in one coalesced push a moment later.

Payload fields are mapped onto the dashboard's names by one table per topic
(:data:`SETTLEMENT_MAP`, :data:`READING_MAP`), as pvlib's ``iotools`` do. Optional
fields are used when present: ``market/result`` may carry ``book`` (``{"buy": [...],
"sell": [...]}``, each price level or order ``{energy_kwh, price_per_kwh}`` or ``[kwh,
price]``) and ``grid.buses`` / ``grid.lines`` (rows as in buses.parquet /
lines.parquet); without a book the curves are revealed from the fills as for a finished
run. The trades (with household ids) come from ``market/book``, which only the operator
account may read: without it the trades table stays empty.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.enums import CallbackAPIVersion

from live.dashboard.live_kpis import HouseholdMoney, live_kpis, tariffs_of
from live.dashboard.rundata import book_curves, records, revealed_book
from live.dashboard.sources import Source

# dashboard name → the payload keys that may carry it, first match wins
SETTLEMENT_MAP: dict[str, tuple[str, ...]] = {
    "bought_p2p_kwh": ("bought_p2p_kwh", "bought_kwh", "p2p_bought_kwh"),
    "sold_p2p_kwh": ("sold_p2p_kwh", "sold_kwh", "p2p_sold_kwh"),
    "grid_import_kwh": ("grid_import_kwh", "import_kwh"),
    "grid_export_kwh": ("grid_export_kwh", "export_kwh"),
    "cost": ("cost", "bill", "total_cost", "amount"),
    "generation_kwh": ("generation_kwh",),
    "demand_kwh": ("demand_kwh",),
    "battery_kwh": ("battery_kwh",),
    "ev_kwh": ("ev_kwh",),
    "soc_kwh": ("soc_kwh", "battery_soc_kwh"),
    "ev_soc_kwh": ("ev_soc_kwh",),
    "net_kwh": ("net_kwh",),
    "fees": ("fees", "grid_fees"),
}
READING_MAP: dict[str, tuple[str, ...]] = {
    "generation_kwh": ("generation_kwh",),
    "demand_kwh": ("demand_kwh",),
    "soc_kwh": ("soc_kwh",),
    "ev_soc_kwh": ("ev_soc_kwh",),
}
# nested objects of a settlement whose numbers count as top-level fields
_NESTED = ("bill", "position", "settlement", "energy")
# interval-row column ← household column summed over the community
_SUMMED = {
    "grid_import_kwh": "grid_import_kwh",
    "grid_export_kwh": "grid_export_kwh",
    "generation_kwh": "generation_kwh",
    "demand_kwh": "demand_kwh",
    "battery_kwh": "battery_kwh",
    "ev_kwh": "ev_kwh",
    "battery_soc_kwh": "soc_kwh",
    "ev_soc_kwh": "ev_soc_kwh",
    "cost": "cost",
    "grid_fees": "fees",
}
REVISION_DELAY_S = 0.25
# household-table column ← households.parquet column (the sampled devices)
_DEVICES = (
    ("pv_kwp", "pv_kwp"),
    ("battery_kwh", "battery_kwh_capacity"),
    ("ev_kwh", "ev_kwh_capacity"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def map_payload(payload: dict[str, Any], table: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """The numbers of ``payload`` under the dashboard's names (unknown keys ignored)."""
    flat = dict(payload)
    for key in _NESTED:
        if isinstance(payload.get(key), dict):
            flat = {**payload[key], **flat}
    out: dict[str, float] = {}
    for name, keys in table.items():
        for key in keys:
            number = _number(flat.get(key))
            if number is not None:
                out[name] = number
                break
    return out


def _orders(side: Any) -> tuple[np.ndarray, np.ndarray]:
    kwh, price = [], []
    for order in side if isinstance(side, list) else []:
        if isinstance(order, dict):
            e, p = _number(order.get("energy_kwh")), _number(order.get("price_per_kwh"))
        elif isinstance(order, list | tuple) and len(order) == 2:
            e, p = _number(order[0]), _number(order[1])
        else:
            continue
        if e is not None and p is not None and e > 0:
            kwh.append(e)
            price.append(p)
    return np.asarray(kwh, float), np.asarray(price, float)


def _depths(buses: list[str], lines: list[dict[str, Any]]) -> dict[str, int]:
    parent = {str(l_.get("to_bus")): str(l_.get("from_bus")) for l_ in lines}
    depth = {}
    for bus in buses:
        hops, cur = 0, bus
        while cur in parent and hops <= len(buses):
            cur, hops = parent[cur], hops + 1
        depth[bus] = hops
    return depth


def parse_broker(url: str) -> dict[str, Any]:
    """``mqtt://[user:pass@]host[:port]`` (or ``mqtts://``) → connection settings."""
    if "://" not in url:
        url = "mqtt://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r}: no host")
    return {
        "host": parts.hostname,
        "port": port,
        "tls": tls,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


class MqttSource(Source):
    """A live market seen through its MQTT topics.

    Parameters
    ----------
    broker
        ``mqtt://[user:pass@]host:port`` (``mqtts://`` for TLS).
    community
        The community name in the topic root ``p2pgrid/<community>/``.
    market
        Optional tariffs and limits to draw (``currency``, ``retail_price_per_kwh``,
        ``feed_in_price_per_kwh``, ``v_min_pu``, ``v_max_pu``, ``mechanism``); the live
        command passes its scenario's.
    households
        Optional static table of the households (``households.parquet``'s columns, from
        :func:`scenarios.results.households_table.scenario_households`): their bus and devices in
        the household table, every household listed before it first reports.
    """

    kind = "live"

    def __init__(
        self,
        broker: str = "mqtt://127.0.0.1:1883",
        community: str = "demo",
        market: dict[str, Any] | None = None,
        interval_minutes: int = 15,
        households: pd.DataFrame | None = None,
    ) -> None:
        super().__init__()
        self.broker = broker
        self.settings = parse_broker(broker)
        self.community = community
        self.root = f"p2pgrid/{community}/"
        self.market = dict(market or {})
        self.interval_minutes = interval_minutes
        self._lock = threading.RLock()
        self._clock: dict[str, Any] = {}
        self._stamps: dict[int, str] = {}
        self._results: dict[int, dict[str, Any]] = {}
        self._trades: list[dict[str, Any]] = []
        self._positions: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
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
        self._state = "connecting"
        self._reason = ""
        self._pending: set[int] = set()
        self._timer: threading.Timer | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"p2pgrid-dashboard-{uuid.uuid4().hex[:10]}",
            clean_session=True,
        )
        if self.settings["username"]:
            self.client.username_pw_set(self.settings["username"], self.settings["password"])
        if self.settings["tls"]:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=4)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message

    # ------------------------------------------------------------------ connection
    def start(self) -> None:
        self.client.connect_async(self.settings["host"], self.settings["port"], keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self.client.disconnect()
        self.client.loop_stop()

    def _set_state(self, state: str, reason: str = "") -> None:
        with self._lock:
            changed = (state, reason) != (self._state, self._reason)
            self._state, self._reason = state, reason
        if changed:
            self.log.append("status", self.latest_t())

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            self._set_state("disconnected", f"refused: {reason_code}")
            return
        client.subscribe(
            [
                (self.root + topic, 1)
                for topic in (
                    "clock",
                    "market/result",
                    "market/book",  # granted to the operator account only (p2pgrid acl)
                    "agents/+/settlement",
                    "agents/+/reading",
                    "errors",
                )
            ]
        )
        self._set_state("connected")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        self._set_state("disconnected", str(reason_code))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._set_state("disconnected", "connection refused or unreachable")

    # ------------------------------------------------------------------ messages
    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic[len(self.root) :]
        try:
            payload = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(payload, dict):
            return
        try:
            if topic == "market/result":
                self._on_result(payload)
            elif topic == "market/book":
                self._on_book(payload)
            elif topic == "clock":
                self._on_clock(payload)
            elif topic == "errors":
                with self._lock:
                    self._errors += 1
                    self._last_error = str(payload.get("reason", ""))[:200]
            elif topic.startswith("agents/"):
                parts = topic.split("/")
                if len(parts) == 3 and parts[2] in ("settlement", "reading"):
                    self._on_agent(parts[1], parts[2], payload)
        except (TypeError, ValueError, KeyError, OverflowError):
            # a malformed payload must not stop the dashboard; the market reports its own
            return

    @staticmethod
    def _t(payload: dict[str, Any]) -> int | None:
        t = payload.get("t")
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= 10_000_000:
            return None
        return t

    def _on_clock(self, payload: dict[str, Any]) -> None:
        t = self._t(payload)
        with self._lock:
            self._clock = payload
            minutes = _number(payload.get("interval_minutes"))
            if minutes:
                self.interval_minutes = int(minutes)
            if t is not None and isinstance(payload.get("interval_start"), str):
                self._stamps[t] = payload["interval_start"]

    def _on_result(self, payload: dict[str, Any]) -> None:
        t = self._t(payload)
        if t is None:
            return
        with self._lock:
            self._results[t] = payload
            self._rebuild_row(t)
        self.log.append("interval", t)

    def _on_book(self, payload: dict[str, Any]) -> None:
        """The operator's ``market/book``: the interval's trades with household ids."""
        t = self._t(payload)
        if t is None:
            return
        trades = []
        for tr in payload.get("trades") or []:
            if not isinstance(tr, dict):
                continue
            energy = _number(tr.get("energy_kwh"))
            price = _number(tr.get("price_per_kwh"))
            if energy is None or price is None:
                continue
            seller_price = _number(tr.get("seller_price_per_kwh"))
            trades.append(
                {
                    "t": t,
                    "buyer_id": str(tr.get("buyer_id", tr.get("buyer", ""))),
                    "seller_id": str(tr.get("seller_id", tr.get("seller", ""))),
                    "energy_kwh": energy,
                    "price_per_kwh": price,
                    "seller_price_per_kwh": price if seller_price is None else seller_price,
                }
            )
        with self._lock:
            self._trades = [tr for tr in self._trades if tr["t"] != t] + trades
            for tr in trades:
                self.money.row(tr["buyer_id"])
                self.money.row(tr["seller_id"])

    def _on_agent(self, agent_id: str, kind: str, payload: dict[str, Any]) -> None:
        t = self._t(payload)
        if t is None:
            return
        values = map_payload(payload, SETTLEMENT_MAP if kind == "settlement" else READING_MAP)
        with self._lock:
            self.money.row(agent_id)
            store = self._positions if kind == "settlement" else self._readings
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
        res = self._results[t]
        grid = res.get("grid") if isinstance(res.get("grid"), dict) else {}
        row: dict[str, Any] = {
            "t": t,
            "timestamp": self._stamps.get(t),
            "clearing_price_per_kwh": _number(res.get("price_per_kwh")),
            "p2p_kwh": _number(res.get("volume_kwh")) or 0.0,
            "v_min_pu": _number(grid.get("v_min_pu")),
            "v_max_pu": _number(grid.get("v_max_pu")),
            "violations": _number(grid.get("violations")),
            "curtailed_kwh": _number(grid.get("curtailed_kwh")),
            "recleared": (
                float(grid["recleared"]) if isinstance(grid.get("recleared"), bool) else None
            ),
            "losses_kwh": _number(grid.get("losses_kwh")),
        }
        agents = set(self._positions.get(t, {})) | set(self._readings.get(t, {}))
        values = [self._agent_values(t, a) for a in agents]
        for col, src in _SUMMED.items():
            got = [v[src] for v in values if src in v]
            row[col] = float(sum(got)) if got else None
        row["households_reported"] = len(self._positions.get(t, {}))
        self._rows[t] = row
        self.money.record(t, self._positions.get(t, {}))

    # ------------------------------------------------------------------ the interface
    def meta(self) -> dict[str, Any]:
        return {
            "kind": "live",
            "name": self.community,
            "broker": f"{self.settings['host']}:{self.settings['port']}",
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
            "book_source": "market/result book, or revealed from fills",
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            state, reason, errors = self._state, self._reason, self._errors
            clock_t = self._t(self._clock) if self._clock else None
        where = f"{self.settings['host']}:{self.settings['port']}"
        if state == "connected":
            latest = self.latest_t()
            message = f"live: {self.community} on {where}" + (
                f", interval {latest}" if latest >= 0 else ", waiting for the market"
            )
        elif state == "connecting":
            message = f"connecting to the MQTT broker at {where}…"
        else:
            message = (
                f"MQTT broker at {where} unreachable ({reason}); retrying — the page "
                "resumes when it is back"
            )
        if errors:
            message += f" · {errors} message(s) rejected by the market"
        return {
            "state": state,
            "message": message,
            "latest_t": self.latest_t(),
            "clock_t": clock_t,
            "errors": errors,
            "last_error": self._last_error,
            "intervals": len(self._rows),
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
        static = self._static.reindex(agents)
        frame = pd.DataFrame(
            {
                "bus": static["bus"] if "bus" in static else None,
                **{
                    name: static[column].astype(float) if column in static else np.nan
                    for column, name in _DEVICES
                },
            },
            index=agents,
        )
        frame = frame.join(
            pd.DataFrame(values, index=agents, columns=list(SETTLEMENT_MAP), dtype=float)
        )
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
        cols = ["t", "buyer_id", "seller_id", "energy_kwh", "price_per_kwh", "seller_price_per_kwh"]
        return pd.DataFrame(rows, columns=cols).sort_values("t", kind="stable")

    def book(self, t: int) -> dict[str, Any] | None:
        with self._lock:
            res = self._results.get(t)
            if res is None:
                return None
            row = self._rows[t]
            book = res.get("book")
            if isinstance(book, dict):
                bk, bp = _orders(book.get("buy"))
                sk, sp = _orders(book.get("sell"))
                curves = book_curves(bk, bp, sk, sp)
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
            grid = res.get("grid") if res is not None else None
        if not isinstance(grid, dict) or not isinstance(grid.get("buses"), list):
            return None
        buses = [b for b in grid["buses"] if isinstance(b, dict) and "bus" in b]
        lines = [x for x in grid.get("lines") or [] if isinstance(x, dict)]
        depth = _depths([str(b["bus"]) for b in buses], lines)
        return {
            "t": t,
            "timestamp": self._stamps.get(t),
            "v_min_limit_pu": self.market.get("v_min_pu"),
            "v_max_limit_pu": self.market.get("v_max_pu"),
            "curtailed_kwh": _number(grid.get("curtailed_kwh")),
            "buses": [
                {
                    "bus": str(b["bus"]),
                    "depth": depth[str(b["bus"])],
                    "v_pu": _number(b.get("v_pu")),
                    "p_kw": _number(b.get("p_kw")),
                    "nodal_price_per_kwh": _number(b.get("nodal_price_per_kwh")),
                }
                for b in buses
            ],
            "lines": [
                {
                    "line": str(x.get("line", "")),
                    "from_bus": str(x.get("from_bus", "")),
                    "to_bus": str(x.get("to_bus", "")),
                    "loading_frac": _number(x.get("loading_frac")),
                    "p_kw": _number(x.get("p_kw")),
                }
                for x in lines
            ],
        }


def wait_connected(source: MqttSource, timeout: float = 10.0) -> bool:
    """Block until ``source`` is connected to its broker (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if source.status()["state"] == "connected":
            return True
        time.sleep(0.02)
    return False
