"""The verifier pool and flood control, meter samples (:mod:`live.verifier`,
:meth:`live.rejections.Rejections.flooding`): messages handed to the pool count while
they wait for their verdicts, so a burst sent before the first verdict reaches the pool
``max_messages_per_interval`` at a time, not all; a meter's samples are checked in the
pool and taken in arrival order (its energy adds up as without the pool)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from agents.meters.base import Sample
from agents.meters.formats import meter_format
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario

from .conftest import signed_file

LIMIT = 12  # [live] max_messages_per_interval, the default


def test_a_burst_before_the_first_verdict_reaches_the_pool_limit_at_a_time(
    tmp_path: Path, ingest_harness: Any
) -> None:
    path, pairs = signed_file(tmp_path / "burst", "pool-burst", 1, n=2)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    ingest, root = h.ingest, h.root
    pool = ingest.verifier
    try:
        pool.warm()
        ingest.open(0)
        forged = pairs["h0002"].sign({"v": 1, "t": 0, "generation_kwh": 9.0, "demand_kwh": 0.0})
        own = pairs["h0001"].sign({"v": 1, "t": 0, "generation_kwh": 0.0, "demand_kwh": 0.5})
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGSTOP)  # no verdict comes back while the burst arrives
        try:
            for _ in range(100):  # h0002's key on h0001's topic: each a full check
                ingest.on_agent(f"{root}/agents/h0001/reading", json.dumps(forged).encode())
            # h0001 itself, while LIMIT forged messages still wait: held back
            ingest.on_agent(f"{root}/agents/h0001/reading", json.dumps(own).encode())
            assert pool.submitted == LIMIT
            assert ingest.book.inflight["h0001"] == LIMIT
            assert ingest.book.flooded["h0001"] == 100 + 1 - LIMIT
        finally:
            os.kill(pid, signal.SIGCONT)
        assert pool.drain(60) == 0
        assert ingest.book.inflight["h0001"] == 0 and not ingest.book.readings
        signature = [e for e in h.errors if e["reason"].startswith("signature:")]
        assert len(signature) == LIMIT
        # once the verdicts are back, h0001's own reading goes through again (not complete)
        h.agent("h0001", "reading", own)
        assert ingest.book.readings[0].demand_kwh == 0.5
        assert pool.submitted == LIMIT + 1
    finally:
        h.close()


def test_meter_samples_are_checked_in_the_pool_in_arrival_order(
    tmp_path: Path, ingest_harness: Any
) -> None:
    meters = '[[live.meters]]\nid = "tas-1"\nhousehold = "h0001"\nformat = "tasmota"\n'
    path, pairs = signed_file(tmp_path / "meter", "pool-meter", 1, n=2)
    path.write_text(path.read_text(encoding="utf-8") + meters, encoding="utf-8")
    keys = Registry.load(path.parent / "keys" / "keys.json")
    tas = KeyPair.new("tas-1")
    Registry({**{i: keys.public_b64(i) for i in pairs}, "tas-1": tas.public_b64}).save(
        path.parent / "keys" / "keys.json"
    )
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    ingest, root = h.ingest, h.root
    try:
        ingest.verifier.warm()
        ingest.open(0)
        tz, start = ingest.tz, h.market.stamps[0].timestamp()
        fmt = meter_format("tasmota")
        topic = f"{root}/meters/tasmota/tas-1/tele/SENSOR"
        totals = [100.0 + 0.05 * i for i in range(21)]  # 20 steps of 50 Wh, 1 kWh
        for i, total in enumerate(totals):
            (sensor,) = fmt.encode(Sample(start + 60 * i, total, 0.0, 0.5), tz).values()
            body = tas.sign(sensor) if i != 7 else pairs["h0001"].sign(sensor)  # one forged
            ingest.on_meter(topic, json.dumps(body).encode())
        ingest.settle()
        tracker = h.market.trackers["tas-1"]
        assert h.market.stats.meter_samples == 20  # the forged one refused
        assert [e["reason"] for e in h.errors] == [
            "signature: signed by key 'h0001', expected 'tas-1'"
        ]
        assert tracker.last is not None and tracker.last.import_kwh == totals[-1]
        # taken in arrival order: the 50 Wh steps (one of them 100 Wh, past the forged
        # sample) add up to the counter's 1 kWh, nothing counted as a reset
        assert tracker.energy[0][0] == pytest.approx(1.0, abs=1e-9) and tracker.resets == 0
    finally:
        h.close()
