"""The cost of signed readings and orders (issue 15, "Speed"): per message, the time to
sign (the household's side: :meth:`scenarios.audit.keys.KeyPair.sign`, canonical bytes
and Ed25519) and the time the market's ingest adds to verify (:mod:`live.signatures`:
canonical bytes of the payload less ``sig``, Ed25519 verify under the topic's key), and
what that adds to the market's per-interval time at ``--households`` (default 5,000)
households × (reading + orders).

    python bench/bench_signatures.py [--households 5000] [--intervals 3] [--mqtt]

No broker: the market's own ingest (:meth:`live.ingest.Ingest.on_agent`, what paho's
network thread calls per message) is fed the fleet's messages in-process, as the
encoded bytes the bus would carry; an interval's market time is that ingest plus the
gate's clearing, settlement and ledger commit (``MarketService._clear`` and the ledger
append), the same community once unsigned (no keys) and once signed with
``require_signatures``. Verification runs on the ingest path as messages arrive (while
the gate is open), so over MQTT it overlaps the wait for the messages; here it is
counted in full. ``--mqtt`` also runs both over a real Mosquitto (``bench_mqtt.py``'s
ingest measurement: ``--publishers`` processes publish each interval's messages at QoS 1,
timed from their start to the market's gate closing on a full book, plus the clearing):
the live market's per-interval time, unsigned and signed. Numbers are this machine's
(its CPU count is printed).

``--pool N`` (default 1; 0: skip) measures the premise of a verifier pool (issue 15's open
item; the pool itself is not built in the market yet): each interval's signed bodies are
handed in batches of ``--batch`` to ``N`` worker processes (``forkserver``; each loads the
key registry once and runs :meth:`live.signatures.Signatures.check`), and the market
process's own CPU for that hand-off (pickling the batches out, the verdicts back) is
measured with ``time.process_time``, beside the workers' CPU. The market's time with a
pool would be the unsigned ingest plus that hand-off: an estimate from its parts, not a
run of an integrated pool.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from live.signatures import SignatureRejected, Signatures
from scenarios.audit.canonical import canonical, unsigned
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import household_ids

_CHECK: Signatures | None = None
"""A pool worker's check (its key registry loaded once, by :func:`_load`)."""

TOML = """
name = "signatures-bench"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 15
seed = 5
[community]
households = {n}
[grid]
check = "off"
[live]
{keys}
"""


