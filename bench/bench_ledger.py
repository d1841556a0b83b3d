"""Ledger size and restart cost: bytes per agent-interval of the live market's ledger
(zstd-compressed columnar frames, live/ledger.py) against the JSON lines it wrote before
(one object per household, the trades and the book in the result), and the time to
reopen a ledger of many segments (only the newest is read).

    python bench/bench_ledger.py [--households 1000] [--intervals 8]

No broker: the market's own ingestion is fed the fleet's messages in-process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson

from live.bus import BrokerConfig
from live.fleet import AgentFleet
from live.ledger import Ledger, pack
from live.market import MarketService
from scenarios.config.loader import load_scenario

TOML = """
name = "ledger-bench"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 15
seed = 5
[community]
households = {n}
[grid]
check = "off"
"""


def old_line(record: dict) -> bytes:
    """The record as the JSON-lines ledger wrote it: trades and every order in the result."""
    book = record["book"]
    orders = book["orders"]
    result = {
        **record["result"],
        "trades": book["trades"],
        "book": {
            side: [
                [e, p]
                for e, p, s in zip(
                    orders["energy_kwh"], orders["price_per_kwh"], orders["side"], strict=True
                )
                if s == side
            ]
            for side in ("buy", "sell")
        },
    }
    old = {k: v for k, v in record.items() if k != "book"}
    return orjson.dumps({"community": "x", **old, "result": result}) + b"\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--intervals", type=int, default=8)
    args = ap.parse_args()
    n, k = args.households, args.intervals
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "s.toml"
        path.write_text(TOML.format(n=n), encoding="utf-8")
        scenario = load_scenario(path)
        market = MarketService(scenario, BrokerConfig(port=1), work / "state", speed=0)
        fleet = AgentFleet(scenario, BrokerConfig(port=1))
        old_bytes = new_bytes = 0
        for t in range(k):
            market.ingest.open(t)
            _, _, messages = fleet.messages(t)
            for topic, payload in messages:
                market.ingest.on_agent(topic, orjson.dumps(payload))
            market.ingest.book.closed = True
            record, _entry = market._clear(t)  # the audit entry is not measured here
            old_bytes += len(old_line(record))
            new_bytes += len(pack({"community": "x", **record}))
            market.ledger.append(record)
        market._close()
        per = n * k
        print(f"{n} households × {k} intervals")
        print(f"  JSON lines (before): {old_bytes / per:8.1f} bytes per agent-interval")
        print(f"  zstd columnar (now): {new_bytes / per:8.1f} bytes per agent-interval")
        print(f"  ratio               {old_bytes / new_bytes:8.1f}×")
        year = 5000 * 35040
        print(
            f"  a year at 5,000 agents (15-min): {old_bytes / per * year / 1e9:.0f} GB before, "
            f"{new_bytes / per * year / 1e9:.1f} GB now"
        )
        # reopen: only the newest segment is read, however long the ledger
        t0 = time.perf_counter()
        led = Ledger(work / "state", market.topics.community)
        print(
            f"  reopen: {time.perf_counter() - t0:.3f} s, {led.read_segments} segment(s) read, "
            f"resumes at t={led.next_t}"
        )
        led.close()


if __name__ == "__main__":
    main()
