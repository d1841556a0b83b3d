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

``--pool N`` (default 1; 0: skip) runs the same market with the verifier pool of
:mod:`live.verifier` (``[live] verify_workers = N``): the ingest hands every message to
the pool and the gate waits for what is in flight (:meth:`live.ingest.Ingest.settle`)
before the clearing. Printed: the market process's own CPU per interval
(``time.process_time``: every thread of the market, the pool's hand-off and verdicts
included, the workers not), unsigned and signed with the pool — the issue's figure —, the
workers' CPU per message, and the gate latency (gate close → the interval's result ready
to publish: the pool's drain, clearing, settlement, ledger) with each interval's messages
paced over ``--pace`` seconds. The flood case: one forged reading (another household's
key) on every household's topic before its own messages, which flood control cannot cut
(the household is not complete yet), and ``--flood`` valid copies of one complete
household's orders, which it drops before they reach the pool.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from scenarios.audit.canonical import canonical, unsigned
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import household_ids

SIGNED = 'keys = "keys.json"\nrequire_signatures = true\nverify_workers = {w}'
"""The ``[live]`` keys of the signed runs (``{w}``: verifier processes)."""

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
    ap.add_argument("--pace", type=float, default=3.0, help="seconds to spread messages over")
    ap.add_argument("--flood", type=int, default=2000, help="flood copies of one household's")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of the pool's comparison")
    args = ap.parse_args()
    n, k = args.households, args.intervals
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pairs = {h: KeyPair.new(h) for h in household_ids(n)}
        Registry({h: p.public_b64 for h, p in pairs.items()}).save(work / "keys.json")
        plain_file, signed_file = work / "plain.toml", work / "signed.toml"
        plain_file.write_text(TOML.format(n=n, keys=""), encoding="utf-8")
        signed_file.write_text(
            TOML.format(n=n, keys=SIGNED.format(w=0)),
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
            pool = sibling("signatures_pool")
            setup = (work, n, args.pool, TOML, SIGNED)
            pool.bench_pool(setup, plain_rounds, signed_rounds, args.pace, args.flood, args.reps)
        if args.mqtt:
            over_mqtt(work, n, plain_rounds, signed_rounds, args.publishers, args.pool)


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


def sibling(name: str) -> Any:
    """The module ``bench/<name>.py`` beside this script."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def over_mqtt(
    work: Path,
    n: int,
    plain_rounds: list[list[tuple[str, bytes]]],
    signed_rounds: list[list[tuple[str, bytes]]],
    publishers: int,
    workers: int,
) -> None:
    """The live market's per-interval time over Mosquitto, unsigned and signed (with
    ``workers`` verifier processes; 0: verified in the ingest)."""
    bench_mqtt = sibling("bench_mqtt")
    proc, port = bench_mqtt.start_mosquitto(work)
    root = "p2pgrid/signatures-bench"
    times: dict[str, list[float]] = {"plain": [], "signed": []}
    try:
        for trial in range(2):
            for name, rounds in (("plain", plain_rounds), ("signed", signed_rounds)):
                keys = SIGNED.format(w=workers) if name == "signed" else ""
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
