"""The raw messages each household's inputs came from (live/provenance.py), kept by the
ingest for the audit ledger: the bytes as received, hashed by SHA-256; a later message
replaces an earlier one; a meter's samples taken as energy (not its repeats); rejections
counted by the topic's household (or the meter's)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from live.bus import BrokerConfig
from live.market import MarketService
from live.protocol import topics_for
from scenarios.config.schema import Scenario

T = 2


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_ingest_keeps_each_households_raw_messages_until_taken(
    e2e_scenario: Scenario, tmp_path: Path
) -> None:
    market = MarketService(e2e_scenario, BrokerConfig(port=1), tmp_path / "state", speed=0)
    ingest = market.ingest
    ingest.report = lambda *a, **k: None  # type: ignore[method-assign]  # no broker here
    root = topics_for(e2e_scenario).root
    start = market.stamps[0].timestamp()
    ingest.open(T)
    reading = b'{"v": 1, "t": 2, "generation_kwh": 0.5, "demand_kwh": 0.25}'
    first = b'{"v":1,"t":2,"orders":[{"side":"buy","energy_kwh":0.5,"price_per_kwh":0.2}]}'
    second = b'{"v":1,"t":2,"orders":[{"side":"buy","energy_kwh":0.4,"price_per_kwh":0.2}]}'
    ingest.on_agent(f"{root}/agents/h0001/reading", reading)
    ingest.on_agent(f"{root}/agents/h0001/orders", first)
    ingest.on_agent(f"{root}/agents/h0001/orders", second)  # replaces the first
    ingest.on_agent(f"{root}/agents/h0002/orders", b"{not json")  # rejected: h0002
    ingest.on_agent(f"{root}/agents/h0002/orders", b'{"v": 1, "t": 1, "orders": []}')  # stale
    ingest.on_agent(f"{root}/agents/h0021/reading", reading)  # h0021 is tas-1's: rejected
    ingest.on_agent(f"{root}/agents/nobody/reading", reading)  # no household: not counted
    # gen-1 backs h0024: a baseline, the same sample again (a repeat), then energy
    s0 = json.dumps({"ts": start + T * 1800, "import_kwh": 10.0, "export_kwh": 1.0}).encode()
    s1 = json.dumps({"ts": start + T * 1800 + 900, "import_kwh": 10.5, "export_kwh": 1.0})
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", s0)
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", s0)
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", s1.encode())
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", b'{"ts": "soon"}')  # rejected
    assert market.trackers["gen-1"].duplicates == 1
    assert sum(market.stats.rejected.values()) == 5

    with ingest.lock:
        taken = ingest.provenance.take()
    got = taken.messages(market.ids)
    assert got.signed == {
        "h0001": [sha(reading), sha(second)],
        "h0024": [sha(s0), sha(s1.encode())],
    }
    assert got.raw[sha(second)] == second and got.raw[sha(s0)] == s0
    assert len(got.raw) == 4
    assert got.rejected == {"h0002": 2, "h0021": 1, "h0024": 1}
    # taken: the next interval starts empty
    again = ingest.provenance.take().messages(market.ids)
    assert again.signed == {} and again.raw == {} and again.rejected == {}
    market.ledger.close()
