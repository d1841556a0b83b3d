"""``p2pgrid live FILE --decentralised``: the decentralised p2p market's two central
roles and the run that puts them together with the peers (:mod:`live.p2p_peers`).

- **The clock** publishes the retained ``clock`` of every interval (:mod:`live.clock`,
  the run id a new one per run) at the pace of ``--speed``, its ``gate_closes_at`` the
  next clock's wall time, and ``done`` after the last interval's gate. It sees nothing
  of the negotiation.
- **The recorder** (optional) reads only ``peers/+/trades``: each household's agreed
  trades of an interval, one record per pair of households with both households'
  signatures (:mod:`live.p2p_codec`). It keeps a record when both signatures verify
  under the scenario's ``[live] keys`` (without a registry: when both households sent
  the same record) and writes them to ``trades.parquet`` through the results writer
  (:class:`scenarios.results.files.TradesWriter`; no grid fee), the energy's
  ``buy_kind``/``sell_kind`` the orders' kinds. Nothing else of a run's results is
  written: the households' flows stay with them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from live.bus import BrokerConfig, Bus
from live.clock import clock_payload, done_payload
from live.p2p_codec import record_bytes
from live.p2p_peers import TRADES, PeerFleet, PeerStats
from live.p2p_topics import peers_topic
from live.protocol import topics_for
from scenarios.audit.keys import Registry, SignatureError
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids
from scenarios.engine.inputs import timeline


@dataclass
class RecorderStats:
    records: int = 0
    trades: int = 0
    unverified: int = 0


class Recorder:
    """The signed bilateral trades of a run (module docstring)."""

    def __init__(self, scenario: Scenario, bus: Bus, run: str) -> None:
        self.ids = household_ids(scenario.community.households)
        self.row = {a: i for i, a in enumerate(self.ids)}
        self.registry = Registry.load(Path(scenario.live.keys)) if scenario.live.keys else None
        self.run = run
        self.stats = RecorderStats()
        self._seen: dict[tuple[int, str, str], dict[str, Any]] = {}
        self._copies: dict[tuple[int, str, str], set[str]] = {}
        self._lock = threading.Lock()
        bus.subscribe(peers_topic(topics_for(scenario), "+", TRADES), self._on_records)

    def _verified(self, record: dict[str, Any]) -> bool:
        if self.registry is None:
            return True
        sigs = record.get("sigs") or {}
        data = record_bytes(record)
        try:
            for who in (record["a"], record["b"]):
                value = (sigs.get(who) or {}).get("value")
                self.registry.verify_bytes(who, data, value)
        except (SignatureError, AttributeError, KeyError):
            return False
        return True

    def _on_records(self, topic: str, payload: bytes) -> None:
        sender = topic.rsplit("/", 2)[-2]
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict) or data.get("run") != self.run:
            return
        for rec in data.get("records") or []:
            if not isinstance(rec, dict) or sender not in (rec.get("a"), rec.get("b")):
                continue  # only a party to a trade reports it
            key = (int(rec.get("t", -1)), str(rec.get("a")), str(rec.get("b")))
            with self._lock:
                if key in self._seen:
                    if self._seen[key] == rec:
                        self._copies[key].add(sender)
                    continue
                if not self._verified(rec):
                    self.stats.unverified += 1
                    continue
                self._seen[key] = rec
                self._copies[key] = {sender}

    def records(self) -> list[dict[str, Any]]:
        """The kept records: verified, or (no registry) reported alike by both sides."""
        with self._lock:
            keys = sorted(self._seen)
            if self.registry is None:
                keys = [k for k in keys if len(self._copies[k]) == 2]
            return [self._seen[k] for k in keys]

    def write(self, out_dir: Path) -> Path:
        """``out_dir/trades.parquet`` of the kept records."""
        from scenarios.results.files import TradesWriter

        rows = []
        for rec in self.records():
            for buyer, _, bk, _, sk, kwh, price in rec["trades"]:
                seller = rec["b"] if buyer == rec["a"] else rec["a"]
                rows.append((rec["t"], self.row[buyer], self.row[seller], kwh, price, bk, sk))
        self.stats.records = len(self.records())
        self.stats.trades = len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        t, b, s, kwh, price, bk, sk = (np.asarray(c) for c in cols)
        writer = TradesWriter(out_dir, np.asarray(self.ids))
        if rows:
            none = np.zeros(len(rows))  # no grid fee, no network charge live (no DSO)
            px = price.astype(float)
            writer.write_trades(t, b, s, kwh.astype(float), px, px, none, bk, sk, none)
        writer.close()
        return out_dir / "trades.parquet"


def run_clock(
    bus: Bus, scenario: Scenario, run: str, speed: float, end: int, stop: threading.Event
) -> None:
    """Publish the clocks of intervals ``0 … end − 1`` and ``done`` (module docstring)."""
    topics = topics_for(scenario)
    minutes = scenario.simulation.interval_minutes
    wall = minutes * 60.0 / speed
    stamps = timeline(scenario)
    due = time.time()
    for t in range(end):
        gate = datetime.fromtimestamp(due + wall, UTC).isoformat()
        payload = clock_payload(run, t, stamps[t].isoformat(), minutes, gate)
        bus.publish(topics.clock, payload, qos=1, retain=True)
        due += wall
        if stop.wait(max(due - time.time(), 0.0)):
            return
    bus.publish(topics.clock, done_payload(run, end), qos=1, retain=True)


@dataclass
class DecentralisedRun:
    run: str
    peers: PeerStats | None
    recorder: RecorderStats | None
    trades_file: Path | None
    records: list[dict[str, Any]]
    """The recorder's kept pair records (both signatures each)."""


