"""The report's feeder view of shared energy (issue 16, item 6): per bus, energy
received and given, hand-solved, and on a real run equal to the members' own totals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.reports.feeder_sharing import (
    feeder_sharing_figures,
    shared_energy_by_bus,
    shared_flows_between_buses,
)

HOUSEHOLDS = pd.DataFrame(
    {"agent_id": ["a", "b", "c", "d", "e"], "bus": ["b2", "b2", "b3", "b4", "b1"]}
)
# a (b2) gives 1.0 to c (b3) and 0.5 to b (b2); d (b4) gives 2.0 to c, 0.25 to a
TRADES = pd.DataFrame(
    {
        "t": [0, 0, 1, 1],
        "seller_id": ["a", "a", "d", "d"],
        "buyer_id": ["c", "b", "c", "a"],
        "energy_kwh": [1.0, 0.5, 2.0, 0.25],
    }
)


def test_flows_by_bus_by_hand() -> None:
    flows = shared_flows_between_buses(TRADES, HOUSEHOLDS, ["b1", "b2", "b3", "b4"])
    assert list(flows.index) == ["b1", "b2", "b3", "b4"]
    want = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.5, 1.0, 0.0],  # from b2: 0.5 within the bus (a → b), 1.0 to b3
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.25, 2.0, 0.0],  # from b4: 0.25 to b2, 2.0 to b3
        ]
    )
    np.testing.assert_allclose(flows.to_numpy(), want)
    by_bus = shared_energy_by_bus(flows).set_index("bus")
    np.testing.assert_allclose(by_bus["received_kwh"], [0.0, 0.75, 3.0, 0.0])
    np.testing.assert_allclose(by_bus["given_kwh"], [0.0, 1.5, 0.0, 2.25])
    np.testing.assert_allclose(by_bus["net_received_kwh"], [0.0, -0.75, 3.0, -2.25])
    np.testing.assert_allclose(by_bus["within_bus_kwh"], [0.0, 0.5, 0.0, 0.0])
    # buses not in the feeder order follow in the households' order
    assert list(shared_flows_between_buses(TRADES, HOUSEHOLDS, ["b4"]).index) == [
        "b4",
        "b2",
        "b3",
        "b1",
    ]


def test_figures_carry_units_and_skip_silent_buses() -> None:
    flows = shared_flows_between_buses(TRADES, HOUSEHOLDS, ["b1", "b2", "b3", "b4"])
    bars, heat = feeder_sharing_figures(flows, "shared")
    assert "3.8 kWh over the run, 0.5 kWh of it within one bus" in bars.layout.title.text
    assert "[kWh]" in bars.layout.xaxis.title.text
    assert all("[kWh]" in trace.name for trace in bars.data)
    assert list(bars.data[0].y) == ["b2", "b3", "b4"]  # b1 shared nothing
    np.testing.assert_allclose(bars.data[0].x, [0.75, 3.0, 0.0])
    np.testing.assert_allclose(bars.data[1].x, [-1.5, 0.0, -2.25])
    assert heat.data[0].colorbar.title.text == "kWh"
    assert "[kWh]" in heat.layout.title.text
    assert feeder_sharing_figures(flows * 0.0) == []


def test_bad_tables_are_named() -> None:
    no_bus = HOUSEHOLDS.assign(bus=None)
    with pytest.raises(ValueError, match="has no bus"):
        shared_flows_between_buses(TRADES, no_bus)
    stranger = TRADES.assign(buyer_id=["c", "b", "c", "zz"])
    with pytest.raises(ValueError, match="households lack"):
        shared_flows_between_buses(stranger, HOUSEHOLDS)


def test_run_by_bus_equals_the_members_totals(small_run: Path) -> None:
    households = pd.read_parquet(small_run / "households.parquet")
    flows = shared_flows_between_buses(small_run / "trades.parquet", households)
    by_bus = shared_energy_by_bus(flows).set_index("bus")
    agents = pd.read_parquet(small_run / "agents.parquet")
    per_bus = agents.groupby(agents["bus"].astype(str))[["bought_p2p_kwh", "sold_p2p_kwh"]].sum()
    assert per_bus["bought_p2p_kwh"].sum() > 0
    per_bus = per_bus.reindex(by_bus.index, fill_value=0.0)
    np.testing.assert_allclose(by_bus["received_kwh"], per_bus["bought_p2p_kwh"], atol=1e-9)
    np.testing.assert_allclose(by_bus["given_kwh"], per_bus["sold_p2p_kwh"], atol=1e-9)
    page = (small_run / "report.html").read_text(encoding="utf-8")
    assert "Where traded P2P energy flows on the feeder" in page
    assert "energy from bus (sellers) to bus (buyers) over the run [kWh]" in page
