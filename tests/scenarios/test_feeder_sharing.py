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


def test_hosting_capacity_runs_with_a_sharing_key(tmp_path: Path) -> None:
    """``p2pgrid hosting-capacity`` with ``market.mechanism = "sharing:equal"``: every
    probe is a sharing run, and sharing moves no energy, so each probe's feeder verdicts
    and curtailment are its no-sharing baseline's."""
    import json

    from typer.testing import CliRunner

    from p2pgrid.cli import app

    scenario = tmp_path / "hc.toml"
    scenario.write_text(
        'name = "hc-sharing"\n'
        '[simulation]\nstart = "2026-06-15"\ndays = 1\nseed = 1\n'
        "[community]\nhouseholds = 8\npv_kwp = [25.0, 40.0]\nbattery_share = 0.5\n"
        '[grid]\nfeeder = "radial:8"\ncheck = "pyomo"\n',
        encoding="utf-8",
    )
    out = tmp_path / "hc"
    args = ["hosting-capacity", str(scenario), "--out", str(out), "-q"]
    done = CliRunner().invoke(app, [*args, "--set", "market.mechanism=sharing:equal"])
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "hosting.json").read_text(encoding="utf-8"))
    probes = sorted(out.glob("*/pv_share-*"))
    assert len(probes) >= 4
    traded = 0
    for probe in probes:
        market = json.loads((probe / "manifest.json").read_text(encoding="utf-8"))["scenario"][
            "market"
        ]
        assert (market["mechanism"], market["sharing"]["key"]) == ("sharing", "equal")
        intervals = pd.read_parquet(probe / "intervals.parquet")
        assert (intervals["violations"] == intervals["baseline_violations"]).all(), probe
        np.testing.assert_allclose(
            intervals["curtailed_kwh"], intervals["baseline_curtailed_kwh"], atol=1e-9
        )
        traded += len(pd.read_parquet(probe / "trades.parquet"))
    assert traded > 0
    for case, result in summary["cases"].items():
        # the range held both outcomes, and the search named what binds
        assert result["capacity"] is not None and result["first_failing"] is not None, case
        assert result["capacity"] < result["first_failing"]
        assert result["binding"]["element"], case


def test_a_sharing_run_shows_where_the_shared_energy_flows(small_sharing_run: Path) -> None:
    page = (small_sharing_run / "report.html").read_text(encoding="utf-8")
    trades = pd.read_parquet(small_sharing_run / "trades.parquet")
    total = trades["energy_kwh"].sum()
    assert f"Where shared energy flows on the feeder: {total:,.1f} kWh over the run" in page
    assert "Shared energy from bus (sellers) to bus (buyers) over the run [kWh]" in page
