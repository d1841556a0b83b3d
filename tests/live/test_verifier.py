"""The verifier pool (``[live] verify_workers``, :mod:`live.verifier`): signatures checked
in worker processes change nothing but where the work is done.

Over a real Mosquitto: a signed community with an attacker forging h0002's messages
settles to the cent the same with the pool as without it, with the same rejections on
``errors``; a worker killed with SIGKILL mid-run loses nothing (the pool restarts and
every household is settled as the batch engine settles it); a household's later orders
replace its earlier ones whether both were checked in one batch or in two. Without a
broker: thousands of signed messages in flight when the worker is killed are all
applied, each once, in arrival order, with the verdict the in-process check gives."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import live.verifier as verifier_module
from live.ledger import read_ledger
from live.market import MarketService
from live.signatures import Signatures
from live.verifier import VerifierPool, worker_count
from live.verify_worker import READING, checker
from scenarios.audit.keys import KeyPair
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.runner import run as run_batch
from scenarios.errors import ScenarioError

from .conftest import signed_file

INTERVALS = 4
ATTACKS = 5
"""The attacker's messages at each clock (:func:`run_attacked`)."""


def test_verify_workers_is_checked_and_auto_needs_keys(tmp_path: Path, monkeypatch) -> None:
    path, _ = signed_file(tmp_path / "a", "auto", "auto")
    live = load_scenario(path).live
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert worker_count(live) == 7  # "auto": one CPU left to the market
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert worker_count(live) == 1  # but at least one worker
    assert worker_count(live.model_copy(update={"keys": ""})) == 0  # nothing to check
    assert worker_count(live.model_copy(update={"verify_workers": 3})) == 3
    for bad, words in (("-1", "between 0 and 256"), ('"many"', "auto")):
        text = path.read_text().replace('verify_workers = "auto"', f"verify_workers = {bad}")
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError, match=f"live.verify_workers.*{words}"):
            load_scenario(path)


def run_attacked(
    scenario: Scenario,
    config: Any,
    state: Path,
    live_clients: Any,
    market_thread: Any,
    waiting: Any,
    on_clock: Any = None,
    hold_gate: bool = False,
) -> tuple[MarketService, list[dict[str, Any]], int]:
    """A signed, unpaced run (each gate closing once every household is in) with an
    attacker forging h0002's reading and orders at every clock but the last; the market,
    the reports on ``errors``, and the attacks sent. ``hold_gate``: a gate closes only
    once the attacks sent at its clock have been refused too, so that each refusal
    counts in the interval of its clock however slowly the machine runs."""
    market = MarketService(scenario, config, state, speed=0, intervals=INTERVALS)
    if hold_gate:
        every_one_in = market.gate.complete

        def complete(t: int) -> bool:
            attacks = ATTACKS * min(t + 1, INTERVALS - 1)
            return every_one_in(t) and sum(market.stats.rejected.values()) >= attacks

        market.gate.complete = complete  # type: ignore[method-assign]
    root = market.topics.root
    stranger = KeyPair.new("h0002")
    errors: list[dict[str, Any]] = []
    sent = [0]
    lock = threading.Lock()
    other = KeyPair.load(Path(scenario.live.keys).parent / "h0001.key")

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            if msg.topic == f"{root}/errors":
                errors.append(json.loads(msg.payload))
                return
            clock = json.loads(msg.payload)
            t = clock.get("t")
            if msg.retain or not isinstance(t, int) or clock.get("done"):
                return
            if on_clock is not None:
                on_clock(market, t)
            if t >= INTERVALS - 1:
                return
            body = {"v": 1, "t": t, "generation_kwh": 3.0, "demand_kwh": 0.0}
            attacks = (
                ("reading", body),
                ("reading", other.sign(body)),
                ("reading", stranger.sign(body)),
                ("orders", stranger.sign({"v": 1, "t": t, "orders": []})),
                ("orders", b"{not json"),
            )
            for what, payload in attacks:
                data = payload if isinstance(payload, bytes) else json.dumps(payload)
                client.publish(f"{root}/agents/h0002/{what}", data, qos=1)
                sent[0] += 1

    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"attacker-{state.name}")
    attacker.on_message = on_message
    subscribed = threading.Event()
    attacker.on_connect = lambda c, *_: c.subscribe([(f"{root}/errors", 1), (f"{root}/clock", 1)])
    attacker.on_subscribe = lambda *_: subscribed.set()
    attacker.connect(config.host, config.port)
    attacker.loop_start()
    try:
        assert subscribed.wait(10)
        with live_clients(scenario, config) as (fleet, _meters):
            running = market_thread(market)
            running.finish(120)
            fleet.wait(20)
        waiting(lambda: len([e for e in errors if "h0002" in e["topic"]]) >= sent[0], "errors", 10)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
    return market, errors, sent[0]


