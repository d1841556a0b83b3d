"""The live market's audit ledger (live/audit.py) over a real Mosquitto.

- A run whose market is killed with SIGKILL mid-run and restarted leaves a ledger in which
  every interval is entered once (the restarted session numbered 1) and which
  ``p2pgrid ledger verify`` accepts; a bill received on ``agents/<id>/bill`` verifies
  against the retained ``ledger/checkpoint`` as received, and a changed one does not;
  the checkpoints and bills follow ``live/asyncapi.yaml``.
- A market stopped between its audit write and its state commit: the restart cuts the
  entry the state ledger never committed and enters the interval again, once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from live.contract import contract
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import topics_for
from scenarios.audit.bills import verify_bill
from scenarios.audit.keys import fingerprint
from scenarios.audit.ledger import read_chain, read_checkpoints
from scenarios.config.loader import load_scenario

INTERVALS, EVERY = 24, 8
AUDITED = f"""
name = "live-audited"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 7
[community]
households = 12
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
reconnect_grace_s = 1.0
checkpoint_every = {EVERY}
[[live.meters]]
id = "tas-1"
format = "tasmota"
household = "h0011"
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0012"
"""
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


def ledger_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ledger", *args], capture_output=True, text=True, timeout=300, check=False
    )


@contextmanager
def recording(mqtt_client: Any, config: Any, root: str) -> Iterator[dict[str, list[Any]]]:
    """Every checkpoint and bill as received (topic, payload), and what about them breaks
    the AsyncAPI contract."""
    got: dict[str, list[Any]] = {"checkpoint": [], "bill": [], "contract": []}

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        kind = "checkpoint" if msg.topic.endswith("/checkpoint") else "bill"
        got[kind].append((msg.topic, json.loads(msg.payload)))
        got["contract"].extend(contract().check(msg.topic, bytes(msg.payload)))

    subscribe = [(f"{root}/agents/+/bill", 1), (f"{root}/ledger/checkpoint", 1)]
    with mqtt_client(config, "audit-recorder", subscribe, on_message):
        yield got


def retained_checkpoint(mqtt_client: Any, config: Any, root: str) -> dict[str, Any]:
    """The retained checkpoint, as a client that subscribes now receives it."""
    got: list[bytes] = []
    with mqtt_client(
        config,
        "late-reader",
        [(f"{root}/ledger/checkpoint", 1)],
        lambda c, u, m: got.append(m.payload),
    ):
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    assert got, "no retained checkpoint"
    return json.loads(got[0])


def interval_entries(state: Path) -> list[dict[str, Any]]:
    return [e["header"] for e in read_chain(state / "ledger") if e["header"]["kind"] == "interval"]


def test_a_live_ledger_killed_and_restarted_verifies_and_so_do_its_bills(
    mosquitto, live_cli: Any, live_clients: Any, mqtt_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "audited.toml"
    path.write_text(AUDITED, encoding="utf-8")
    scenario = load_scenario(path)
    root = topics_for(scenario).root
    state = tmp_path / "state"
    args = (path, mosquitto.port, state, INTERVALS, "--no-agents")
    with (
        recording(mqtt_client, mosquitto.config, root) as got,
        live_clients(scenario, mosquitto.config) as (fleet, _meters),
    ):
        proc = live_cli(*args)
        deadline = time.monotonic() + 90
        while len(interval_entries(state) if (state / "ledger").exists() else []) < 11:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the market did not reach interval 10"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
        killed_at = len(read_ledger(state))
        assert EVERY < killed_at < INTERVALS
        proc = live_cli(*args)
        rc = proc.wait(180)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert rc == 0, err
        assert fleet.wait(20)
        time.sleep(0.5)  # the last bills in flight
    headers = interval_entries(state)
    assert [h["t"] for h in headers] == list(range(INTERVALS)), "an interval twice or missing"
    sessions = [h["session"] for h in headers]
    assert sessions == sorted(sessions) and set(sessions) == {0, 1}
    committed = [r["t"] for r in read_ledger(state)]
    assert committed == list(range(INTERVALS))
    # the state ledger names the audit entries it committed: the last one is the chain's
    chain = list(read_chain(state / "ledger"))
    assert read_ledger(state)[-1]["audit_seq"] == chain[-1]["header"]["seq"]
    # each interval entry carries the settlements as published and the inputs it cleared
    assert all(h["n_settlements"] == 12 for h in headers)
    assert sum(h["n_inputs"] for h in headers) == 12 * INTERVALS  # everyone, every time

    cps = read_checkpoints(state / "ledger")
    assert len(cps) >= INTERVALS // EVERY
    assert cps[-1]["last_entry"] == chain[-1]["header"]["seq"]
    assert got["contract"] == []
    retained = retained_checkpoint(mqtt_client, mosquitto.config, root)
    assert retained == cps[-1]
    bills = [b for topic, b in got["bill"] if topic.endswith("/h0003/bill")]
    bill = bills[-1]
    assert bill["checkpoint"] == retained
    # the bill's total: h0003's costs of the intervals its last checkpoint covers
    covered = range(retained["first_t"], retained["last_t"] + 1)
    costs = {r["t"]: r["settlements"]["h0003"]["cost"] for r in read_ledger(state)}
    assert bill["total_cost"] == pytest.approx(sum(costs[t] for t in covered), abs=1e-9)
    # every household got a bill after every checkpoint; a changed one does not verify
    assert {topic.split("/")[-2] for topic, _ in got["bill"]} == set(fleet.ids)
    assert len(got["bill"]) == 12 * len(cps)
    assert verify_bill(bill, retained).ok
    forged = json.loads(json.dumps(bill))
    forged["items"][0]["settlement"]["settlement"]["cost"] -= 0.01
    forged["total_cost"] -= 0.01
    assert not verify_bill(forged, retained).ok

    # the command line: the bill alone against the checkpoint, then the whole ledger
    bill_file, forged_file = tmp_path / "bill.json", tmp_path / "forged.json"
    cp_file = tmp_path / "cp.json"
    bill_file.write_text(json.dumps(bill), encoding="utf-8")
    forged_file.write_text(json.dumps(forged), encoding="utf-8")
    cp_file.write_text(json.dumps(retained), encoding="utf-8")
    ok = ledger_cli("verify", "--bill", str(bill_file), "--checkpoint", str(cp_file))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = ledger_cli("verify", "--bill", str(forged_file), "--checkpoint", str(cp_file))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    verified = ledger_cli("verify", str(state))
    assert verified.returncode == 0, verified.stdout + verified.stderr


class Killed(BaseException):
    """The market's process dies here (not an Exception: nothing handles it)."""


