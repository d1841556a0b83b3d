"""Runs over a real, persistent Mosquitto: ``--speed`` paces the market; a second run on
the same broker (restarted on its persistence file, the first run's retained ``done``
clock still there) settles every interval with every household; a state folder holding
another or a finished run is refused; a run nobody took part in fails; a live run
leaves no empty Parquet files."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from live.fleet import AgentFleet
from live.ledger import read_ledger
from scenarios.config.loader import load_scenario

from .conftest import start_live

RUN_TOML = """
name = "paced"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 15
seed = 3
[community]
households = 6
[grid]
feeder = "ieee33"
check = "pyomo"
"""


def _finish(proc: Any, timeout: float = 120) -> tuple[int, str]:
    rc = proc.wait(timeout)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return rc, err


def _clock_watcher(port: int, root: str) -> tuple[mqtt.Client, dict[int, float]]:
    """Arrival time of each live (not retained) clock."""
    seen: dict[int, float] = {}

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        data = json.loads(m.payload) if m.payload else {}
        if not m.retain and "gate_closes_at" in data and data["t"] not in seen:
            seen[data["t"]] = time.monotonic()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="clock-watcher")
    c.on_message = on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *_: subscribed.set()
    c.on_connect = lambda cl, *_: cl.subscribe(f"{root}/clock", 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert subscribed.wait(10)
    return c, seen


def _retained_clock(port: int, root: str, wait_s: float = 5.0) -> dict[str, Any] | None:
    """The retained clock on the broker (waiting up to ``wait_s`` for one), or None."""
    retained: list[dict[str, Any]] = []
    peek = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="peek")
    peek.on_message = lambda c, u, m: retained.append(json.loads(m.payload))
    peek.on_connect = lambda cl, *_: cl.subscribe(f"{root}/clock", 1)
    peek.connect("127.0.0.1", port)
    peek.loop_start()
    deadline = time.monotonic() + wait_s
    while not retained and time.monotonic() < deadline:
        time.sleep(0.05)
    peek.loop_stop()
    peek.disconnect()
    return retained[0] if retained else None


def test_speed_paces_and_a_second_run_on_a_persistent_broker_has_every_household(
    mosquitto, live_clients: Any, tmp_path: Path
) -> None:
    file = tmp_path / "paced.toml"
    file.write_text(RUN_TOML, encoding="utf-8")
    scenario = load_scenario(file)
    root = "p2pgrid/paced"
    watcher, seen = _clock_watcher(mosquitto.port, root)
    state = tmp_path / "run1"
    # the agents in the market's process, the default early closure (off at speed > 0)
    proc = start_live(file, mosquitto.port, state, 12, "--speed", "900")
    rc, err = _finish(proc)
    watcher.loop_stop()
    watcher.disconnect()
    assert rc == 0, err
    assert sorted(seen) == list(range(12))
    gaps = [seen[t + 1] - seen[t] for t in range(11)]
    # --speed 900: one 15-minute interval per second, never faster
    assert seen[11] - seen[0] >= 10.9 and min(gaps) >= 0.9, gaps
    first = read_ledger(state)
    assert [r["t"] for r in first] == list(range(12))
    assert all(r["result"]["counts"]["missing_agents"] == 0 for r in first)
    # the grid check ran, and the live run left no (empty) Parquet file behind
    assert all(r["result"]["grid"] is not None for r in first)
    assert list(tmp_path.glob("run1/**/*.parquet")) == [] and not (state / "grid").exists()

    # the broker restarts on its persistence file: run 1's retained done clock survives
    mosquitto.stop()
    mosquitto.start()
    retained = [_retained_clock(mosquitto.port, root) or {}]
    assert retained[0].get("done") and isinstance(retained[0].get("run"), str)

    # run 2: households started on their own (they adopt the run of the first live clock)
    with live_clients(scenario, mosquitto.config) as (fleet, _meters):
        proc = start_live(file, mosquitto.port, tmp_path / "run2", 4, "--no-agents")
        rc, err = _finish(proc)
        assert rc == 0, err
        assert fleet.wait(20)
    second = read_ledger(tmp_path / "run2")
    assert [r["t"] for r in second] == list(range(4))
    assert [r["result"]["counts"]["missing_agents"] for r in second] == [0] * 4
    assert fleet.runs.run != retained[0]["run"] and fleet.runs.ignored >= 1

    # re-running in run 1's folder: a finished run is refused, never 0 intervals settled
    rc, err = _finish(start_live(file, mosquitto.port, state, 12))
    assert rc == 2 and "already settled intervals 0-11" in " ".join(err.split()), err
    # ... and another scenario's ledger too
    rc, err = _finish(start_live(file, mosquitto.port, state, 20, "--set", "simulation.seed=4"))
    assert rc == 2 and "another scenario" in " ".join(err.split()), err
    # ... while the same scenario with more intervals resumes it
    rc, err = _finish(start_live(file, mosquitto.port, state, 14))
    assert rc == 0, err
    resumed = read_ledger(state)
    assert [r["t"] for r in resumed] == list(range(14))
    assert [r["result"]["counts"]["missing_agents"] for r in resumed[12:]] == [0, 0]


def test_a_run_nobody_takes_part_in_fails(mosquitto, tmp_path: Path) -> None:
    file = tmp_path / "paced.toml"
    file.write_text(RUN_TOML.replace('check = "pyomo"', 'check = "off"'), encoding="utf-8")
    proc = start_live(
        file,
        mosquitto.port,
        tmp_path / "state",
        2,
        "--no-agents",
        "--set",
        "live.complete_timeout_s=0.3",
    )
    rc, err = _finish(proc)
    assert rc == 1 and "no household or meter took part in any of the 2 intervals" in " ".join(
        err.split()
    ), err


def test_households_started_on_a_killed_markets_open_clock_follow_the_next_run(
    mosquitto, tmp_path: Path
) -> None:
    """A market killed while its gate is open leaves a retained clock that looks live (its
    gate still ahead): households started then adopt its run, provisionally; the next run's
    first live clock replaces it, and they take part in every interval of that run."""
    file = tmp_path / "paced.toml"
    file.write_text(RUN_TOML.replace('check = "pyomo"', 'check = "off"'), encoding="utf-8")
    scenario = load_scenario(file)
    root = "p2pgrid/paced"
    dead = start_live(
        file,
        mosquitto.port,
        tmp_path / "dead",
        4,
        "--no-agents",
        "--set",
        "live.complete_timeout_s=300",
    )
    deadline = time.monotonic() + 60
    while "gate_closes_at" not in (stale := _retained_clock(mosquitto.port, root, 0.3) or {}):
        assert time.monotonic() < deadline, "the first market published no clock in 60 s"
    dead.kill()
    _finish(dead)
    assert stale["t"] == 0, stale
    fleet = AgentFleet(scenario, mosquitto.config).start()
    try:
        deadline = time.monotonic() + 10
        while fleet.runs.run is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fleet.runs.run == stale["run"]  # adopted: its gate is still ahead
        proc = start_live(
            file,
            mosquitto.port,
            tmp_path / "next",
            3,
            "--no-agents",
            "--set",
            "live.complete_timeout_s=5",
        )
        rc, err = _finish(proc)
        assert rc == 0, err
        records = read_ledger(tmp_path / "next")
        assert [r["t"] for r in records] == [0, 1, 2]
        assert [r["result"]["counts"]["missing_agents"] for r in records] == [0, 0, 0]
        assert [r["result"]["counts"]["readings"] for r in records] == [6, 6, 6]
        assert fleet.wait(20)
    finally:
        fleet.stop()
    assert fleet.runs.run not in (None, stale["run"])