def run_decentralised(
    scenario: Scenario,
    broker: BrokerConfig,
    out_dir: Path,
    speed: float = 90.0,
    intervals: int | None = None,
    peers: bool = True,
    keys: Path | None = None,
    log: Callable[[str], None] | None = None,
    on_interval: Callable[[PeerFleet, int], None] | None = None,
    peers_broker: BrokerConfig | None = None,
) -> DecentralisedRun:
    """The clock, the recorder and (``peers``) this scenario's households as peers, until
    ``intervals`` are done; ``trades.parquet`` in ``out_dir``. ``on_interval(fleet, t)``
    is called while interval ``t``'s gate is open (tests kill households there); the
    peers connect with ``peers_broker`` (the ``fleet`` account under ``p2pgrid acl``),
    the clock and recorder with ``broker``."""
    if speed <= 0:
        raise ValueError("--decentralised needs --speed > 0: the clock paces the gates")
    log = log or (lambda _m: None)
    sim = scenario.simulation
    end = min(intervals if intervals is not None else sim.n_intervals, sim.n_intervals)
    run = uuid.uuid4().hex[:12]
    topics = topics_for(scenario)
    bus = Bus(broker, "p2p-clock", topics.root)
    recorder = Recorder(scenario, bus, run)
    bus.start(30.0)
    fleet = (
        PeerFleet(scenario, peers_broker or broker, run=run, keys=keys).start() if peers else None
    )
    log(f"decentralised p2p {topics.root}/peers/ · run {run} · speed {speed:g}")
    stop = threading.Event()
    try:
        if on_interval is None or fleet is None:
            run_clock(bus, scenario, run, speed, end, stop)
        else:
            ticker = threading.Thread(target=run_clock, args=(bus, scenario, run, speed, end, stop))
            ticker.start()
            wall = sim.interval_minutes * 60.0 / speed
            for t in range(end):
                time.sleep(wall * 0.3 if t == 0 else wall)
                on_interval(fleet, t)
            ticker.join()
        if fleet is not None:
            fleet.done.wait(30.0)
        time.sleep(1.0)  # the last interval's records
        bus.drain(10.0)
    finally:
        stop.set()
        if fleet is not None:
            fleet.stop()
        bus.stop("done")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = recorder.write(out_dir)
    stats = fleet.stats if fleet else None
    return DecentralisedRun(run, stats, recorder.stats, path, recorder.records())