def test_an_audit_entry_the_state_ledger_never_committed_is_cut_on_restart(
    mosquitto, live_clients: Any, tmp_path: Path, market_thread: Any
) -> None:
    path = tmp_path / "audited.toml"
    path.write_text(AUDITED.replace('check = "pyomo"', 'check = "off"'), encoding="utf-8")
    scenario = load_scenario(path)
    state, total, dies_at = tmp_path / "state", 12, 5
    market = MarketService(scenario, mosquitto.config, state, speed=0, intervals=total)
    append = market.ledger.append

    def dies_before_committing(record: dict[str, Any]) -> None:
        if record["t"] == dies_at:
            raise Killed
        append(record)

    market.ledger.append = dies_before_committing  # type: ignore[method-assign]
    with live_clients(scenario, mosquitto.config) as (fleet, _meters):
        with pytest.raises(Killed):
            market.run()
        # the audit chain holds interval 5, which no state record names
        assert interval_entries(state)[-1]["t"] == dies_at
        assert [r["t"] for r in read_ledger(state)] == list(range(dies_at))
        logged: list[str] = []
        again = MarketService(
            scenario, mosquitto.config, state, speed=0, intervals=total, log=logged.append
        )
        running = market_thread(again)
        running.finish(60, "the restarted market did not finish")
        assert fleet.wait(20)
    assert again.audit.cut == 1
    genesis = next(read_chain(state / "ledger"))["header"]
    said = (
        f"(session 1, 1 uncommitted entries cut); market key {fingerprint(genesis['market_key'])}"
    )
    assert any(said in line for line in logged), logged
    headers = interval_entries(state)
    assert [h["t"] for h in headers] == list(range(total))
    assert [h["session"] for h in headers] == [0] * dies_at + [1] * (total - dies_at)
    # no checkpoint ever covered the entry that was cut: each one's entries are in the chain
    chain = [e["hash"] for e in read_chain(state / "ledger")]
    for cp in read_checkpoints(state / "ledger"):
        assert cp["last_entry"] < len(chain)
    verified = ledger_cli("verify", str(state))
    assert verified.returncode == 0, verified.stdout + verified.stderr
