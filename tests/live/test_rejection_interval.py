"""A rejected message counts against its household (``rejected_per_interval``) in the
interval it arrived for, whenever the verdict comes: with the verifier pool's verdicts
held back past the gate (each batch's applied 0.6 s after it comes back), a forgery that
arrives after the gate closed counts in that interval, as it does when checked on
arrival; one that arrives once the interval is cleared counts in the next. Without a
broker (the market's ingest)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from scenarios.audit.keys import KeyPair
from scenarios.config.loader import load_scenario

from .conftest import signed_file


@pytest.mark.parametrize("workers", [0, 1])
def test_a_refusal_counts_in_the_interval_the_message_arrived_for(
    tmp_path: Path, ingest_harness: Any, workers: int
) -> None:
    path, pairs = signed_file(tmp_path, "late-refusal", workers, n=2)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    ingest, stranger = h.ingest, KeyPair.new("h0002")
    topic = f"{h.root}/agents/h0002/reading"
    victim = ingest.row["h0002"]

    def forged_body(t: int) -> dict[str, Any]:
        return {"v": 1, "t": t, "generation_kwh": 3.0, "demand_kwh": 0.0}

    def forged(t: int) -> bytes:  # h0002's reading, signed by another key
        return json.dumps(stranger.sign(forged_body(t))).encode()

    def clear() -> dict[int, int]:  # what the market does with a closed gate
        ingest.settle_refusals()
        with ingest.lock:
            return ingest.rejected_rows(ingest.book)

    try:
        if ingest.verifier is not None:
            ingest.verifier.warm()
            apply = ingest.verifier.apply

            def slow(contexts: list[Any], verdicts: list[Any]) -> None:
                time.sleep(0.6)
                apply(contexts, verdicts)

            ingest.verifier.apply = slow
        ingest.open(0)
        h.agent("h0001", "reading", pairs["h0001"].sign(forged_body(0)))  # its own: taken
        ingest.settle()  # the gate closes
        with ingest.lock:
            ingest.book.closed = True
        began = time.monotonic()
        ingest.on_agent(topic, forged(0))  # after the gate, before the clearing
        assert clear() == {victim: 1}
        if workers:  # the verdict was held back past the gate and waited for
            assert time.monotonic() - began >= 0.5
        # arriving once t=0 is cleared (before the clock of t=1): counted in t=1
        ingest.on_agent(topic, forged(0))
        ingest.open(1)
        ingest.settle()
        assert clear() == {victim: 1}
        assert ingest.carried == {}
        assert [e["reason"].split(":")[0] for e in h.errors] == ["signature"] * 2
        # a verdict that comes after the next interval opened (the pool lagged):
        # counted in that next interval, never lost
        if workers:
            ingest.open(2)
            ingest.on_agent(topic, forged(2))
            ingest.open(3)
            assert ingest.verifier.drain(10) == 0
            assert clear() == {victim: 1}
    finally:
        h.close()
