"""The cost of signed readings and orders (issue 15, "Speed"): per message, the time to
sign (the household's side: :meth:`scenarios.audit.keys.KeyPair.sign`, canonical bytes
and Ed25519) and the time the market's ingest adds to verify (:mod:`live.signatures`:
canonical bytes of the payload less ``sig``, Ed25519 verify under the topic's key), and
what that adds to the market's per-interval time at ``--households`` (default 5,000)
households × (reading + orders).

    python bench/bench_signatures.py [--households 5000] [--intervals 3]

No broker: the market's own ingest (:meth:`live.ingest.Ingest.on_agent`, what paho's
network thread calls per message) is fed the fleet's messages in-process, as the
encoded bytes the bus would carry; an interval's market time is that ingest plus the
gate's clearing, settlement and ledger commit (``MarketService._clear`` and the ledger
append), the same community once unsigned (no keys) and once signed with
``require_signatures``. Verification runs on the ingest path as messages arrive (while
the gate is open), so over MQTT it overlaps the wait for the messages; here it is
counted in full. Numbers are this machine's (its CPU count is printed).
"""

from __future__ import annotations

import argparse
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
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import household_ids

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
        market.ledger.append(market._clear(t))
        clear_s.append(time.perf_counter() - began)
    market._close()
    return ingest_s, clear_s, sum(market.stats.rejected.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--intervals", type=int, default=3)
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

        def med(name: str, part: int) -> float:
            return float(np.median([x for r in runs[name] for x in r[part]]))

        ing_p, ing_s = med("plain", 0), med("signed", 0)
        clr_p, clr_s = med("plain", 1), med("signed", 1)
        verify_us = (ing_s - ing_p) / per_interval * 1e6
        sign_us = sign_s / n_msg * 1e6
        total_p, total_s = ing_p + clr_p, ing_s + clr_s
        print(
            f"{n} households × (reading + orders) = {per_interval:,.0f} messages per interval, "
            f"{k} intervals, {os.cpu_count()} CPUs; payload {np.mean(plain_sizes):.0f} B "
            f"unsigned, {np.mean(sizes):.0f} B signed (mean)"
        )
        print(f"  sign   (household side) : {sign_us:7.1f} µs per message")
        print(f"  verify (market ingest)  : {verify_us:7.1f} µs per message (added to on_agent)")
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


if __name__ == "__main__":
    main()
