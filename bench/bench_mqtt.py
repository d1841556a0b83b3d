"""Benchmark of the live market over a real Mosquitto (issue 5, "Speed").

Run with ``python bench/bench_mqtt.py [--quick]``. It starts its own Mosquitto on a
free port (the Debian ``mosquitto`` binary, configured as in ``tests/live/conftest.py``)
and measures:

1. **Ingest.** The readings and orders of a community of ``--households`` simulated
   households (the payloads :class:`live.fleet.AgentFleet` sends, planned from the
   scenario), ``--rounds`` intervals of them, published at QoS 1 by ``--publishers``
   separate processes (raw paho clients, at most 1,000 messages in flight each):

   - *raw*: a bare paho QoS 1 subscriber on the same topics that only counts messages
     (publisher → Mosquitto → subscriber, the same messages, sizes and topics);
   - *market*: :class:`live.market.MarketService` subscribed to them, every message
     parsed, checked and booked, the gate closing as soon as every household is
     complete (``speed = 0``), then the interval cleared and settled.

   Each round is timed from the publishers' start to the last message received (raw)
   or to the market's gate closing with every household's reading and orders in the
   book (market). Zero loss: every order published is in the book that is cleared,
   and nothing is rejected. Target: the market ingests at least 80 % of the raw rate.

2. **Sustained clock.** ``--agents`` households (default 5,000) as ``p2pgrid agents``
   in a separate process, the market at one 15-min interval per wall second
   (``--speed 900``; ``--speed 0``: each gate closes when every agent is in, which
   measures the throughput) for ``--intervals`` intervals (default 96, a day), grid check off
   (``--grid`` to run the feeder check too). PASS when the market never falls behind its clock
   (``MarketStats.behind == 0``) and every interval's book is complete (every agent's
   reading and orders in before the gate closes at 80 % of the interval). The agents
   are one gateway client (as ``p2pgrid agents`` runs them): per interval it receives
   every settlement of the last interval and publishes two messages per household.

Numbers are what this machine does; the CPU count is printed, since Mosquitto, the
publishers and the market share it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt
import paho.mqtt.client as mqtt

from live.broker import free_port
from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario

TARGET_RATIO = 0.80
INFLIGHT = 1_000
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


# --- Mosquitto ----------------------------------------------------------------------
def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        sys.exit("Mosquitto is not installed (apt-get install -y mosquitto)")
    return found


def start_mosquitto(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
        + ("user root\n" if os.geteuid() == 0 else ""),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    sys.exit("mosquitto did not listen in 10 s")


# --- scenarios and messages ------------------------------------------------------------
def scenario_toml(households: int, grid: bool, community: str, days: int = 1) -> str:
    return f"""
name = "{community}"
[simulation]
start = "2026-06-01"
days = {days}
interval_minutes = 15
seed = 11
[community]
households = {households}
[grid]
check = "{"pyomo" if grid else "off"}"
[live]
close_when_complete = true
"""


def load(
    households: int,
    grid: bool,
    community: str,
    work: Path,
    early_close: bool = True,
    days: int = 1,
) -> tuple[Scenario, Path]:
    path = work / f"{community}.toml"
    text = scenario_toml(households, grid, community, days)
    if not early_close:
        text = text.replace("close_when_complete = true", "close_when_complete = false")
    path.write_text(text, encoding="utf-8")
    return load_scenario(path), path


def round_messages(scenario: Scenario, rounds: int) -> tuple[list[list[tuple[str, bytes]]], int]:
    """Each interval's (topic, payload) pairs as the fleet publishes them; orders sent."""
    fleet = AgentFleet(scenario, BrokerConfig("127.0.0.1", 1))  # never connected
    out, orders = [], 0
    for t in range(rounds):
        _, _, messages = fleet.messages(t)
        out.append(
            [(topic, json.dumps(p, separators=(",", ":")).encode()) for topic, p in messages]
        )
        orders += sum(len(p["orders"]) for _, p in messages if "orders" in p)
    return out, orders


