"""Bills follow the meters: over a real Mosquitto, a reading without orders is billed and
an order without the energy behind it is settled as imbalance (hand-solved numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from live.ledger import read_ledger
from scenarios.config.loader import load_scenario

from .conftest import one_interval

SCENARIO = {
    "name": "imbalance",
    "simulation": {"days": 1, "interval_minutes": 60},
    "community": {"households": 5},
    "market": {
        "retail_price_per_kwh": 0.32,
        "feed_in_price_per_kwh": 0.08,
        "grid_fee_per_kwh": 0.03,
        "imbalance_shortfall_price_per_kwh": 0.40,
        "imbalance_surplus_price_per_kwh": 0.05,
    },
    "grid": {"check": "off"},
    # h0001 and h0004 send no orders: the gate closes after the timeout
    "live": {"close_when_complete": True, "complete_timeout_s": 3.0},
}

# what each household sends for t = 0: (reading, orders or None for no orders message)
SENT: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]] | None]] = {
    # 1 kWh of demand and no orders
    "h0001": ({"generation_kwh": 0.0, "demand_kwh": 1.0}, None),
    # sells 5 kWh with nothing to sell
    "h0002": (
        {"generation_kwh": 0.0, "demand_kwh": 0.0},
        [{"side": "sell", "energy_kwh": 5.0, "price_per_kwh": 0.20}],
    ),
    # buys the 5 kWh it uses
    "h0003": (
        {"generation_kwh": 0.0, "demand_kwh": 5.0},
        [{"side": "buy", "energy_kwh": 5.0, "price_per_kwh": 0.20}],
    ),
    # 2 kWh of PV and no orders
    "h0004": ({"generation_kwh": 2.0, "demand_kwh": 0.0}, None),
    # 3 kWh of PV, 1 kWh of load, 2 kWh into its own battery: nothing at the meter
    "h0005": ({"generation_kwh": 3.0, "demand_kwh": 1.0, "battery_kwh": 2.0}, None),
}

# hand-solved: (imbalance_kwh, grid_import_kwh, grid_export_kwh, imbalance_cost, cost)
EXPECTED = {
    "h0001": (-1.0, 1.0, 0.0, 0.40, 0.40),  # 1 kWh shortfall × 0.40
    "h0002": (-5.0, 5.0, 0.0, 2.00, 1.00),  # −5 × 0.20 received + 5 × 0.40 shortfall
    "h0003": (0.0, 0.0, 0.0, 0.0, 1.15),  # 5 × 0.20 paid + 5 × 0.03 fee
    "h0004": (2.0, 0.0, 2.0, -0.10, -0.10),  # 2 kWh surplus × 0.05
    "h0005": (0.0, 0.0, 0.0, 0.0, 0.0),
}


def test_bills_follow_the_meters_over_mosquitto(mosquitto, tmp_path: Path) -> None:
    seen = one_interval(
        load_scenario(SCENARIO), mosquitto.config, tmp_path / "state", SENT, "imbalance-households"
    )
    market, results, errors = seen.market, seen.results, seen.errors
    settlements = seen.settlements
    assert errors == [] and sum(market.stats.rejected.values()) == 0
    (record,) = read_ledger(tmp_path / "state")  # what was published was committed first
    assert sorted(record["settlements"]) == sorted(EXPECTED)
    assert settlements == record["settlements"]
    for agent, (imbalance, imported, exported, imbalance_cost, cost) in EXPECTED.items():
        s = settlements[agent]
        got = (
            s["imbalance_kwh"],
            s["grid_import_kwh"],
            s["grid_export_kwh"],
            s["imbalance_cost"],
            s["cost"],
        )
        assert got == pytest.approx((imbalance, imported, exported, imbalance_cost, cost)), agent
        # the energy identity with metered values
        metered = s["generation_kwh"] - s["demand_kwh"] - s["battery_kwh"] - s["ev_kwh"]
        exchange = s["sold_kwh"] - s["bought_kwh"] + s["grid_export_kwh"] - s["grid_import_kwh"]
        assert metered == pytest.approx(exchange, abs=1e-9), agent
        assert s["imbalance_kwh"] == pytest.approx(metered - s["committed_net_kwh"]), agent
    committed = [settlements[a]["committed_net_kwh"] for a in sorted(EXPECTED)]
    assert committed == pytest.approx([0.0, 5.0, -5.0, 0.0, 0.0])
    assert settlements["h0002"]["sold_kwh"] == pytest.approx(5.0)
    assert settlements["h0002"]["received"] == pytest.approx(1.00)
    assert settlements["h0005"]["battery_kwh"] == pytest.approx(2.0)
    # money: Σ cost = imbalance money (no committed utility exchange here) + fees
    total = sum(s["cost"] for s in settlements.values())
    assert total == pytest.approx(2.45)
    assert total == pytest.approx(
        sum(s["imbalance_cost"] + s["fees"] for s in settlements.values())
    )
    (result,) = results
    assert result["volume_kwh"] == pytest.approx(5.0)
    assert result["price_per_kwh"] == pytest.approx(0.20)
    assert (result["grid_import_kwh"], result["grid_export_kwh"]) == pytest.approx((6.0, 2.0))
    assert result["imbalance_kwh"] == pytest.approx(-4.0)
    assert result["counts"]["readings"] == 5 and result["counts"]["order_messages"] == 2
