"""MQTT delivers at least once, and a market restarted from its ledger repeats the clock of
the interval it was killed on: a household's byte-identical copy of what the interval
before took, arriving after that gate closed, is dropped as a duplicate, not refused and
not counted against the household's reliability; a changed message for that interval is
still refused as stale. Checked in process and through the verifier pool."""

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
    h.ingest.open(1)
    h.agent("h0001", "reading", body)  # the same bytes again, after the gate of t=0
    h.agent("h0001", "orders", orders)  # and the orders, re-encoded: the same bytes
    assert not h.errors
    assert h.market.stats.duplicates == 2
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
    assert h.market.stats.duplicates == 2
    h.close()