# --- publishers (separate processes) -------------------------------------------------
class Publishers:
    def __init__(self, port: int, rounds: list[list[tuple[str, bytes]]], k: int) -> None:
        ctx = mp.get_context("fork")
        self.go = [ctx.Event() for _ in range(len(rounds))]
        self.done = ctx.Queue()
        self.procs = []
        for i in range(k):
            share = [batch[i::k] for batch in rounds]
            self.procs.append(
                ctx.Process(
                    target=_publisher_rounds, args=(port, share, self.go, self.done), daemon=True
                )
            )
        for p in self.procs:
            p.start()
        time.sleep(0.5)  # connected

    def fire(self, r: int) -> float:
        started = time.time()
        self.go[r].set()
        return started

    def join(self) -> None:
        for p in self.procs:
            p.join(60)


def _publisher_rounds(
    port: int, share: list[list[tuple[str, bytes]]], go: list[Any], done: Any
) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(INFLIGHT)
    c.max_queued_messages_set(0)
    acked = threading.Semaphore(0)
    c.on_publish = lambda *_a: acked.release()
    c.connect("127.0.0.1", port)
    c.loop_start()
    for r, batch in enumerate(share):
        go[r].wait()
        for topic, payload in batch:
            c.publish(topic, payload, qos=1)
        for _ in batch:
            acked.acquire()
        done.put(len(batch))
    c.disconnect()
    c.loop_stop()


# --- 1. ingest --------------------------------------------------------------------------
def raw_rate(port: int, root: str, rounds: list[list[tuple[str, bytes]]], k: int) -> float:
    """Messages per second, publisher start → last message at a bare QoS 1 subscriber."""
    got = [0]
    lock = threading.Lock()
    round_done = threading.Event()
    expected = [0]
    last = [0.0]

    def on_message(_c: Any, _u: Any, _m: mqtt.MQTTMessage) -> None:
        with lock:
            got[0] += 1
            if got[0] == expected[0]:
                last[0] = time.time()
                round_done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe(f"{root}/agents/+/+", qos=1)
    subscribed.wait(10)
    pubs = Publishers(port, rounds, k)
    total, elapsed = 0, 0.0
    for r, batch in enumerate(rounds):
        with lock:
            expected[0] = got[0] + len(batch)
            round_done.clear()
        started = pubs.fire(r)
        if not round_done.wait(120):
            raise RuntimeError(f"raw: round {r} lost messages ({got[0]} of {expected[0]})")
        total += len(batch)
        elapsed += last[0] - started
    pubs.join()
    sub.disconnect()
    sub.loop_stop()
    return total / elapsed


def market_rate(
    port: int, scenario: Scenario, rounds: list[list[tuple[str, bytes]]], k: int, state: Path
) -> tuple[float, dict[str, Any]]:
    """Messages per second, publisher start → the market's gate closing on a full book."""
    market = MarketService(
        scenario, BrokerConfig("127.0.0.1", port), state, speed=0.0, intervals=len(rounds)
    )
    runner = threading.Thread(target=market.run, name="market", daemon=True)
    runner.start()
    pubs = Publishers(port, rounds, k)
    total, elapsed = 0, 0.0
    for r, batch in enumerate(rounds):
        deadline = time.monotonic() + 60
        while not market.collecting(r):
            if time.monotonic() > deadline or not runner.is_alive():
                raise RuntimeError(f"market never opened interval {r}")
            time.sleep(0.001)
        started = pubs.fire(r)
        while len(market.stats.ingest) <= r:  # the window is the market's own record
            if time.monotonic() > deadline + 120 or not runner.is_alive():
                raise RuntimeError(f"market never closed interval {r}")
            time.sleep(0.02)
        total += len(batch)
        elapsed += market.stats.ingest[r].closed_at - started
    runner.join(120)
    pubs.join()
    s = market.stats
    return total / elapsed, {
        "readings": s.readings,
        "orders": s.orders,
        "order_messages": s.order_messages,
        "rejected": sum(s.rejected.values()),
        "clear_s": s.clear_s,
    }