def market_interval(
    scenario: Any, state: Path, rounds: list[list[tuple[str, bytes]]]
) -> tuple[list[float], list[float], int]:
    """Per interval: ingest seconds (every message through ``on_agent``) and clearing
    seconds (clear, settle, ledger commit); and messages rejected (must be 0)."""
    market = MarketService(scenario, BrokerConfig(port=1), state, speed=0)
    ingest_s, clear_s = [], []
    for t, messages in enumerate(rounds):
        market.ingest.open(t)
        began = time.perf_counter()
        for topic, body in messages:
            market.ingest.on_agent(topic, body)
        ingest_s.append(time.perf_counter() - began)
        market.ingest.book.closed = True
        began = time.perf_counter()
        market.ledger.append(market._clear(t)[0])  # the state record (no audit entry)
        clear_s.append(time.perf_counter() - began)
    market._close()
    return ingest_s, clear_s, sum(market.stats.rejected.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--intervals", type=int, default=3)
    ap.add_argument("--mqtt", action="store_true", help="also over a real Mosquitto")
    ap.add_argument("--publishers", type=int, default=2, help="--mqtt publisher processes")
    ap.add_argument("--pool", type=int, default=1, help="verifier worker processes (0: skip)")
    ap.add_argument("--batch", type=int, default=500, help="messages per batch to the pool")
    args = ap.parse_args()
    n, k = args.households, args.intervals
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pairs = {h: KeyPair.new(h) for h in household_ids(n)}
        Registry({h: p.public_b64 for h, p in pairs.items()}).save(work / "keys.json")
        plain_file, signed_file = work / "plain.toml", work / "signed.toml"
        plain_file.write_text(TOML.format(n=n, keys=""), encoding="utf-8")
        signed_file.write_text(
            TOML.format(n=n, keys='keys = "keys.json"\nrequire_signatures = true'),
            encoding="utf-8",
        )
        plain, signed = load_scenario(plain_file), load_scenario(signed_file)
        fleet = AgentFleet(plain, BrokerConfig(port=1))  # never connected
        payloads = [fleet.messages(t)[2] for t in range(k)]
        # --- signing, the households' side (one process signs them all here) ---------
        sign_s, signed_rounds, plain_rounds = 0.0, [], []
        for messages in payloads:
            out = []
            began = time.perf_counter()
            for topic, payload in messages:
                out.append((topic, pairs[topic.split("/")[-2]].sign(payload)))
            sign_s += time.perf_counter() - began
            signed_rounds.append([(topic, orjson.dumps(p)) for topic, p in out])
            plain_rounds.append([(topic, orjson.dumps(p)) for topic, p in messages])
        n_msg = sum(len(r) for r in payloads)
        per_interval = n_msg / k
        sizes = [len(b) for r in signed_rounds for _, b in r]
        plain_sizes = [len(b) for r in plain_rounds for _, b in r]
        # --- the market, unsigned then signed (then unsigned again: a shared machine) -
        runs: dict[str, list[tuple[list[float], list[float], int]]] = {"plain": [], "signed": []}
        for i, (name, sc, rounds) in enumerate(
            [
                ("plain", plain, plain_rounds),
                ("signed", signed, signed_rounds),
                ("plain", plain, plain_rounds),
                ("signed", signed, signed_rounds),
            ]
        ):
            runs[name].append(market_interval(sc, work / f"state-{i}", rounds))
        rejected = sum(r[2] for rs in runs.values() for r in rs)

        def med(name: str, ingest: bool) -> float:
            return float(np.median([x for r in runs[name] for x in (r[0] if ingest else r[1])]))

        ing_p, ing_s = med("plain", True), med("signed", True)
        clr_p, clr_s = med("plain", False), med("signed", False)
        verify_us = (ing_s - ing_p) / per_interval * 1e6
        sign_us = sign_s / n_msg * 1e6
        total_p, total_s = ing_p + clr_p, ing_s + clr_s
        print(
            f"{n} households × (reading + orders) = {per_interval:,.0f} messages per interval, "
            f"{k} intervals, {os.cpu_count()} CPUs; payload {np.mean(plain_sizes):.0f} B "
            f"unsigned, {np.mean(sizes):.0f} B signed (mean)"
        )
        canon_us, ed_us = floor(signed_rounds[0][:2000], pairs)
        print(f"  sign   (household side) : {sign_us:7.1f} µs per message")
        print(f"  verify (market ingest)  : {verify_us:7.1f} µs per message (added to on_agent)")
        print(
            f"    of which the canonical bytes {canon_us:.1f} µs and the Ed25519 verify of "
            f"cryptography alone {ed_us:.1f} µs (the floor of one check per message, GIL held)"
        )
        print(
            f"  market ingest per interval: {ing_p * 1e3:7.0f} ms unsigned, "
            f"{ing_s * 1e3:7.0f} ms signed + required (median)"
        )
        print(
            f"  clearing + settlement + ledger: {clr_p * 1e3:5.0f} ms unsigned, "
            f"{clr_s * 1e3:5.0f} ms signed"
        )
        print(
            f"  market per interval (ingest + clearing): {total_p * 1e3:.0f} ms → "
            f"{total_s * 1e3:.0f} ms, verification adds {(total_s - total_p) * 1e3:.0f} ms "
            f"({(total_s - total_p) / total_p:+.0%}; target under +10 %)"
        )
        print(
            f"  signing all {per_interval:,.0f} messages in one process (the emulator's "
            f"fleet): {sign_s / k * 1e3:.0f} ms per interval (spread over the households' "
            "own devices in a real community)"
        )
        interval_s = plain.simulation.interval_minutes * 60.0
        print(
            f"  share of a real-time {interval_s:.0f} s interval: verification "
            f"{(total_s - total_p) / interval_s:.2%}; at --speed 900 (1 s per interval): "
            f"{(total_s - total_p) / (interval_s / 900):.0%}"
        )
        print(f"  rejected: {rejected} (must be 0: every signed message verified)")
        if args.pool > 0:
            pooled(work / "keys.json", signed_rounds, args.pool, args.batch, ing_p, clr_p)
        if args.mqtt:
            over_mqtt(work, n, plain_rounds, signed_rounds, args.publishers)


def _load(registry: str) -> None:
    global _CHECK
    _CHECK = Signatures(Registry.load(Path(registry)), required=True)


def _verify(batch: list[tuple[str, bytes]]) -> tuple[list[str | None], float]:
    """A pool worker: the rejection reason of each ``(agent, body)`` (None: verified)
    and the worker's CPU seconds for the batch."""
    assert _CHECK is not None
    began = time.process_time()
    out: list[str | None] = []
    for agent, body in batch:
        try:
            _CHECK.check(orjson.loads(body), agent)
            out.append(None)
        except SignatureRejected as exc:
            out.append(str(exc))
    return out, time.process_time() - began


def pooled(
    registry: Path,
    rounds: list[list[tuple[str, bytes]]],
    workers: int,
    batch: int,
    ingest_plain: float,
    clear_plain: float,
) -> None:
    """Print the market process's CPU to hand each interval's signed messages to a
    verifier pool and take the verdicts back, the pool's CPU, and the estimate of the
    market's per-interval time with the pool against the unsigned one."""
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, ctx, initializer=_load, initargs=(str(registry),)) as pool:
        warm = [(t.split("/")[-2], b) for t, b in rounds[0][:workers]]
        list(pool.map(_verify, [warm[i : i + 1] for i in range(len(warm))]))
        parent, wall, worker, bad, n_msg = [], [], 0.0, 0, 0
        for messages in rounds:
            items = [(t.split("/")[-2], b) for t, b in messages]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            futures = [
                pool.submit(_verify, items[i : i + batch]) for i in range(0, len(items), batch)
            ]
            results = [f.result() for f in futures]
            parent.append(time.process_time() - cpu0)
            wall.append(time.perf_counter() - wall0)
            worker += sum(r[1] for r in results)
            bad += sum(x is not None for r in results for x in r[0])
            n_msg += len(items)
    k = len(rounds)
    hand = float(np.median(parent))
    base = ingest_plain + clear_plain
    print(
        f"  verifier pool ({workers} forkserver workers, batches of {batch}; an estimate "
        "from parts, the pool is not in the market yet):"
    )
    print(
        f"    market process CPU to hand off and take back verdicts: {hand * 1e3:.0f} ms per "
        f"interval ({hand / (n_msg / k) * 1e6:.1f} µs per message)"
    )
    print(
        f"    pool CPU: {worker / k * 1e3:.0f} ms per interval "
        f"({worker / n_msg * 1e6:.1f} µs per message); wall of the pool's pass "
        f"{float(np.median(wall)) * 1e3:.0f} ms per interval; {bad} rejected (must be 0)"
    )
    print(
        f"    market per interval: {base * 1e3:.0f} ms unsigned → {(base + hand) * 1e3:.0f} "
        f"ms signed with the pool ({hand / base:+.0%}; target under +10 %: "
        f"ratio {hand / base / 0.10:.2f} of the allowance)"
    )


