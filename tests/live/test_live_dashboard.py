"""The dashboard fed by a real live market: ``p2pgrid live … --dashboard`` (in-process)
and the MQTT source watching a market on Mosquitto. The page's numbers, order book and
feeder state equal what the market committed to its ledger."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live.broker import free_port
from live.dashboard.curves import book_curves
from live.dashboard.mqtt_source import MqttSource, wait_connected
from live.dashboard.server import start_dashboard
from live.fleet import AgentFleet
from live.ledger import read_ledger
from live.market import MarketService, topics_for
from live.payloads import decode_settlement
from scenarios.config.loader import load_scenario
from scenarios.results.payloads import ORDERS_PER_LEVEL

INTERVALS = 5
SCENARIO = """
name = "live-dash"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 5
[community]
households = 12
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "live-dash.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


def check_against_ledger(base: str, ledger: list[dict[str, Any]]) -> None:
    """/api/intervals, the newest interval's book and feeder equal the ledger's."""
    rows = {r["t"]: r for r in get(f"{base}api/intervals")}
    assert sorted(rows) == [rec["t"] for rec in ledger]
    for rec in ledger:
        res, row = rec["result"], rows[rec["t"]]
        where = f"t={rec['t']}"
        if res["price_per_kwh"] is None:
            assert row["clearing_price_per_kwh"] is None, where
        else:
            assert row["clearing_price_per_kwh"] == pytest.approx(res["price_per_kwh"]), where
        assert row["p2p_kwh"] == pytest.approx(res["volume_kwh"]), where
        assert row["grid_import_kwh"] == pytest.approx(res["grid_import_kwh"]), where
        assert row["grid_export_kwh"] == pytest.approx(res["grid_export_kwh"]), where
        assert row["v_min_pu"] == pytest.approx(res["grid"]["v_min_pu"]), where
        assert row["violations"] == res["grid"]["violations"], where
        cost = sum(s["cost"] for s in rec["settlements"].values())
        assert row["cost"] == pytest.approx(cost), where
        demand = sum(s["demand_kwh"] for s in rec["settlements"].values())
        assert row["demand_kwh"] == pytest.approx(demand), where
        assert row["households_reported"] == len(rec["settlements"]), where

    newest = ledger[-1]
    t, res = newest["t"], newest["result"]
    book = get(f"{base}api/intervals/{t}/book")
    assert book["source"] == "order book (market/result)"
    buy = np.array(res["book"]["buy"], float).reshape(-1, 2)
    sell = np.array(res["book"]["sell"], float).reshape(-1, 2)
    # the anonymous curve pools the full book (market/book) in steps of at least
    # ORDERS_PER_LEVEL orders at their marginal price: never one order alone
    orders = newest["book"]["orders"]
    for levels, side in ((buy, "buy"), (sell, "sell")):
        rows = [i for i, s in enumerate(orders["side"]) if s == side]
        ranked = sorted(rows, key=lambda i: orders["price_per_kwh"][i], reverse=side == "buy")
        if len(ranked) < ORDERS_PER_LEVEL:
            assert len(levels) == 0
            continue
        assert len(levels) == len(ranked) // ORDERS_PER_LEVEL
        assert levels[:, 0].sum() == pytest.approx(sum(orders["energy_kwh"][i] for i in rows))
        assert levels[-1, 1] == orders["price_per_kwh"][ranked[-1]]
        # each step ends at its marginal price: the energy up to it lies between what is
        # strictly better than that price and what is at least as good (ties may split)
        better = (lambda a, b: a > b) if side == "buy" else (lambda a, b: a < b)
        for cum, p in zip(np.cumsum(levels[:, 0]), levels[:, 1], strict=True):
            strictly = sum(
                orders["energy_kwh"][i] for i in rows if better(orders["price_per_kwh"][i], p)
            )
            at_least = strictly + sum(
                orders["energy_kwh"][i] for i in rows if orders["price_per_kwh"][i] == p
            )
            assert strictly - 1e-9 <= cum <= at_least + 1e-9
    assert "trades" not in res and "agent" not in str(res["book"])
    want = book_curves(buy[:, 0], buy[:, 1], sell[:, 0], sell[:, 1])
    for side in ("demand", "supply"):
        for key, values in want[side].items():
            np.testing.assert_allclose(
                np.asarray(book[side][key], float), np.asarray(values, float), err_msg=side
            )
    feeder = get(f"{base}api/intervals/{t}/feeder")
    buses = {b["bus"]: b for b in res["grid"]["buses"]}
    assert len(feeder["buses"]) == len(buses) == 33
    for b in feeder["buses"]:
        assert b["v_pu"] == pytest.approx(buses[b["bus"]]["v_pu"])
        assert b["p_kw"] == pytest.approx(buses[b["bus"]]["p_kw"])
    lines = {x["line"]: x for x in res["grid"]["lines"]}
    assert len(feeder["lines"]) == len(lines) == 32
    for x in feeder["lines"]:
        assert x["loading_frac"] == pytest.approx(lines[x["line"]]["loading_frac"])
    # the feeder rows agree with the interval's summary
    assert min(b["v_pu"] for b in feeder["buses"]) == pytest.approx(res["grid"]["v_min_pu"])


