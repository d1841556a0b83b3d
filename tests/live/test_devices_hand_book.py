"""One live interval over a real Mosquitto against a book solved by hand.

Seven households send their readings and one order each for t = 0 (60-minute interval,
retail 0.32, feed-in 0.08, grid fee 0.03, no grid check):

    bids (descending)            asks (ascending)
    A  3 kWh @ 0.30              E  2 kWh @ 0.12
    B  3 kWh @ 0.25              F  3 kWh @ 0.20
    C  4 kWh @ 0.18              G  4 kWh @ 0.22
    D  1 kWh @ 0.10

Cumulated: demand 3, 6, 10, 11 kWh; supply 2, 5, 9 kWh. Walking the segments:
[0, 2] 0.30 ≥ 0.12, [2, 3] 0.30 ≥ 0.20, [3, 5] 0.25 ≥ 0.20, [5, 6] 0.25 ≥ 0.22 trade;
[6, 9] 0.18 < 0.22 does not. Volume 6 kWh; lowest accepted bid 0.25, highest accepted ask
0.22, price (0.25 + 0.22) / 2 = 0.235. Fills: A 3, B 3, E 2, F 3, G 1 (the marginal ask,
partly), C and D nothing.

Every reading is what the household committed, so there is no imbalance; the unmatched
orders go to the utility at retail and feed-in. Bills:
A, B: 3 × 0.235 + 3 × 0.03 = 0.795; C: 4 × 0.32 = 1.28; D: 0.32;
E: −2 × 0.235 = −0.47; F: −3 × 0.235 = −0.705; G: −1 × 0.235 − 3 × 0.08 = −0.475.
Σ = 1.54 = utility (5 × 0.32 − 3 × 0.08 = 1.36) + fees (6 × 0.03 = 0.18).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.config.loader import load_scenario

from .conftest import one_interval

SCENARIO = {
    "name": "hand-book",
    "simulation": {"days": 1, "interval_minutes": 60},
    "community": {"households": 7},
    "market": {
        "mechanism": "uniform",
        "retail_price_per_kwh": 0.32,
        "feed_in_price_per_kwh": 0.08,
        "grid_fee_per_kwh": 0.03,
    },
    "grid": {"check": "off"},
    "live": {"close_when_complete": True, "complete_timeout_s": 5.0},
}

# household: (side, kWh, limit) — h0001..h0007 are A..G
BOOK = {
    "h0001": ("buy", 3.0, 0.30),
    "h0002": ("buy", 3.0, 0.25),
    "h0003": ("buy", 4.0, 0.18),
    "h0004": ("buy", 1.0, 0.10),
    "h0005": ("sell", 2.0, 0.12),
    "h0006": ("sell", 3.0, 0.20),
    "h0007": ("sell", 4.0, 0.22),
}
# hand-solved: (bought, sold, grid import, grid export, cost)
EXPECTED = {
    "h0001": (3.0, 0.0, 0.0, 0.0, 0.795),
    "h0002": (3.0, 0.0, 0.0, 0.0, 0.795),
    "h0003": (0.0, 0.0, 4.0, 0.0, 1.28),
    "h0004": (0.0, 0.0, 1.0, 0.0, 0.32),
    "h0005": (0.0, 2.0, 0.0, 0.0, -0.47),
    "h0006": (0.0, 3.0, 0.0, 0.0, -0.705),
    "h0007": (0.0, 1.0, 0.0, 3.0, -0.475),
}


def _reading(side: str, kwh: float) -> dict[str, float]:
    if side == "buy":
        return {"generation_kwh": 0.0, "demand_kwh": kwh}
    return {"generation_kwh": kwh, "demand_kwh": 0.0}


def test_one_live_interval_clears_as_the_hand_solved_book(mosquitto, tmp_path: Path) -> None:
    sent = {
        agent: (_reading(side, kwh), [{"side": side, "energy_kwh": kwh, "price_per_kwh": price}])
        for agent, (side, kwh, price) in BOOK.items()
    }
    seen = one_interval(
        load_scenario(SCENARIO), mosquitto.config, tmp_path / "state", sent, "hand-book-households"
    )
    results, errors, settlements = seen.results, seen.errors, seen.settlements
    assert errors == []
    (result,) = results
    assert result["price_per_kwh"] == pytest.approx(0.235, abs=1e-12)
    assert result["volume_kwh"] == pytest.approx(6.0, abs=1e-12)
    assert (result["grid_import_kwh"], result["grid_export_kwh"]) == pytest.approx((5.0, 3.0))
    assert sorted(settlements) == sorted(EXPECTED)
    for agent, want in EXPECTED.items():
        s = settlements[agent]
        got = (s["bought_kwh"], s["sold_kwh"], s["grid_import_kwh"], s["grid_export_kwh"])
        assert (*got, s["cost"]) == pytest.approx(want, abs=1e-9), agent
        assert s["imbalance_kwh"] == pytest.approx(0.0, abs=1e-12), agent
    total = sum(s["cost"] for s in settlements.values())
    assert total == pytest.approx(1.36 + 0.18, abs=1e-9)
