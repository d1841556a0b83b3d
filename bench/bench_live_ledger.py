"""What the audit ledger and signatures (issue 15) add to the live market's per-interval
time.

    python bench/bench_live_ledger.py [--households 5000] [--intervals 4] [--every 3]

No broker: the market's own ingest (:meth:`live.ingest.Ingest.on_agent`, what paho's
network thread calls per message) is fed the fleet's messages in-process, as the encoded
bytes the bus would carry, then each interval is committed as
:meth:`live.market.MarketService.run` commits it, every part timed:

- *ingest*: every reading and orders message parsed, checked and booked (signed: each
  signature verified under the topic's key first, :mod:`live.signatures`);
- *clear*: the book as a plan, the step (clearing, settlement), the payloads;
- *state ledger*: the state record appended (zstd frame, fsync);
- *publish*: ``market/result``, ``market/book`` and every settlement encoded as the bus
  encodes them (the broker's own time is not counted);
- *audit entry*: the signed messages into ``private/`` (:meth:`live.audit.LiveAudit.store`:
  the files, then one ``syncfs``), then the interval entry (input and settlement leaves
  as RFC 8785 bytes, their Merkle roots, the line fsynced);
- *checkpoint + bills*: every ``--every`` intervals, the signed checkpoint and every
  household's bill (built and encoded), per checkpoint and amortised per interval.

The same community runs twice: unsigned, then with every household's key and
``[live] require_signatures``. Printed: the per-interval time without the audit ledger
(ingest + clear + state ledger + publish), with it, and signed with it, and the ratios.
Verification runs as messages arrive (while the gate is open), so over MQTT it overlaps
the wait for them; here it is counted in full. Numbers are this machine's, shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.market import MarketService
from live.protocol import encode
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import household_ids

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
{signed}
"""
SIGNED = 'keys = "keys/keys.json"\nrequire_signatures = true'


class Timer:
    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}
        self.bill_bytes: list[int] = []
        self.chain_bytes = 0
        self.private_files = 0

    def add(self, name: str, seconds: float) -> None:
        self.parts.setdefault(name, []).append(seconds)

    def mean(self, name: str) -> float:
        """The median over the intervals after the first (a warm-up)."""
        values = self.parts.get(name, [0.0])
        return statistics.median(values[1:] or values)


def make_keys(folder: Path, n: int) -> None:
    """Every household's key and the registry, as ``p2pgrid keys new`` writes them."""
    folder.mkdir(parents=True)
    registry = Registry()
    for agent in [*household_ids(n), "market"]:
        pair = KeyPair.new(agent)
        pair.save(folder / f"{agent}.key")
        registry.add(agent, pair.public_b64)
    registry.save(folder / "keys.json")


def measure(work: Path, n: int, k: int, every: int, signed: bool) -> Timer:
    work.mkdir(parents=True)
    if signed:
        make_keys(work / "keys", n)
    path = work / "s.toml"
    path.write_text(TOML.format(n=n, every=every, signed=SIGNED if signed else ""), "utf-8")
    scenario = load_scenario(path)
    market = MarketService(scenario, BrokerConfig(port=1), work / "state", speed=0)
    fleet = AgentFleet(scenario, BrokerConfig(port=1))
    assert len(fleet.signers) == (n if signed else 0)
    topics, audit, timer = market.topics, market.audit, Timer()
    audit.open()
    for t in range(k):
        _, _, messages = fleet.messages(t)
        wire = [(topic, orjson.dumps(payload)) for topic, payload in messages]
        market.ingest.open(t)
        t0 = time.perf_counter()
        for topic, body in wire:
            market.ingest.on_agent(topic, body)
        t1 = time.perf_counter()
        market.ingest.book.closed = True
        assert len(market.ingest.book.orders) == n, market.stats.rejected
        record, entry = market._clear(t)
        t2 = time.perf_counter()
        record["audit_seq"] = audit.enter(entry, [], market.row)
        t4 = time.perf_counter()
        market.ledger.append(record)
        t5 = time.perf_counter()
        encode(record["result"])
        encode(record["book"])
        for agent, payload in record["settlements"].items():
            topics.settlement(agent)
            encode(payload)
        t6 = time.perf_counter()
        cp = audit.writer.checkpoint()
        if cp is not None:
            encode(cp)
            bills = audit.writer.bills(cp)
            timer.bill_bytes.extend(len(encode(b)) for b in bills.values())
            timer.add("checkpoint", time.perf_counter() - t6)
        for name, s in (
            ("ingest", t1 - t0),
            ("clear", t2 - t1),
            ("entry", t4 - t2),
            ("state", t5 - t4),
            ("publish", t6 - t5),
        ):
            timer.add(name, s)
    market._close()
    timer.chain_bytes = (work / "state" / "ledger" / "chain.jsonl").stat().st_size
    timer.private_files = len(list((work / "state" / "ledger" / "private").iterdir()))
    return timer


