"""The verifier pool's part of ``bench_signatures.py`` (``--pool N``): the market with
``[live] verify_workers = N`` against the unsigned market and the in-process check, no
broker (the ingest fed the encoded messages as paho's thread would).

Per interval: every message through :meth:`live.ingest.Ingest.on_agent`, then the gate:
:meth:`live.ingest.Ingest.settle` (the pool's messages in flight), the book closed, the
clearing, settlement and ledger commit. Timed: the market process's CPU
(``time.process_time``, all its threads: the hand-off, the pool's thread that applies
the verdicts, the clearing; not the workers), the workers' CPU (``/proc``), and the gate
latency (gate close → the interval's result ready to publish). Repeated (``--reps``),
unsigned and signed alternately, each interval's messages handed in at once and paced
(``--pace``): the median over a run's intervals, then the median and range over the
repetitions, and the added CPU against the issue's +10 %.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from live.bus import BrokerConfig
from live.market import MarketService
from scenarios.config.loader import load_scenario

Rounds = list[list[tuple[str, bytes]]]


def proc_cpu(pids: list[int]) -> float:
    """The CPU seconds (user + system) processes ``pids`` have used so far (Linux
    ``/proc``; a process gone counts 0)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_market(scenario: Any, state: Path, rounds: Rounds, pace_s: float = 0.0) -> dict[str, Any]:
    """One market over ``rounds`` (``pace_s``: each interval's messages spread over that
    many seconds, else as fast as they can be handed in). Per interval: the market
    process's CPU, its wall, the gate latency, its collector time and the workers' CPU
    (``/proc``: all they do, their share of the hand-off included)."""
    market = MarketService(scenario, BrokerConfig(port=1), state, speed=0)
    ingest = market.ingest
    pool = ingest.verifier
    if pool is not None:
        pool.warm()
    cpu, wall, gate, gc_s, workers = [], [], [], [], []
    collecting = [0.0, 0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[1] = time.process_time()
        else:
            collecting[0] += time.process_time() - collecting[1]

    gc.callbacks.append(timed)
    for t, messages in enumerate(rounds):
        collecting[0] = 0.0
        ingest.open(t)
        pids = pool.pids() if pool is not None else []
        w0 = proc_cpu(pids)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        step = max(1, len(messages) // 200)
        for i, (topic, body) in enumerate(messages):
            if pace_s > 0 and i % step == 0:
                left = wall0 + pace_s * i / len(messages) - time.perf_counter()
                if left > 0:
                    time.sleep(left)
            ingest.on_agent(topic, body)
        closing = time.perf_counter()
        ingest.settle()
        with ingest.lock:
            ingest.book.closed = True
        market.ledger.append(market._clear(t)[0])
        end = time.perf_counter()
        cpu.append(time.process_time() - cpu0)
        workers.append(proc_cpu(pids) - w0)
        wall.append(end - wall0)
        gate.append(end - closing)
        gc_s.append(collecting[0])
    gc.callbacks.remove(timed)
    stats = pool.stats if pool is not None else None
    out = {
        "cpu": cpu,
        "wall": wall,
        "gate": gate,
        "gc": gc_s,
        "workers": workers,
        "rejected": dict(market.stats.rejected),
        "pool_cpu_s": stats.worker_cpu_s if stats else 0.0,
        "pool_messages": stats.messages if stats else 0,
        "restarts": stats.restarts if stats else 0,
    }
    market._close()
    return out


def flood_rounds(rounds: Rounds, copies: int) -> Rounds:
    """Each interval with a forged reading (its household's own signature over other
    numbers: a full Ed25519 check to reject) on every household's topic before its own
    messages, and ``copies`` valid copies of the first household's orders after all."""
    out = []
    for messages in rounds:
        forged = []
        for topic, body in messages:
            if topic.endswith("/reading"):
                data = orjson.loads(body)
                data["demand_kwh"] = data["demand_kwh"] + 1.0
                forged.append((topic, orjson.dumps(data)))
        orders = next(m for m in messages if m[0].endswith("/orders"))
        out.append(forged + messages + [orders] * copies)
    return out


def med(runs: list[dict[str, Any]], key: str) -> float:
    return float(np.median([x for r in runs for x in r[key]]))


def spread(values: list[float], scale: float = 1e3, unit: str = "ms", sign: str = "") -> str:
    """``median (min–max)`` of ``values`` × ``scale``."""
    v = np.asarray(values) * scale
    return f"{np.median(v):{sign}.0f} {unit} ({v.min():{sign}.0f} … {v.max():{sign}.0f})"


def compare(label: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], per: float) -> None:
    """Print repetitions of (unsigned, signed + pool) runs: market-process CPU per
    interval, the workers' and the total, the gate latency, and the ratio to +10 %."""
    plain = [float(np.median(p["cpu"])) for p, _ in pairs]
    pool = [float(np.median(s["cpu"])) for _, s in pairs]
    workers = [float(np.median(s["workers"])) for _, s in pairs]
    total = [c + w for c, w in zip(pool, workers, strict=True)]
    added = [s / p - 1 for p, s in zip(plain, pool, strict=True)]
    added_total = [s / p - 1 for p, s in zip(plain, total, strict=True)]
    gate_p = [float(np.median(p["gate"])) for p, _ in pairs]
    gate_s = [float(np.median(s["gate"])) for _, s in pairs]
    a = float(np.median(added))
    print(f"    {label} ({len(pairs)} repetitions; median over intervals, then median (min … max)")
    print(f"      over repetitions; {per:,.0f} messages per interval):")
    print(f"      market process CPU per interval: unsigned {spread(plain)}")
    print(f"                                 signed + pool {spread(pool)}")
    print(
        f"      added by signing + verifying: {spread(added, 100, '%', '+')} → "
        f"{a / 0.10:.2f} of the +10 % target ({'met' if a < 0.10 else 'NOT met'} at the median)"
    )
    print(
        f"      workers' CPU per interval {spread(workers)}; total CPU (market + workers) "
        f"{spread(total)}: {spread(added_total, 100, '%', '+')} over unsigned"
    )
    print(f"      gate latency (gate close → result ready): unsigned {spread(gate_p)}, ")
    print(f"                                         signed + pool {spread(gate_s)}")


def bench_pool(
    setup: tuple[Path, int, int, str, str],
    plain_rounds: Rounds,
    signed_rounds: Rounds,
    pace_s: float,
    copies: int,
    reps: int,
) -> None:
    """Print the market with the verifier pool against the unsigned market: ``reps``
    repetitions of (unsigned, signed + pool), each interval's messages handed in at once
    and paced over ``pace_s`` seconds; then the flood case."""
    work, n, workers, toml, signed_keys = setup
    # the bench's own data (keys, every interval's messages) out of the collector's
    # scans: a market process does not hold them (the markets' own objects are collected)
    gc.collect()
    gc.freeze()

    def scenario(name: str, keys: str) -> Any:
        path = work / f"{name}.toml"
        path.write_text(toml.format(n=n, keys=keys).replace("signatures-bench", name), "utf-8")
        return load_scenario(path)

    plain = scenario("pool-plain", "")
    inproc = scenario("pool-inproc", signed_keys.format(w=0))
    pooled = scenario("pool-on", signed_keys.format(w=workers))
    k = len(signed_rounds)
    per = sum(len(r) for r in signed_rounds) / k
    print(f"  verifier pool ([live] verify_workers = {workers}, forkserver), in the market:")
    bad, messages, restarts = 0, 0, 0
    for label, pace in (("handed in at once", 0.0), (f"paced over {pace_s:g} s", pace_s)):
        pairs = []
        for rep in range(reps):  # alternated, so that the machine's load drifts on both
            state = work / f"pool-{label[:4]}-{rep}"
            pair = (
                run_market(plain, state / "plain", plain_rounds, pace),
                run_market(pooled, state / "pool", signed_rounds, pace),
            )
            pairs.append(pair)
            bad += sum(sum(r["rejected"].values()) for r in pair)
            messages += pair[1]["pool_messages"]
            restarts += pair[1]["restarts"]
        compare(label, pairs, per)
    print(
        f"    pool: {messages:,} messages checked, restarts {restarts}; rejected {bad} (must be 0)"
    )
    flood = flood_rounds(signed_rounds, copies)
    fl = {
        name: run_market(sc, work / f"flood-{name}", flood)
        for name, sc in (("inproc", inproc), ("pool", pooled))
    }
    f_msg = len(flood[0])
    reached = fl["pool"]["pool_messages"] / k - f_msg + copies
    print(
        f"    flood: + {n:,} forged readings (a full Ed25519 check each; flood control "
        f"cannot cut them: their households are not complete) and {copies:,} copies of one "
        f"household's valid orders per interval ({f_msg:,} messages):"
    )
    print(
        f"      market process CPU per interval {med([fl['inproc']], 'cpu') * 1e3:.0f} ms "
        f"verified in the ingest, {med([fl['pool']], 'cpu') * 1e3:.0f} ms with the pool "
        f"(+ {med([fl['pool']], 'workers') * 1e3:.0f} ms of the workers'); "
        f"wall {med([fl['inproc']], 'wall') * 1e3:.0f} → {med([fl['pool']], 'wall') * 1e3:.0f} ms"
    )
    print(
        f"      of the copies, {reached:,.0f} per interval reached the pool (flood control "
        f"counts the messages waiting for their verdicts; in the ingest: "
        f"{fl['inproc']['rejected'].get('flood', 0) / k:,.0f} dropped, with the pool "
        f"{fl['pool']['rejected'].get('flood', 0) / k:,.0f}); forged rejected: "
        f"{fl['inproc']['rejected'].get('signature', 0) / k:,.0f} and "
        f"{fl['pool']['rejected'].get('signature', 0) / k:,.0f} per interval"
    )
