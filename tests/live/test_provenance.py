"""The raw signed messages each household's inputs came from (live/provenance.py), kept
by the ingest for the audit ledger: the bytes as received, hashed by SHA-256; a later
message replaces an earlier one; a meter's samples taken as energy (not its repeats);
unsigned messages are not kept; rejections counted by the topic's household (or the
meter's)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from live.bus import BrokerConfig
from live.market import MarketService
from live.protocol import topics_for
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.schema import Scenario

T = 2


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_ingest_keeps_each_households_signed_messages_until_taken(
    e2e_scenario: Scenario, tmp_path: Path
) -> None:
    h1, h4, tas = KeyPair.new("h0001"), KeyPair.new("h0004"), KeyPair.new("tas-1")
    keys = tmp_path / "keys.json"
    Registry({k.id: k.public_b64 for k in (h1, h4, tas)}).save(keys)
    live = e2e_scenario.live.model_copy(update={"keys": str(keys)})
    scenario = e2e_scenario.model_copy(update={"live": live})
    market = MarketService(scenario, BrokerConfig(port=1), tmp_path / "state", speed=0)
    ingest = market.ingest
    ingest.report = lambda *a, **k: None  # type: ignore[method-assign]  # no broker here
    root = topics_for(scenario).root

    def signed(key: KeyPair, payload: dict) -> bytes:
        return json.dumps(key.sign(payload), indent=1).encode()  # any spacing: as received

    ingest.open(T)
    reading = signed(h1, {"v": 1, "t": T, "generation_kwh": 0.5, "demand_kwh": 0.25})
    order = {"side": "buy", "energy_kwh": 0.5, "price_per_kwh": 0.2}
    first = signed(h1, {"v": 1, "t": T, "orders": [order]})
    second = signed(h1, {"v": 1, "t": T, "orders": [{**order, "energy_kwh": 0.4}]})
    ingest.on_agent(f"{root}/agents/h0001/reading", reading)
    ingest.on_agent(f"{root}/agents/h0001/orders", first)
    ingest.on_agent(f"{root}/agents/h0001/orders", second)  # replaces the first
    forged = signed(h1, {"v": 1, "t": T, "generation_kwh": 9.0, "demand_kwh": 0.0})
    ingest.on_agent(f"{root}/agents/h0004/reading", forged)  # h0001's key: rejected, h0004
    h4_reading = signed(h4, {"v": 1, "t": T, "generation_kwh": 0.5, "demand_kwh": 0.25})
    ingest.on_agent(f"{root}/agents/h0004/reading", h4_reading)  # then replaced unsigned
    unsigned = b'{"v": 1, "t": 2, "generation_kwh": 0.5, "demand_kwh": 0.25}'
    ingest.on_agent(f"{root}/agents/h0003/reading", unsigned)  # accepted, nothing to keep
    ingest.on_agent(f"{root}/agents/h0004/reading", unsigned)
    ingest.on_agent(f"{root}/agents/h0002/orders", b"{not json")  # rejected: h0002
    ingest.on_agent(f"{root}/agents/h0002/orders", b'{"v": 1, "t": 1, "orders": []}')  # stale
    ingest.on_agent(f"{root}/agents/h0021/reading", unsigned)  # h0021 is tas-1's: rejected
    ingest.on_agent(f"{root}/agents/nobody/reading", unsigned)  # no household: not counted
    ingest.settle()  # the verifier pool's checks applied, in arrival order
    assert ingest.book.readings.keys() == {0, 2, 3}
    # tas-1 backs h0021: a baseline, the same sample again (a repeat), then energy; an
    # unsigned gen-1 sample (h0024) is taken as energy, with nothing to keep
    sensor = "tele/SENSOR"

    def sample(clock: str, total: float) -> dict:
        return {"Time": f"2026-06-01T{clock}", "ENERGY": {"Total": total, "ExportActive": 1.0}}

    s0 = signed(tas, sample("01:00:00", 10.0))
    s1 = signed(tas, sample("01:15:00", 10.5))
    ingest.on_meter(f"{root}/meters/tasmota/tas-1/{sensor}", s0)
    ingest.on_meter(f"{root}/meters/tasmota/tas-1/{sensor}", s0)
    ingest.on_meter(f"{root}/meters/tasmota/tas-1/{sensor}", s1)
    start = market.stamps[0].timestamp() + T * 1800
    gen = json.dumps({"ts": start, "import_kwh": 1.0}).encode()
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", gen)
    ingest.on_meter(f"{root}/meters/generic/gen-1/reading", b'{"ts": "soon"}')  # rejected
    ingest.settle()  # the pool checked the samples too, in arrival order
    assert market.trackers["tas-1"].duplicates == 1 and market.trackers["gen-1"].last
    assert sum(market.stats.rejected.values()) == 6

    with ingest.lock:
        taken = ingest.provenance.take()
        rejected = ingest.rejected_rows(ingest.book)
    got = taken.messages(market.ids, rejected)
    assert got.signed == {"h0001": [sha(reading), sha(second)], "h0021": [sha(s0), sha(s1)]}
    assert got.raw[sha(second)] == second and got.raw[sha(s0)] == s0
    assert len(got.raw) == 4
    assert got.rejected == {"h0002": 2, "h0004": 1, "h0021": 1, "h0024": 1}
    # taken: the next interval starts empty
    again = ingest.provenance.take().messages(market.ids)
    assert again.signed == {} and again.raw == {} and again.rejected == {}
    market._close()