def settlements(state: Path) -> dict[int, dict[str, Any]]:
    return {r["t"]: r["settlements"] for r in read_ledger(state) if "settlements" in r}


def test_pool_on_and_off_settle_and_reject_alike(
    mosquitto: Any, live_clients: Any, market_thread: Any, waiting: Any, tmp_path: Path
) -> None:
    got = {}
    for workers in (0, 1):
        path, _ = signed_file(tmp_path / f"w{workers}", f"pool-{workers}", workers)
        scenario = load_scenario(path)
        state = tmp_path / f"state-{workers}"
        # each gate held until the attacks of its clock are refused: the reliability
        # scores count a refusal in the interval its message arrived for, and this
        # compares the pool's effect, not the machine's pace (a verdict that comes after
        # the gate is tests/live/test_rejection_interval.py's)
        market, errors, sent = run_attacked(
            scenario, mosquitto.config, state, live_clients, market_thread, waiting, hold_gate=True
        )
        root = market.topics.root
        assert (market.ingest.verifier is None) == (workers == 0)
        if workers:  # every reading and order message went through the workers
            stats = market.ingest.verifier.stats
            assert stats.messages == market.stats.readings * 2 + sent and stats.restarts == 0
        assert len(market.results) == INTERVALS and sent == ATTACKS * (INTERVALS - 1)
        for r in market.results:
            assert r["counts"]["missing_agents"] == 0 and r["counts"]["readings"] == 4
        reasons = sorted((e["topic"].replace(root, ""), e["reason"]) for e in errors)
        got[workers] = (settlements(state), reasons, dict(market.stats.rejected))
    (s0, r0, c0), (s1, r1, c1) = got[0], got[1]
    assert s0 == s1 and len(s0) == INTERVALS  # every household, to the last digit
    assert r0 == r1 and len(r0) == ATTACKS * (INTERVALS - 1)
    assert c0 == c1 == {"signature": 4 * (INTERVALS - 1), "invalid": INTERVALS - 1}
    assert sum(1 for _, reason in r0 if reason.startswith("signature: ")) == 4 * (INTERVALS - 1)


def test_a_killed_worker_loses_nothing(
    mosquitto: Any, live_clients: Any, market_thread: Any, waiting: Any, tmp_path: Path
) -> None:
    path, _ = signed_file(tmp_path / "kill", "pool-kill", 1)
    scenario = load_scenario(path)
    killed: list[int] = []

    def kill(market: MarketService, t: int) -> None:
        if t in (1, 2):  # as the households answer the clock: batches in flight
            time.sleep(0.005 * t)
            for pid in market.ingest.verifier.pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    state = tmp_path / "state"
    market, errors, sent = run_attacked(
        scenario, mosquitto.config, state, live_clients, market_thread, waiting, kill
    )
    stats = market.ingest.verifier.stats
    assert len(killed) >= 2 and stats.restarts >= 2
    said = [e for e in errors if e["reason"].startswith("verifier: a worker process died")]
    assert len(said) == stats.restarts
    # nothing lost: every household settled in every interval, only the attacks rejected
    assert len(market.results) == INTERVALS
    for r in market.results:
        assert r["counts"]["missing_agents"] == 0 and r["counts"]["readings"] == 4
    assert sum(market.stats.rejected.values()) == sent
    assert market.stats.readings == 4 * INTERVALS
    # and settled as the batch engine settles the same community
    run_batch(scenario, tmp_path / "batch")
    import pandas as pd

    agents = pd.read_parquet(tmp_path / "batch" / "agents.parquet")
    agents["agent_id"] = agents["agent_id"].astype(str)
    batch = agents.set_index(["t", "agent_id"])
    for t, by_agent in settlements(state).items():
        for agent, s in by_agent.items():
            for field in ("cost", "demand_kwh", "generation_kwh", "grid_import_kwh"):
                assert s[field] == pytest.approx(batch.loc[(t, agent)][field], abs=1e-6)


