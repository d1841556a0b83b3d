"""Sources behind the dashboard: run directories (good and broken), replay, the SSE
catch-up protocol, the MQTT payload mapping; and the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from live.dashboard import RunDirError, RunSource, read_run, start_dashboard
from scenarios import load_scenario
from scenarios import run as run_scenario
from scenarios.results.schema import QUANTUM


def test_missing_and_broken_run_directories(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no results directory"):
        read_run(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirError, match=r"missing intervals\.parquet, agents\.parquet"):
        read_run(empty)
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "agents.parquet").write_bytes(b"not parquet at all")
    (broken / "kpis.json").write_text("{", encoding="utf-8")
    with pytest.raises(RunDirError) as err:
        read_run(broken)
    assert "agents.parquet: not a readable Parquet file" in str(err.value)
    assert "kpis.json: not readable JSON" in str(err.value)


def sse_events(url: str, headers: dict[str, str] | None, count: int) -> list[dict]:
    """Read ``count`` SSE events from ``url``."""
    events: list[dict] = []
    with httpx.stream("GET", url, headers=headers, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        ident = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("data: "):
                events.append({"id": ident, **json.loads(line[6:])})
                if len(events) >= count:
                    break
    return events


def test_replay_and_catch_up(run_dir: Path) -> None:
    run = read_run(run_dir)
    n = run.n_intervals
    server = start_dashboard(RunSource(run, replay_speed=400), port=0)
    try:
        base = f"http://127.0.0.1:{server.port}"
        # the whole replay, then its end: n interval events and a status event
        events = sse_events(f"{base}/api/events?since=0", None, n + 1)
        assert [e["t"] for e in events[:n]] == list(range(n))
        assert [e["id"] for e in events] == list(range(1, n + 2))
        assert events[-1]["kind"] == "status" and events[-1]["status"]["state"] == "finished"
        assert events[-1]["kpis"] == run.kpis
        # each event carries its interval's row, as in intervals.parquet
        for e in events[:n]:
            assert e["rows"][0]["p2p_kwh"] == pytest.approx(
                float(run.intervals["p2p_kwh"].iloc[e["t"]]), rel=1e-12
            )
        # a client that saw up to event 40 (browsers send Last-Event-ID) gets the rest
        rest = sse_events(f"{base}/api/events", {"Last-Event-ID": "40"}, n + 1 - 40)
        assert [e["id"] for e in rest] == list(range(41, n + 2))
        assert "book" not in rest[0] and "book" in rest[-1]
    finally:
        server.stop()


def p2pgrid(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


def test_cli_errors_exit_2(tmp_path: Path) -> None:
    proc = p2pgrid("dashboard", "--run", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "no results directory" in proc.stderr
    # the other mistakes in-process (a CLI start costs seconds of imports)
    from typer.testing import CliRunner

    from p2pgrid.cli import app

    runner = CliRunner()
    for args, message in (
        ([], "exactly one of --run"),
        (["--broker", "http://x:1"], "scheme"),
        (["--run", str(tmp_path), "--replay-speed", "0"], "--replay-speed must be positive"),
        (["--broker", "mqtt://h:1", "--replay-speed", "2"], "use it with --run"),
        (["--run", str(tmp_path)], "missing intervals.parquet"),
    ):
        result = runner.invoke(app, ["dashboard", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


def test_cli_serves_a_run_with_a_token(run_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    with subprocess.Popen(
        [*cmd, "dashboard", "--run", str(run_dir), "--port", str(port), "--token", "abc123"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        serve_and_check(proc, port, run_dir)


def serve_and_check(proc: subprocess.Popen[str], port: int, run_dir: Path) -> None:
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/?token=abc123" in line
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(f"{base}/api/kpis", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dashboard did not come up"
                time.sleep(0.1)
        assert r.status_code == 401
        ok = httpx.get(f"{base}/api/kpis", headers={"Authorization": "Bearer abc123"})
        assert ok.status_code == 200 and ok.json() == read_run(run_dir).kpis
    finally:
        proc.terminate()
        proc.wait(10)


def test_running_savings_value_the_stored_energy_difference(tmp_path: Path) -> None:
    """Savings up to any interval t, as the dashboard shows them: Σ_{≤t} (baseline_cost −
    cost) + retail × (stored − baseline stored) at the end of t, from agents.parquet.
    Two days, so that the price-aware storage of day 2 stores otherwise than the
    baseline's."""
    run_dir = tmp_path / "two-days"
    scenario = {
        "simulation": {"start": "2026-06-15", "days": 2, "seed": 3},
        "community": {"households": 16, "pv_share": 0.6, "battery_share": 0.4, "ev_share": 0.3},
        "grid": {"feeder": "radial:16", "check": "pyomo"},
    }
    run_scenario(load_scenario(scenario), run_dir)
    run = read_run(run_dir)
    agents = pd.read_parquet(run_dir / "agents.parquet")
    retail = json.loads((run_dir / "manifest.json").read_text())["scenario"]["market"][
        "retail_price_per_kwh"
    ]
    last = run.n_intervals - 1
    for t in (run.n_intervals // 2, last):
        upto = agents[agents.t <= t]
        saved = (upto.baseline_cost - upto.cost).groupby(upto.agent_id, observed=True).sum()
        end = agents[agents.t == t].set_index("agent_id")
        stored = end.soc_kwh + end.ev_soc_kwh - end.baseline_stored_kwh
        expected = saved + retail * stored.loc[saved.index]
        table = run.household_table(t).set_index("agent_id")
        assert table.savings.loc[expected.index].to_numpy() == pytest.approx(
            expected.to_numpy(), abs=1e-9
        )
        # the community's from intervals.parquet (unrounded), the expectation from
        # agents.parquet (QUANTUM / 2 per value: cost, baseline cost, three states)
        bound = len(upto) * QUANTUM + 3 * len(end) * QUANTUM
        assert run.kpis_at(t)["community_savings"] == pytest.approx(expected.sum(), abs=bound)
    assert (agents.baseline_stored_kwh != agents.soc_kwh + agents.ev_soc_kwh).any()
