"""What the audit ledger (issue 15) adds to the live market's per-interval time.

    python bench/bench_live_ledger.py [--households 5000] [--intervals 6] [--every 3]

No broker: the market's own ingestion is fed the fleet's messages in-process (as
bench/bench_ledger.py does), then each interval is committed as
:meth:`live.market.MarketService.run` commits it, every part timed:

- *clear*: the book as a plan, the step (clearing, settlement), the payloads
  (``MarketService._clear``);
- *state ledger*: the state record appended (zstd frame, fsync);
- *publish*: ``market/result``, ``market/book`` and every settlement encoded as the bus
  encodes them (:func:`live.protocol.encode`; the broker's own time is not counted);
- *audit*: the raw messages into ``private/`` and the interval entry (input and settlement
  leaves as RFC 8785 bytes, their Merkle roots, the line fsynced), split into those two;
- *checkpoint + bills*: every ``--every`` intervals, the signed checkpoint and every
  household's bill (built and encoded), shown per checkpoint and per interval amortised.

It prints the per-interval time without the audit ledger (clear + state ledger +
publish) and with it, and the ratio; the raw message and bill sizes.

Signatures (``--signed``): until the signing branch is on this one, the ingest refuses a
``"sig"`` field, so the signed path is measured beside it: every household's key, each
interval's messages signed as an emulator signs them (not the market's time), then what
the market adds per interval: each message's signature verified under the topic's key
(:meth:`scenarios.audit.keys.Registry.verify`, on the ingest's network thread) and every
signed message stored in ``private/`` (:meth:`live.audit.LiveAudit.store`: the files,
then one sync of their file system).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from live.audit import LiveAudit
from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from live.protocol import encode
from live.provenance import InputMessages
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario

TOML = """
name = "live-ledger-bench"
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
checkpoint_every = {every}
"""


class Timer:
    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float) -> None:
        self.parts.setdefault(name, []).append(seconds)

    def mean(self, name: str) -> float:
        """The median over the intervals after the first (a warm-up)."""
        values = self.parts.get(name, [0.0])
        return statistics.median(values[1:] or values)


def feed(market: MarketService, fleet: AgentFleet, t: int) -> int:
    """The fleet's readings and orders of ``t`` through the market's ingest; how many."""
    market.ingest.open(t)
    _, _, messages = fleet.messages(t)
    for topic, payload in messages:
        market.ingest.on_agent(topic, orjson.dumps(payload))
    market.ingest.book.closed = True
    return len(messages)


def signed_messages(
    fleet: AgentFleet,
    t: int,
    keys: dict[str, KeyPair],
    registry: Registry,
    audit: LiveAudit,
    timer: Timer,
) -> None:
    """Interval ``t``'s messages signed by their households; the market's verify and
    private-store time (see the module docstring)."""
    _, _, messages = fleet.messages(t)
    signed = [(topic, keys[topic.split("/")[-2]].sign(p)) for topic, p in messages]
    raw = [orjson.dumps(p) for _, p in signed]
    t0 = time.perf_counter()
    for (topic, _), data in zip(signed, raw, strict=True):
        registry.verify(orjson.loads(data), topic.split("/")[-2])
    t1 = time.perf_counter()
    audit.store(InputMessages({}, {hashlib.sha256(d).hexdigest(): d for d in raw}, {}))
    timer.add("verify", t1 - t0)
    timer.add("private_signed", time.perf_counter() - t1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--intervals", type=int, default=6)
    ap.add_argument("--every", type=int, default=3, help="intervals per checkpoint")
    ap.add_argument("--signed", action="store_true", help="measure verify + private store")
    args = ap.parse_args()
    n, k = args.households, args.intervals
    timer = Timer()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        path = work / "s.toml"
        path.write_text(TOML.format(n=n, every=args.every), encoding="utf-8")
        scenario = load_scenario(path)
        market = MarketService(scenario, BrokerConfig(port=1), work / "state", speed=0)
        fleet = AgentFleet(scenario, BrokerConfig(port=1))
        topics, audit = market.topics, market.audit
        keys = {a: KeyPair.new(a) for a in market.ids} if args.signed else {}
        registry = Registry({a: k.public_b64 for a, k in keys.items()})
        raw_bytes = messages = 0
        bill_bytes: list[int] = []
        cp_s: list[float] = []
        for t in range(k):
            messages += feed(market, fleet, t)
            if args.signed:
                signed_messages(fleet, t, keys, registry, audit, timer)
            t0 = time.perf_counter()
            record, entry = market._clear(t)
            t1 = time.perf_counter()
            for h in entry["messages"].raw:
                raw_bytes += len(entry["messages"].raw[h])
            for raw in entry["messages"].raw.values():
                audit.writer.private(raw)
            t2 = time.perf_counter()
            audit.writer.interval(
                t,
                entry["plan"],
                entry["settlements"],
                entry["clearing"],
                entry["rng_before"],
                readings=entry["readings"],
                signed=entry["messages"].signed,
                estimated=entry["estimated"],
                rejected=entry["messages"].rejected,
                where=entry["where"],
            )
            record["audit_seq"] = audit.seq
            t3 = time.perf_counter()
            market.ledger.append(record)
            t4 = time.perf_counter()
            encode(record["result"])
            encode(record["book"])
            for agent, payload in record["settlements"].items():
                topics.settlement(agent)
                encode(payload)
            t5 = time.perf_counter()
            cp = audit.writer.checkpoint()
            if cp is not None:
                encode(cp)
                bills = audit.writer.bills(cp)
                bill_bytes.extend(len(encode(b)) for b in bills.values())
                cp_s.append(time.perf_counter() - t5)
            timer.add("clear", t1 - t0)
            timer.add("private", t2 - t1)
            timer.add("entry", t3 - t2)
            timer.add("state", t4 - t3)
            timer.add("publish", t5 - t4)
        market._close()
        chain = (work / "state" / "ledger" / "chain.jsonl").stat().st_size

    base = timer.mean("clear") + timer.mean("state") + timer.mean("publish")
    audit_s = timer.mean("private") + timer.mean("entry")
    per_cp = statistics.median(cp_s) if cp_s else 0.0
    amortised = per_cp / args.every
    print(
        f"{n} households × {k} intervals (grid check off), {messages / k:.0f} messages/interval "
        f"(medians; the first interval is a warm-up)"
    )
    print(f"  clear (plan, step, payloads)   {timer.mean('clear') * 1e3:9.1f} ms")
    print(f"  state ledger append (fsync)    {timer.mean('state') * 1e3:9.1f} ms")
    print(f"  publish (encode every payload) {timer.mean('publish') * 1e3:9.1f} ms")
    print(f"  audit: raw messages, private/  {timer.mean('private') * 1e3:9.1f} ms")
    print(f"  audit: interval entry (fsync)  {timer.mean('entry') * 1e3:9.1f} ms")
    print(
        f"  checkpoint + {n} bills          {per_cp * 1e3:9.1f} ms per checkpoint "
        f"(every {args.every}: {amortised * 1e3:.1f} ms per interval)"
    )
    print(f"  per interval without the audit ledger: {base * 1e3:9.1f} ms")
    with_audit = base + audit_s + amortised
    print(f"  per interval with the audit ledger:    {with_audit * 1e3:9.1f} ms")
    print(f"  ratio                                  {with_audit / base:9.2f}×")
    print(
        f"  raw messages {raw_bytes / k / 1e6:.2f} MB/interval; chain {chain / k / 1e6:.2f} "
        f"MB/interval; a bill of {args.every} intervals "
        f"{statistics.fmean(bill_bytes or [0]) / 1e3:.1f} kB"
    )
    if args.signed:
        verify, store = timer.mean("verify"), timer.mean("private_signed")
        print(f"  signed: verify every message      {verify * 1e3:9.1f} ms (ingest thread)")
        print(f"  signed: private/ store (syncfs)   {store * 1e3:9.1f} ms")
        print(
            f"  with signatures, per interval:    {(with_audit + verify + store) * 1e3:9.1f} ms "
            f"({(verify + store) / base:.2f}× the interval without the ledger added by them)"
        )


if __name__ == "__main__":
    main()