def report(label: str, timer: Timer, n: int, k: int, every: int) -> tuple[float, float]:
    """Prints the parts; (the interval without the audit ledger, with it) [s]."""
    base = sum(timer.mean(p) for p in ("ingest", "clear", "state", "publish"))
    per_cp = statistics.median(timer.parts.get("checkpoint", [0.0]))
    audit = timer.mean("entry") + per_cp / every
    print(f"{label}:")
    for name, what in (
        ("ingest", "ingest (parse, check, book)"),
        ("clear", "clear (plan, step, payloads)"),
        ("state", "state ledger append (fsync)"),
        ("publish", "publish (encode every payload)"),
        ("entry", f"audit entry (+ {timer.private_files // k} messages, private/)"),
    ):
        print(f"  {what:<44} {timer.mean(name) * 1e3:9.1f} ms")
    print(
        f"  {'checkpoint + ' + str(n) + ' bills':<44} {per_cp * 1e3:9.1f} ms per checkpoint "
        f"(every {every}: {per_cp / every * 1e3:.1f} ms per interval)"
    )
    bill = statistics.fmean(timer.bill_bytes or [0])
    print(
        f"  chain {timer.chain_bytes / k / 1e6:.2f} MB per interval; a bill of {every} "
        f"intervals {bill / 1e3:.1f} kB"
    )
    print(f"  {'per interval without the audit ledger':<44} {base * 1e3:9.1f} ms")
    print(f"  {'per interval with it':<44} {(base + audit) * 1e3:9.1f} ms")
    return base, base + audit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--intervals", type=int, default=4)
    ap.add_argument("--every", type=int, default=3, help="intervals per checkpoint")
    args = ap.parse_args()
    n, k, every = args.households, args.intervals, args.every
    print(
        f"{n} households × {k} intervals (grid check off), 2 messages per household and "
        f"interval; medians, the first interval a warm-up; {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        plain = measure(Path(tmp) / "unsigned", n, k, every, signed=False)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        signed = measure(Path(tmp) / "signed", n, k, every, signed=True)
    base, with_audit = report("unsigned", plain, n, k, every)
    signed_base, signed_audit = report("signed, require_signatures", signed, n, k, every)
    print("summary (per interval):")
    print(f"  without the audit ledger, unsigned   {base * 1e3:9.1f} ms")
    print(f"  with the audit ledger, unsigned      {with_audit * 1e3:9.1f} ms")
    print(f"  with the audit ledger, signed        {signed_audit * 1e3:9.1f} ms")
    print(f"  the audit ledger adds                {with_audit / base - 1:9.1%}")
    print(f"  signing and verifying add            {signed_audit / with_audit - 1:9.1%}")
    print(f"  (signed, without the audit ledger: {signed_base / base - 1:.1%} over unsigned)")


if __name__ == "__main__":
    main()
