"""The verifier pool's part of ``bench_signatures.py`` (``--pool N``): the market with
``[live] verify_workers = N`` against the unsigned market and the in-process check, no
broker (the ingest fed the encoded messages as paho's thread would).

Per interval: every message through :meth:`live.ingest.Ingest.on_agent`, then the gate:
:meth:`live.ingest.Ingest.settle` (the pool's messages in flight), the book closed, the
clearing, settlement and ledger commit. Timed: the market process's CPU
(``time.process_time``, all its threads: the hand-off, the pool's thread that applies
the verdicts, the clearing; not the workers) and wall, and the gate latency (gate close
→ the interval's result ready to publish).
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from live.bus import BrokerConfig
from live.market import MarketService
from scenarios.audit.keys import KeyPair
from scenarios.config.loader import load_scenario

Rounds = list[list[tuple[str, bytes]]]


def run_market(scenario: Any, state: Path, rounds: Rounds, pace_s: float = 0.0) -> dict[str, Any]:
    """One market over ``rounds`` (``pace_s``: each interval's messages spread over that
    many seconds, else as fast as they can be handed in)."""
    market = MarketService(scenario, BrokerConfig(port=1), state, speed=0)
    ingest = market.ingest
    if ingest.verifier is not None:
        ingest.verifier.warm()
    cpu, wall, gate, gc_s = [], [], [], []
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
        wall.append(end - wall0)
        gate.append(end - closing)
        gc_s.append(collecting[0])
    gc.callbacks.remove(timed)
    pool = ingest.verifier.stats if ingest.verifier is not None else None
    out = {
        "cpu": cpu,
        "wall": wall,
        "gate": gate,
        "gc": gc_s,
        "rejected": dict(market.stats.rejected),
        "pool_cpu_s": pool.worker_cpu_s if pool else 0.0,
        "pool_messages": pool.messages if pool else 0,
        "restarts": pool.restarts if pool else 0,
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


def bench_pool(
    setup: tuple[Path, int, int, str, str],
    plain_rounds: Rounds,
    signed_rounds: Rounds,
    pairs: dict[str, KeyPair],
    pace_s: float,
    copies: int,
) -> None:
    """Print the market with the verifier pool against the unsigned market."""
    work, n, workers, toml, signed_keys = setup
    del pairs  # the messages are signed already
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
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "pool": [], "inproc": []}
    order = [("plain", plain, plain_rounds), ("pool", pooled, signed_rounds)] * 2
    for i, (name, sc, rounds) in enumerate([*order, ("inproc", inproc, signed_rounds)]):
        runs[name].append(run_market(sc, work / f"pool-state-{i}", rounds))
    cpu_p, cpu_s, cpu_i = (
        med(runs["plain"], "cpu"),
        med(runs["pool"], "cpu"),
        med(runs["inproc"], "cpu"),
    )
    wall_p, wall_s = med(runs["plain"], "wall"), med(runs["pool"], "wall")
    pool_cpu = sum(r["pool_cpu_s"] for r in runs["pool"])
    pool_msg = sum(r["pool_messages"] for r in runs["pool"])
    bad = sum(sum(r["rejected"].values()) for rs in runs.values() for r in rs)
    added = (cpu_s - cpu_p) / cpu_p
    print(f"  verifier pool ([live] verify_workers = {workers}, forkserver), in the market:")
    print(
        f"    market process CPU per interval ({per:,.0f} messages handed in at once; ingest + "
        "gate + clearing): "
        f"{cpu_p * 1e3:.0f} ms unsigned → {cpu_s * 1e3:.0f} ms signed with the pool "
        f"({added:+.1%}; target under +10 %: {added / 0.10:.2f} of the allowance); "
        f"verified in the ingest instead: {cpu_i * 1e3:.0f} ms ({(cpu_i - cpu_p) / cpu_p:+.0%})"
    )
    mean_p = np.mean([x for r in runs["plain"] for x in r["cpu"]])
    mean_s = np.mean([x for r in runs["pool"] for x in r["cpu"]])
    print(
        f"    of which garbage collection (median per interval): "
        f"{med(runs['plain'], 'gc') * 1e3:.0f} ms unsigned, {med(runs['pool'], 'gc') * 1e3:.0f} "
        f"ms with the pool; mean CPU {mean_p * 1e3:.0f} → {mean_s * 1e3:.0f} ms"
    )
    print(
        f"    wall per interval, messages handed in as fast as they come: {wall_p * 1e3:.0f} "
        f"ms unsigned, {wall_s * 1e3:.0f} ms with the pool (the workers' CPU shares the "
        "machine's cores)"
    )
    print(
        f"    pool CPU: {pool_cpu / max(pool_msg, 1) * 1e6:.1f} µs per message in the "
        f"workers ({pool_msg:,} messages); restarts {sum(r['restarts'] for r in runs['pool'])}"
        f"; rejected {bad} (must be 0)"
    )
    paced: dict[str, list[dict[str, Any]]] = {"plain": [], "pool": []}
    for i, (name, sc, rounds) in enumerate(order):
        paced[name].append(run_market(sc, work / f"paced-{i}", rounds, pace_s))
    g_p, g_s = med(paced["plain"], "gate"), med(paced["pool"], "gate")
    c_p, c_s = med(paced["plain"], "cpu"), med(paced["pool"], "cpu")
    print(
        f"    messages paced over {pace_s:g} s per interval (as they arrive over MQTT): "
        f"market process CPU per interval {c_p * 1e3:.0f} ms unsigned → {c_s * 1e3:.0f} ms "
        f"signed with the pool ({(c_s - c_p) / c_p:+.1%}; {(c_s - c_p) / c_p / 0.10:.2f} of "
        f"the allowance); gate latency (gate close → result ready to publish) "
        f"{g_p * 1e3:.0f} ms unsigned, {g_s * 1e3:.0f} ms with the pool"
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
        f"(+ {fl['pool']['pool_cpu_s'] / k * 1e3:.0f} ms of the workers'); "
        f"wall {med([fl['inproc']], 'wall') * 1e3:.0f} → {med([fl['pool']], 'wall') * 1e3:.0f} ms"
    )
    print(
        f"      of the copies, {reached:,.0f} per interval reached the pool (sent before "
        f"the household's verdicts made it complete; in the ingest: "
        f"{fl['inproc']['rejected'].get('flood', 0) / k:,.0f} dropped, with the pool "
        f"{fl['pool']['rejected'].get('flood', 0) / k:,.0f}); forged rejected: "
        f"{fl['inproc']['rejected'].get('signature', 0) / k:,.0f} and "
        f"{fl['pool']['rejected'].get('signature', 0) / k:,.0f} per interval"
    )
