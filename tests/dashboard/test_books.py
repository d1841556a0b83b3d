"""Order books of finished runs: ``[output] order_books = true`` writes books.parquet,
and the dashboard's replay draws exactly those curves (not the bound revealed from the
fills)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live.dashboard import RunSource, read_run, start_dashboard
from live.dashboard.curves import book_curves
from scenarios import ScenarioError, load_scenario, run

BOOKS = {
    "name": "books",
    "simulation": {"start": "2026-06-15", "days": 1, "seed": 4, "interval_minutes": 30},
    "community": {"households": 10, "pv_share": 0.6, "battery_share": 0.4, "ev_share": 0.3},
    "grid": {"check": "off"},
    "output": {"order_books": True},
}


@pytest.fixture(scope="module")
def books_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("books-run")
    run(load_scenario(BOOKS), out)
    return out


def test_books_parquet_holds_every_interval_book(books_run: Path) -> None:
    books = pd.read_parquet(books_run / "books.parquet")
    assert list(books.columns) == ["t", "agent_id", "side", "kind", "energy_kwh", "price_per_kwh"]
    intervals = pd.read_parquet(books_run / "intervals.parquet")
    assert sorted(books["t"].unique()) == list(range(len(intervals)))
    assert set(books["side"].astype(str)) <= {"buy", "sell"}
    assert set(books["kind"].astype(str)) <= {"net", "battery", "ev"}
    assert (books["energy_kwh"] > 0).all()
    agents = pd.read_parquet(books_run / "agents.parquet")
    assert set(books["agent_id"].astype(str)) <= set(agents["agent_id"].astype(str))
    # the cleared volume fits inside each side of the book, and each household's net
    # position is one order at most
    for t, sel in books.groupby("t"):
        p2p = intervals.loc[intervals["t"] == t, "p2p_kwh"].iloc[0]
        for side in ("buy", "sell"):
            assert sel.loc[sel["side"] == side, "energy_kwh"].sum() >= p2p - 1e-9
        net = sel[sel["kind"] == "net"]
        assert not net["agent_id"].duplicated().any()


def test_books_are_off_by_default(tmp_path: Path) -> None:
    scenario = load_scenario({**BOOKS, "output": {}})
    assert scenario.output.order_books is False
    run(scenario, tmp_path)
    assert not (tmp_path / "books.parquet").exists()


def test_output_section_is_validated() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario({"output": {"order_books": "sometimes", "order_book": True}})
    text = str(err.value)
    assert "output.order_books" in text
    assert "output.order_book" in text


def test_replay_draws_the_books_parquet_curves(books_run: Path) -> None:
    data = read_run(books_run)
    books = pd.read_parquet(books_run / "books.parquet")
    server = start_dashboard(RunSource(data, replay_speed=50), "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.port}/"
        last = data.n_intervals - 1
        deadline = time.monotonic() + 20
        while server.source.latest_t() < last:
            assert time.monotonic() < deadline, "the replay did not reach the last interval"
            time.sleep(0.05)
        checked = 0
        for t in range(data.n_intervals):
            with urllib.request.urlopen(f"{base}api/intervals/{t}/book", timeout=10) as resp:
                got = json.loads(resp.read())
            assert got["source"] == "order book (books.parquet)"
            sel = books[books["t"] == t]
            buy, sell = sel[sel["side"] == "buy"], sel[sel["side"] == "sell"]
            want = book_curves(
                buy["energy_kwh"].to_numpy(float),
                buy["price_per_kwh"].to_numpy(float),
                sell["energy_kwh"].to_numpy(float),
                sell["price_per_kwh"].to_numpy(float),
            )
            for side in ("demand", "supply"):
                assert set(got[side]) == set(want[side])
                for key, values in want[side].items():
                    np.testing.assert_allclose(
                        np.asarray(got[side][key], float),
                        np.asarray(values, float),
                        err_msg=f"t={t} {side} {key}",
                    )
            # independently of book_curves: the curves span each side's whole book
            for side, orders in (("demand", buy), ("supply", sell)):
                if len(orders):
                    assert got[side]["energy_kwh"][-1] == pytest.approx(orders["energy_kwh"].sum())
                    assert min(got[side]["price_per_kwh"]) == pytest.approx(
                        orders["price_per_kwh"].min()
                    )
            checked += 1
        assert checked == data.n_intervals
    finally:
        server.stop()


def test_book_curves_hand_solved() -> None:
    # bids 1 kWh at 0.25 and 2 kWh at 0.30, asks 2 kWh at 0.20 and 1 kWh at 0.10:
    # demand steps from the highest bid, supply from the lowest ask; an empty order
    # (0 kWh) draws nothing
    got = book_curves(
        np.array([1.0, 2.0, 0.0]),
        np.array([0.25, 0.30, 0.90]),
        np.array([2.0, 1.0]),
        np.array([0.20, 0.10]),
    )
    assert got["demand"] == {
        "energy_kwh": [0.0, 2.0, 2.0, 3.0],
        "price_per_kwh": [0.30, 0.30, 0.25, 0.25],
    }
    assert got["supply"] == {
        "energy_kwh": [0.0, 1.0, 1.0, 3.0],
        "price_per_kwh": [0.10, 0.10, 0.20, 0.20],
    }
    assert book_curves(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))["demand"] == {
        "energy_kwh": [],
        "price_per_kwh": [],
    }