def test_a_later_order_replaces_an_earlier_one_in_one_batch_and_across_two(
    mosquitto: Any, market_thread: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # both households are ours; a batch goes out 0.3 s after its first message, so
    # messages sent together share one and messages 1 s apart do not
    monkeypatch.setattr(verifier_module, "FLUSH_S", 0.3)
    batches: list[list[str]] = []
    flush = VerifierPool._flush

    def recording(self: VerifierPool) -> None:
        if self.pending:
            batches.append([f"{c[2]}/{c[1].rsplit('/', 1)[1]}" for c in self.contexts])
        flush(self)

    monkeypatch.setattr(VerifierPool, "_flush", recording)
    path, pairs = signed_file(
        tmp_path / "order", "pool-order", 1, n=2, extra='external = ["h0001", "h0002"]'
    )
    scenario = load_scenario(path)
    config = mosquitto.config
    market = MarketService(scenario, config, tmp_path / "state", speed=0, intervals=2)
    root = market.topics.root

    def orders(agent: str, t: int, kwh: float) -> str:
        side = "buy" if agent == "h0001" else "sell"
        body = {"v": 1, "t": t, "orders": [{"side": side, "energy_kwh": kwh, "price_per_kwh": 0.2}]}
        return json.dumps(pairs[agent].sign(body))

    def reading(agent: str, t: int) -> str:
        gen, dem = (0.0, 1.0) if agent == "h0001" else (1.0, 0.0)
        body = {"v": 1, "t": t, "generation_kwh": gen, "demand_kwh": dem}
        return json.dumps(pairs[agent].sign(body))

    def answer(client: mqtt.Client, t: int) -> None:
        for agent in ("h0001", "h0002"):
            base = f"{root}/agents/{agent}"
            client.publish(f"{base}/orders", orders(agent, t, 0.9), qos=1)
            if t == 1:  # the earlier order goes out in a batch of its own
                time.sleep(1.0)
            client.publish(f"{base}/orders", orders(agent, t, 0.3), qos=1)
            client.publish(f"{base}/reading", reading(agent, t), qos=1)

    answered: set[int] = set()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        clock = json.loads(msg.payload)
        t = clock.get("t")
        if isinstance(t, int) and not clock.get("done") and t not in answered:
            answered.add(t)
            threading.Thread(target=answer, args=(client, t), daemon=True).start()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="both-households")
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"{root}/clock", 1)
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        market_thread(market).finish(60)
    finally:
        client.loop_stop()
        client.disconnect()
    assert len(market.books) == 2 and sum(market.stats.rejected.values()) == 0
    for book in market.books:  # only the later 0.3 kWh orders are in the book
        assert sorted(zip(book["orders"]["agent"], book["orders"]["energy_kwh"], strict=True)) == [
            ("h0001", 0.3),
            ("h0002", 0.3),
        ]
    for r in market.results:
        assert r["volume_kwh"] == pytest.approx(0.3)
    # t=0: each household's two orders were checked in one batch; t=1: in two
    sent = [m for b in batches for m in b]
    assert sent.count("h0001/orders") == sent.count("h0002/orders") == 4
    first = [b for b in batches if b.count("h0001/orders") == 2]
    assert first, batches
    apart = [b for b in batches if b == ["h0001/orders"]]
    assert apart, batches


