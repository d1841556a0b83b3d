"""Every interval of a batch run clears as a merit-order walk of its recorded book says.

The books are read back from the run's audit ledger (``--ledger``: every household's
orders as they went into the market) and cleared in this test by the textbook walk — bids
by price descending, asks ascending, trade while the bid is at least the ask, price the
midpoint of the lowest accepted bid and the highest accepted ask — written as a plain loop
over the orders, independent of ``market.uniform``'s sorted cumulative sums. Households
without storage send one net order each, so no household sits on both sides.
"""

import json

import numpy as np
import pytest

from scenarios import load_scenario, read_results, run

COMMUNITY = {
    "name": "book-walk",
    "simulation": {"start": "2026-06-16", "days": 1, "seed": 9},
    "community": {
        "households": 24,
        "pv_share": 0.5,
        "pv_kwp": [5.0, 12.0],
        "battery_share": 0.0,
        "ev_share": 0.0,
    },
    "market": {"mechanism": "uniform"},
    "grid": {"feeder": "radial:24", "check": "off"},
}


def walk(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]]
) -> tuple[float, float | None]:
    """(volume, price) of a uniform double auction; bids and asks as (kWh, limit)."""
    bids = sorted(bids, key=lambda o: -o[1])
    asks = sorted(asks, key=lambda o: o[1])
    i = j = 0
    left_b = bids[0][0] if bids else 0.0
    left_a = asks[0][0] if asks else 0.0
    volume, low_bid, high_ask = 0.0, float("nan"), float("nan")
    while i < len(bids) and j < len(asks) and bids[i][1] >= asks[j][1]:
        q = min(left_b, left_a)
        volume += q
        low_bid, high_ask = bids[i][1], asks[j][1]
        left_b -= q
        left_a -= q
        if left_b <= 1e-15:
            i += 1
            left_b = bids[i][0] if i < len(bids) else 0.0
        if left_a <= 1e-15:
            j += 1
            left_a = asks[j][0] if j < len(asks) else 0.0
    if volume == 0.0:
        return 0.0, None
    return volume, (low_bid + high_ask) / 2


@pytest.fixture(scope="module")
def book_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("book-walk")
    run(load_scenario(COMMUNITY), out, ledger=True, report=False)
    books = {}
    for line in (out / "ledger" / "chain.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["header"].get("kind") != "interval":
            continue
        orders = [o for leaf in record["inputs"] for o in leaf["orders"]]
        books[record["header"]["t"]] = orders
    return read_results(out), books


def test_every_interval_matches_the_walk_of_its_book(book_run) -> None:
    tables, books = book_run
    iv = tables["intervals"].set_index("t")
    assert sorted(books) == list(iv.index)
    traded = 0
    for t, orders in books.items():
        bids = [(o[2], o[3]) for o in orders if o[1] == "buy"]
        asks = [(o[2], o[3]) for o in orders if o[1] == "sell"]
        volume, price = walk(bids, asks)
        assert iv.loc[t, "p2p_kwh"] == pytest.approx(volume, abs=1e-7), t
        if price is None:
            assert np.isnan(iv.loc[t, "clearing_price_per_kwh"]), t
        else:
            traded += 1
            assert iv.loc[t, "clearing_price_per_kwh"] == pytest.approx(price, abs=1e-12), t
    assert traded >= 10
    # the trades of each interval add up to its volume, all at its one price
    tr = tables["trades"]
    per_t = tr.groupby("t").energy_kwh.sum()
    np.testing.assert_allclose(per_t, iv.loc[per_t.index, "p2p_kwh"], atol=1e-7)
    price = iv.loc[tr.t, "clearing_price_per_kwh"].to_numpy()
    np.testing.assert_allclose(tr.price_per_kwh, price, atol=1e-12)


def test_the_walk_solves_a_hand_book() -> None:
    # the book of tests/live/test_devices_hand_book.py: 6 kWh at (0.25 + 0.22) / 2
    bids = [(3.0, 0.30), (3.0, 0.25), (4.0, 0.18), (1.0, 0.10)]
    asks = [(2.0, 0.12), (3.0, 0.20), (4.0, 0.22)]
    assert walk(bids, asks) == pytest.approx((6.0, 0.235))
    assert walk(bids, []) == (0.0, None)