# --- 2. sustained clock ------------------------------------------------------------------
def sustained(
    port: int, scenario: Scenario, path: Path, intervals: int, speed: float, state: Path
) -> dict[str, Any]:
    broker = f"mqtt://127.0.0.1:{port}"
    agents = subprocess.Popen(
        [*CLI, "agents", str(path), "--broker", broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_online(port, topics_for(scenario).root, "fleet", agents)
        market = MarketService(
            scenario, BrokerConfig("127.0.0.1", port), state, speed=speed, intervals=intervals
        )
        began = time.perf_counter()
        stats = market.run()
        wall = time.perf_counter() - began
        missing = sum(r["counts"]["missing_agents"] for r in market.results)
        incomplete = [
            r["t"]
            for r in market.results
            if r["counts"]["readings"] < scenario.community.households
            or r["counts"]["missing_agents"]
        ]
    finally:
        try:
            agents.wait(60)
        except subprocess.TimeoutExpired:
            agents.kill()
            agents.wait()
    return {
        "intervals": stats.intervals,
        "wall_s": wall,
        "behind": stats.behind,
        "max_lag_s": stats.max_lag_s,
        "clear_s": stats.clear_s,
        "collect_s": [w.closed_at - w.opened_at for w in stats.ingest],
        "missing_agents": missing,
        "incomplete_intervals": incomplete,
        "orders": stats.orders,
        "rejected": sum(stats.rejected.values()),
    }


def wait_online(port: int, root: str, role: str, proc: subprocess.Popen) -> None:
    """Block until a ``p2pgrid-<role>-…`` client has published its retained ``online``."""
    online = threading.Event()

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        if f"/p2pgrid-{role}-" in m.topic and b'"online"' in m.payload:
            online.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{os.getpid()}")
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe(f"{root}/status/+", qos=1)
    c.loop_start()
    try:
        deadline = time.monotonic() + 120
        while not online.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"the agents process did not come online: {out}")
    finally:
        c.disconnect()
        c.loop_stop()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=5_000, help="ingest community size")
    ap.add_argument("--rounds", type=int, default=6, help="ingest intervals")
    ap.add_argument("--trials", type=int, default=3, help="interleaved ingest trials")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--agents", type=int, default=5_000, help="sustained community size")
    ap.add_argument("--intervals", type=int, default=96, help="sustained intervals (96: a day)")
    ap.add_argument("--speed", type=float, default=900.0, help="simulated s per wall s")
    ap.add_argument("--grid", action="store_true", help="sustained run with the feeder check")
    ap.add_argument("--only", choices=("ingest", "clock"), help="run one of the two parts")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.households, args.rounds, args.agents, args.intervals = 500, 3, 500, 5
        args.trials = 1

    print(
        f"bench_mqtt · python {platform.python_version()} · paho-mqtt {paho.mqtt.__version__} · "
        f"{os.cpu_count()} CPUs · {platform.machine()}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        work = Path(tmp)
        proc, port = start_mosquitto(work)
        try:
            ver = subprocess.run(
                [mosquitto_binary(), "-h"], capture_output=True, text=True
            ).stdout.splitlines()
            print(f"mosquitto on 127.0.0.1:{port} ({ver[0] if ver else '?'})")

            if args.only != "clock":
                ok &= ingest(args, port, work)
            if args.only != "ingest":
                ok &= clock(args, port, work)
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stderr is not None:
                proc.stderr.close()
    return 0 if ok else 1


def ingest(args: argparse.Namespace, port: int, work: Path) -> bool:
    """Part 1: raw and market rates, interleaved trials (the machine may be shared)."""
    scenario, _ = load(args.households, False, "bench-ingest", work)
    rounds, orders = round_messages(scenario, args.rounds)
    n_msg = sum(len(b) for b in rounds)
    sizes = [len(p) for b in rounds for _, p in b]
    print(
        f"\n1. ingest: {args.households} households × {args.rounds} intervals = "
        f"{n_msg} messages ({orders} orders), payload {min(sizes)}–{max(sizes)} B "
        f"(mean {np.mean(sizes):.0f}), QoS 1, {args.publishers} publisher processes, "
        f"{args.trials} interleaved trials"
    )
    root = topics_for(scenario).root
    raws, lives, clear_s = [], [], []
    loss = False
    for trial in range(args.trials):
        # a fresh community per trial: no persistent session carries messages over
        sc, _ = load(args.households, False, f"bench-ingest-{trial}", work)
        mine = topics_for(sc).root
        batches = [[(t.replace(root, mine, 1), p) for t, p in b] for b in rounds]
        raw = raw_rate(port, mine, batches, args.publishers)
        live, info = market_rate(port, sc, batches, args.publishers, work / f"ingest-{trial}")
        raws.append(raw)
        lives.append(live)
        clear_s += info["clear_s"]
        lost = info["readings"] != n_msg // 2 or info["orders"] != orders or info["rejected"]
        loss |= bool(lost)
        print(
            f"   trial {trial + 1}: raw {raw:8,.0f} msg/s · market {live:8,.0f} msg/s "
            f"({live / raw:.0%}) · booked {info['readings']} readings, {info['orders']} of "
            f"{orders} orders, {info['rejected']} rejected"
        )
    raw, live = float(np.median(raws)), float(np.median(lives))
    ratio = live / raw
    print(f"   raw paho QoS 1 end to end  : {raw:10,.0f} msg/s (median)")
    print(
        f"   market ingest into clearing: {live:10,.0f} msg/s (median; "
        f"{live * orders / n_msg:,.0f} orders/s) · {'zero loss' if not loss else 'LOSS'}"
    )
    print(
        f"   clearing + ledger + publishing {args.households} settlements per interval: "
        f"median {pct(clear_s, 50) * 1e3:.0f} ms"
    )
    verdict = ratio >= TARGET_RATIO and not loss
    print(
        f"   ratio {ratio:.1%} of raw (target ≥ {TARGET_RATIO:.0%}, zero loss): "
        f"{'PASS' if verdict else 'MISS'}"
    )
    return verdict


def clock(args: argparse.Namespace, port: int, work: Path) -> bool:
    # 2. sustained
    days = -(-args.intervals // (24 * 4))  # 15-min intervals: enough days for all of them
    # --speed 0: each gate closes as soon as every agent is in (the throughput)
    scenario, path = load(args.agents, args.grid, "bench-clock", work, args.speed == 0, days)
    wall = scenario.simulation.interval_minutes * 60 / args.speed if args.speed else 0.0
    print(
        f"\n2. sustained: {args.agents} agents (`p2pgrid agents`, one process), "
        f"{args.intervals} intervals at {wall:g} s each (--speed {args.speed:g}), "
        f"grid check {'on' if args.grid else 'off'}"
    )
    r = sustained(port, scenario, path, args.intervals, args.speed, work / "clock")
    print(
        f"   {r['intervals']} intervals in {r['wall_s']:.1f} s wall · "
        f"behind the clock {r['behind']}× · max lag {r['max_lag_s'] * 1e3:.0f} ms"
    )
    print(
        f"   collection (clock → gate) median {pct(r['collect_s'], 50) * 1e3:.0f} ms, "
        f"max {max(r['collect_s'], default=0) * 1e3:.0f} ms · clearing+settling "
        f"median {pct(r['clear_s'], 50) * 1e3:.0f} ms, "
        f"max {max(r['clear_s'], default=0) * 1e3:.0f} ms"
    )
    print(
        f"   {r['orders']} orders booked · {r['missing_agents']} agent-intervals "
        f"missing · {len(r['incomplete_intervals'])} incomplete intervals "
        f"{r['incomplete_intervals'] if r['incomplete_intervals'] else ''}· "
        f"{r['rejected']} rejected"
    )
    missed = len(r["incomplete_intervals"]) + (args.intervals - r["intervals"])
    complete = r["intervals"] - len(r["incomplete_intervals"])
    print(
        f"   agent-intervals per second: {args.agents * complete / r['wall_s']:,.0f} "
        f"({args.agents} agents × {complete} complete intervals / {r['wall_s']:.1f} s; "
        + (
            f"; the clock asks {args.agents * args.speed / (15 * 60):,.0f}"
            if args.speed
            else "; --speed 0: as fast as every book is complete"
        )
        + ") · intervals missed "
        f"(incomplete or not run): {missed} of {args.intervals}"
    )
    verdict = r["behind"] == 0 and missed == 0
    print(f"   keeps up with the clock: {'PASS' if verdict else 'MISS'}")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