def test_p2pgrid_live_with_dashboard_serves_the_ledger(
    mosquitto, live_cli: Any, scenario_file: Path, tmp_path: Path
) -> None:
    """`p2pgrid live FILE --dashboard HOST:PORT` on Mosquitto: the URL is printed, the
    API's intervals, book and feeder equal the live market's ledger."""
    port = free_port()
    state = tmp_path / "state"
    proc = live_cli(
        scenario_file,
        mosquitto.port,
        state,
        INTERVALS,
        "--dashboard",
        f"127.0.0.1:{port}",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        wait_for(lambda: any("market done" in x for x in lines) or proc.poll() is not None, 120)
        out = "".join(lines)
        assert proc.poll() is None, f"p2pgrid live exited: {out}"
        base = f"http://127.0.0.1:{port}/"
        assert f"dashboard: {base}" in out, out
        assert f"settled {INTERVALS} intervals" in out, out
        ledger = read_ledger(state)
        assert len(ledger) == INTERVALS
        status = get(f"{base}api/status")
        assert status["latest_t"] == INTERVALS - 1
        assert "in-process" in status["message"]
        check_against_ledger(base, ledger)
        households = get(f"{base}api/households?t={INTERVALS - 1}")
        assert households["total"] == 12
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0, "".join(lines)


def test_dashboard_over_mqtt_shows_the_book_and_feeder_of_a_real_market(
    mosquitto, scenario_file: Path, tmp_path: Path
) -> None:
    """The MQTT source watching a real market (not a test publisher): every settlement
    is read by the codec (live.payloads.decode_settlement), and the newest interval's
    book and feeder are drawn."""
    scenario = load_scenario(scenario_file)
    community = topics_for(scenario).community
    source = MqttSource(
        mosquitto.config.url,
        community,
        {"retail_price_per_kwh": 0.32, "feed_in_price_per_kwh": 0.08},
        30,
    )
    server = start_dashboard(source, "127.0.0.1", 0)
    fleet = None
    try:
        assert wait_connected(source)
        fleet = AgentFleet(scenario, mosquitto.config).start()
        market = MarketService(
            scenario, mosquitto.config, tmp_path / "state", speed=0, intervals=INTERVALS
        )
        market.run()
        ledger = read_ledger(tmp_path / "state")
        base = f"http://127.0.0.1:{server.port}/"
        # the settlements' revision of each row arrives a moment after the result
        wait_for(
            lambda: (
                [r["households_reported"] for r in get(f"{base}api/intervals")] == [12] * INTERVALS
            )
        )
        time.sleep(0.5)
        check_against_ledger(base, ledger)
        # every settlement field the dashboard draws comes through the codec, under
        # agents.parquet's column names
        payload = ledger[-1]["settlements"]["h0001"]
        mapped = decode_settlement(payload)
        drawn = {
            "bought_p2p_kwh": "bought_kwh",
            "sold_p2p_kwh": "sold_kwh",
            "grid_import_kwh": "grid_import_kwh",
            "grid_export_kwh": "grid_export_kwh",
            "cost": "cost",
            "generation_kwh": "generation_kwh",
            "demand_kwh": "demand_kwh",
            "battery_kwh": "battery_kwh",
            "ev_kwh": "ev_kwh",
        }
        for name, key in drawn.items():
            assert mapped[name] == pytest.approx(payload[key]), name
        # and they balance as DESIGN.md says
        for s in ledger[-1]["settlements"].values():
            lhs = s["generation_kwh"] - s["demand_kwh"] - s["battery_kwh"] - s["ev_kwh"]
            rhs = s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"]
            assert lhs == pytest.approx(rhs, abs=1e-6)
        hh = get(f"{base}api/households?t={INTERVALS - 1}")["items"]
        row = next(r for r in hh if r["agent_id"] == "h0001")
        assert row["cost"] == pytest.approx(payload["cost"])
        assert row["generation_kwh"] == pytest.approx(payload["generation_kwh"])
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