def test_messages_in_flight_when_the_worker_dies_are_applied_once_in_order(
    tmp_path: Path,
) -> None:
    path, pairs = signed_file(tmp_path / "direct", "pool-direct", 1, n=8)
    live = load_scenario(path).live
    stranger = KeyPair.new("h0003")
    items = []
    for i in range(4000):
        agent = f"h000{i % 8 + 1}"
        body = {"v": 1, "t": i, "generation_kwh": 0.0, "demand_kwh": 0.1}
        signer = stranger if i % 97 == 0 else pairs[agent]
        items.append((READING, agent, i, json.dumps(signer.sign(body)).encode()))
    items.append((READING, "h0001", 0, b"{not json"))
    unsigned = json.dumps({"v": 1, "t": 0, "generation_kwh": 0.0, "demand_kwh": 0.1})
    items.append((READING, "h0002", 0, unsigned.encode()))  # unsigned: required
    hours = load_scenario(path).simulation.interval_hours
    want = checker(live, hours, Signatures.for_live(live)).batch(items, None)[0]
    got: list[tuple[int, Any]] = []
    pool = VerifierPool(live, hours, 1, lambda i, v: got.extend(zip(i, v, strict=True)), batch=64)
    try:
        pool.warm()
        for i, item in enumerate(items):
            pool.submit(item, i)
            if i == 200:  # the worker is busy with the first batches
                for pid in pool.pids():
                    os.kill(pid, signal.SIGKILL)
        assert pool.drain(120) == 0
    finally:
        pool.close()
    assert pool.stats.restarts >= 1
    assert [i for i, _ in got] == list(range(len(items)))  # each once, in arrival order
    assert [v for _, v in got] == want
    assert sum(v[0] is True for v in want) == len(items) - 2 - len(range(0, 4000, 97))
    assert want[1][2] == (0.0, 0.1, None, 0.0, 0.0, 0.0, None, 0.0)  # the decoded reading
    assert str(want[0]) == "signature: signed by key 'h0003', expected 'h0001'"
    assert str(want[-1]).startswith("signature: unsigned") and "invalid JSON" in str(want[-2])


def test_a_gate_waits_for_the_pool_boundedly_and_clears_nothing_unverified(
    tmp_path: Path, ingest_harness: Any
) -> None:
    path, pairs = signed_file(tmp_path / "stall", "pool-stall", 1, n=4)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    ingest = h.ingest
    try:
        ingest.verifier.warm()
        ingest.open(0)
        body = {"v": 1, "t": 0, "generation_kwh": 0.0, "demand_kwh": 0.5}
        h.agent("h0001", "reading", pairs["h0001"].sign(body))  # settled: taken
        assert set(ingest.book.readings) == {0}
        (pid,) = ingest.verifier.pids()
        os.kill(pid, signal.SIGSTOP)  # the worker hangs (alive: no restart)
        try:
            root = h.root
            for agent in ("h0002", "h0003"):
                ingest.on_agent(
                    f"{root}/agents/{agent}/reading", json.dumps(pairs[agent].sign(body)).encode()
                )
            began = time.monotonic()
            ingest.settle(0.5)  # what the gate does before it closes the book
            assert 0.5 <= time.monotonic() - began < 5
            with ingest.lock:
                ingest.book.closed = True
                assert set(ingest.book.readings) == {0}  # nothing unverified in the book
        finally:
            os.kill(pid, signal.SIGCONT)
        assert ingest.verifier.drain(30) == 0
        assert set(ingest.book.readings) == {0}
        reasons = [e["reason"] for e in h.errors]
        assert reasons[0].startswith("verifier: 2 messages still being checked 0.5 s after")
        assert reasons[1:] == ["the gate of t=0 is closed"] * 2
        assert h.errors[0]["count"] == 2 and ingest.verifier.stats.drain_timeouts == 1
    finally:
        h.close()


def test_a_hung_worker_is_killed_and_its_batch_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier_module, "HUNG_S", 1.0)
    path, pairs = signed_file(tmp_path / "hung", "pool-hung", 1, n=2)
    live = load_scenario(path).live
    got: list[tuple[int, Any]] = []
    hours = load_scenario(path).simulation.interval_hours
    pool = VerifierPool(live, hours, 1, lambda i, v: got.extend(zip(i, v, strict=True)))
    try:
        pool.warm()
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        body = pairs["h0002"].sign({"v": 1, "t": 0, "generation_kwh": 0.0, "demand_kwh": 0.1})
        pool.submit((READING, "h0002", 0, json.dumps(body).encode()), 0)
        pool.submit((READING, "h0001", 0, json.dumps(body).encode()), 1)  # h0002's on h0001's
        assert pool.drain(60) == 0
    finally:
        pool.close()
    assert pool.stats.restarts == 1 and pid not in pool.pids()
    assert [(i, v if isinstance(v, str) else v[0]) for i, v in got] == [
        (0, True),
        (1, "signature: signed by key 'h0002', expected 'h0001'"),
    ]
