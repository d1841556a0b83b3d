"""Where the market process spends its CPU per message (issue 15, "Speed"): the ingest
fed 5,000 households' readings and orders in-process (no broker), once unsigned and
once signed with the verifier pool, timed per thread (``time.thread_time``: the
network thread's :meth:`live.ingest.Ingest.on_agent`, the pool's thread that applies the
verdicts, the rest of the process) and, with ``--prof``, profiled (``cProfile``).

    python bench/signatures_profile.py [--households 5000] [--intervals 3] [--prof]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import household_ids

TOML = (
    'name = "signatures-profile"\n[simulation]\nstart = "2026-06-01"\ndays = 1\n'
    "interval_minutes = 15\nseed = 5\n[community]\nhouseholds = {n}\n[grid]\n"
    'check = "off"\n[live]\n{keys}\n'
)
SIGNED = 'keys = "keys.json"\nrequire_signatures = true\nverify_workers = 1'


def run(scenario: Any, state: Path, rounds: list[list[tuple[str, bytes]]], prof: bool) -> str:
    """One market over ``rounds``: its CPU per message, by thread (and the profiles)."""
    market = MarketService(scenario, BrokerConfig(port=1), state, speed=0)
    ing = market.ingest
    applier, ap, mp = [0.0, 0], cProfile.Profile(), cProfile.Profile()
    if ing.verifier is not None:
        ing.verifier.warm()
        inner = ing.verifier.apply

        def apply(*args: Any) -> None:
            began = time.thread_time()
            if prof:
                ap.enable()
            inner(*args)
            if prof:
                ap.disable()
            applier[0] += time.thread_time() - began
            applier[1] += 1

        ing.verifier.apply = apply
    main_s = cpu_s = gate_s = 0.0
    n = sum(len(r) for r in rounds)
    for t, messages in enumerate(rounds):
        ing.open(t)
        cpu0, t0 = time.process_time(), time.thread_time()
        if prof:
            mp.enable()
        for topic, body in messages:
            ing.on_agent(topic, body)
        if prof:
            mp.disable()
        main_s += time.thread_time() - t0
        g0 = time.thread_time()
        ing.settle()
        with ing.lock:
            ing.book.closed = True
        market.ledger.append(market._clear(t)[0])
        gate_s += time.thread_time() - g0
        cpu_s += time.process_time() - cpu0
    rejected = sum(market.stats.rejected.values())
    market._close()
    other = cpu_s - main_s - gate_s - applier[0]
    out = (
        f"process CPU {cpu_s / len(rounds) * 1e3:.0f} ms per interval; per message: "
        f"on_agent {main_s / n * 1e6:.2f} µs, applying verdicts {applier[0] / n * 1e6:.2f} µs, "
        f"other threads {other / n * 1e6:.2f} µs; gate + clearing {gate_s / len(rounds) * 1e3:.0f}"
        f" ms per interval; rejected {rejected}"
    )
    for name, p in (("network thread", mp), ("verdicts", ap)):
        if prof and p.getstats():
            s = io.StringIO()
            pstats.Stats(p, stream=s).sort_stats("tottime").print_stats(12)
            out += f"\n  --- {name}\n{s.getvalue()}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--intervals", type=int, default=3)
    ap.add_argument("--prof", action="store_true")
    args = ap.parse_args()
    n, work = args.households, Path(tempfile.mkdtemp())
    pairs = {h: KeyPair.new(h) for h in household_ids(n)}
    Registry({h: p.public_b64 for h, p in pairs.items()}).save(work / "keys.json")
    (work / "plain.toml").write_text(TOML.format(n=n, keys=""), "utf-8")
    (work / "signed.toml").write_text(TOML.format(n=n, keys=SIGNED), "utf-8")
    plain, signed = load_scenario(work / "plain.toml"), load_scenario(work / "signed.toml")
    fleet = AgentFleet(plain, BrokerConfig(port=1))
    payloads = [fleet.messages(t)[2] for t in range(args.intervals)]
    plain_rounds = [[(tp, orjson.dumps(p)) for tp, p in m] for m in payloads]
    signed_rounds = [
        [(tp, orjson.dumps(pairs[tp.split("/")[-2]].sign(p))) for tp, p in m] for m in payloads
    ]
    for rep in range(2):
        for name, sc, rounds in (
            ("unsigned", plain, plain_rounds),
            ("pool", signed, signed_rounds),
        ):
            said = run(sc, work / f"state-{name}-{rep}", rounds, args.prof and rep == 1)
            print(f"{name:8s} (run {rep + 1}): {said}")


if __name__ == "__main__":
    main()
