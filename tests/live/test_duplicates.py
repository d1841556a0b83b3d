"""MQTT delivers at least once, and a market restarted from its ledger repeats the clock of
the interval it was killed on: a household's byte-identical copy of what the interval
before (or the one being cleared) took, arriving after that gate closed, is dropped as a
duplicate, not refused and not counted against the household's reliability; a changed
message for that interval is still refused as stale. What the broker queued for the
market while it was down, arriving before the restarted market's first gate, is refused
but not counted against the household either. Checked in process and through the
verifier pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scenarios.config.loader import load_scenario

from .conftest import signed_file


@pytest.mark.parametrize("workers", [0, 1])
def test_a_copy_of_what_the_closed_interval_took_is_a_duplicate(
    tmp_path: Path, ingest_harness: Any, workers: int
) -> None:
    path, pairs = signed_file(tmp_path, "dup", workers)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    reading = pairs["h0001"].sign({"v": 1, "t": 0, "generation_kwh": 0.5, "demand_kwh": 0.25})
    orders = pairs["h0001"].sign({"v": 1, "t": 0, "orders": []})
    body = json.dumps(reading).encode()
    h.ingest.open(0)
    h.agent("h0001", "reading", body)
    h.agent("h0001", "orders", orders)
    assert 0 in h.ingest.book.readings and 0 in h.ingest.book.orders and not h.errors
    # the gate closes; the interval is being cleared: a copy now is a duplicate too (a
    # restarted market's queued first answer, after the answer to its repeated clock)
    h.ingest.book.closed = True
    h.agent("h0001", "reading", body)
    assert not h.errors and h.market.stats.duplicates == 1
    h.ingest.open(1)
    h.agent("h0001", "reading", body)  # the same bytes again, after the gate of t=0
    h.agent("h0001", "orders", orders)  # and the orders, re-encoded: the same bytes
    assert not h.errors
    assert h.market.stats.duplicates == 3
    assert sum(h.market.stats.rejected.values()) == 0
    assert h.ingest.rejected_rows(h.ingest.book) == {}
    # a changed reading for t=0 is no copy: refused as stale, counted against h0001
    h.agent("h0001", "reading", pairs["h0001"].sign({**reading, "demand_kwh": 0.3}))
    assert [e["reason"] for e in h.errors] == ["stale interval t=0: the market is collecting t=1"]
    assert h.ingest.rejected_rows(h.ingest.book) == {0: 1}
    # a copy of t=0's reading is not a duplicate two intervals on: the gate it answered
    # is long closed, and it is refused as stale
    h.ingest.open(2)
    h.agent("h0001", "reading", body)
    assert h.errors[-1]["reason"] == "stale interval t=0: the market is collecting t=2"
    assert h.market.stats.duplicates == 3
    h.close()


@pytest.mark.parametrize("workers", [0, 1])
def test_what_came_before_the_first_gate_is_not_counted_against_the_household(
    tmp_path: Path, ingest_harness: Any, workers: int
) -> None:
    """A market killed while its gate of t=0 was open, restarted: its persistent session
    delivers the households' answers to that gate before the new session's first clock.
    They are refused (the gate they answered is gone; the households answer the repeated
    clock), reported, and not counted; the same message once the gate of t=0 is open and
    closed again is late and counts."""
    path, pairs = signed_file(tmp_path, "queued", workers)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    reading = pairs["h0001"].sign({"v": 1, "t": 0, "generation_kwh": 0.5, "demand_kwh": 0.25})
    orders = pairs["h0001"].sign({"v": 1, "t": 0, "orders": []})
    for what, payload in (("reading", reading), ("orders", orders)):
        # queued by the broker, before any gate opened; the pool's verdicts come after
        h.ingest.on_agent(f"{h.root}/agents/h0001/{what}", json.dumps(payload).encode())
    h.ingest.open(0)
    h.ingest.settle()
    assert [e["reason"] for e in h.errors] == ["the gate of t=0 is closed"] * 2
    assert h.ingest.rejected_rows(h.ingest.book) == {}
    h.ingest.open(0)  # the repeated clock's gate: the households answer again
    h.agent("h0001", "reading", reading)
    h.agent("h0001", "orders", orders)
    assert 0 in h.ingest.book.readings and 0 in h.ingest.book.orders and len(h.errors) == 2
    h.ingest.book.closed = True  # the gate closes; a changed reading after it is late
    h.agent("h0001", "reading", pairs["h0001"].sign({**reading, "demand_kwh": 0.3}))
    assert h.errors[-1]["reason"] == "the gate of t=0 is closed"
    assert h.ingest.rejected_rows(h.ingest.book) == {0: 1}
    h.close()