def floor(messages: list[tuple[str, bytes]], pairs: dict[str, KeyPair]) -> tuple[float, float]:
    """µs per message: the canonical bytes of the payload less ``sig``, and the bare
    Ed25519 verify of those bytes (``cryptography``)."""
    payloads = [(topic.split("/")[-2], orjson.loads(body)) for topic, body in messages]
    began = time.perf_counter()
    data = [canonical(unsigned(p)) for _, p in payloads]
    canon = (time.perf_counter() - began) / len(payloads)
    keys = [pairs[a].private.public_key() for a, _ in payloads]
    sigs = [base64.b64decode(p["sig"]["value"]) for _, p in payloads]
    began = time.perf_counter()
    for key, sig, d in zip(keys, sigs, data, strict=True):
        key.verify(sig, d)
    return canon * 1e6, (time.perf_counter() - began) / len(payloads) * 1e6


def over_mqtt(
    work: Path,
    n: int,
    plain_rounds: list[list[tuple[str, bytes]]],
    signed_rounds: list[list[tuple[str, bytes]]],
    publishers: int,
) -> None:
    """The live market's per-interval time over Mosquitto, unsigned and signed."""
    spec = importlib.util.spec_from_file_location(
        "bench_mqtt", Path(__file__).with_name("bench_mqtt.py")
    )
    assert spec is not None and spec.loader is not None
    bench_mqtt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_mqtt)
    proc, port = bench_mqtt.start_mosquitto(work)
    root = "p2pgrid/signatures-bench"
    times: dict[str, list[float]] = {"plain": [], "signed": []}
    try:
        for trial in range(2):
            for name, rounds in (("plain", plain_rounds), ("signed", signed_rounds)):
                keys = 'keys = "keys.json"\nrequire_signatures = true' if name == "signed" else ""
                file = work / f"mqtt-{name}-{trial}.toml"
                community = f"sig-{name}-{trial}"  # a fresh community: no session carries over
                text = TOML.format(n=n, keys=keys).replace("signatures-bench", community)
                file.write_text(text, encoding="utf-8")
                mine = f"p2pgrid/{community}"
                batches = [[(t.replace(root, mine, 1), b) for t, b in r] for r in rounds]
                rate, info = bench_mqtt.market_rate(
                    port, load_scenario(file), batches, publishers, work / f"mqtt-{name}-{trial}"
                )
                per_round = len(batches[0]) / rate + float(np.median(info["clear_s"]))
                times[name].append(per_round)
                print(
                    f"  over Mosquitto, trial {trial + 1}, {name:6s}: {rate:8,.0f} msg/s "
                    f"ingested, {per_round * 1e3:6.0f} ms per interval, "
                    f"{info['rejected']} rejected"
                )
    finally:
        proc.terminate()
        proc.wait(10)
    plain, signed = float(np.median(times["plain"])), float(np.median(times["signed"]))
    print(
        f"  live market per interval over Mosquitto: {plain * 1e3:.0f} ms unsigned, "
        f"{signed * 1e3:.0f} ms signed ({(signed - plain) / plain:+.0%}; target under +10 %)"
    )


if __name__ == "__main__":
    main()
