"""The dashboard's household table of a run with heat pumps: each household's net
position is its metered balance, heat pump included (it was generation − demand −
battery − EV, so a heat-pump house showed its heat pump's energy as export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from live.dashboard import read_run
from scenarios import load_scenario, read_results, run
from scenarios.results.schema import QUANTUM


def test_net_position_includes_the_heat_pump(tmp_path: Path) -> None:
    scenario = load_scenario(
        {
            "simulation": {"start": "2026-01-13", "days": 1, "interval_minutes": 60, "seed": 5},
            "community": {"households": 6, "heat_pump_share": 0.5},
            "grid": {"feeder": "radial:6", "check": "off"},
        }
    )
    run(scenario, tmp_path)
    # January without a trade: the run still writes its (empty) trades.parquet, so the
    # dashboard opens it (it had refused the directory as incomplete)
    assert (tmp_path / "trades.parquet").exists()
    agents = read_results(tmp_path)["agents"]
    data = read_run(tmp_path)
    for t in (0, 7, 18):
        table = data.household_table(t).set_index("agent_id")
        rows = agents[agents["t"] == t].set_index("agent_id").loc[table.index]
        assert (rows["heat_pump_kwh"] > 0).sum() == 3  # 3 heat pumps heating in January
        # the balance's other side: P2P and the utility, as metered
        other = (
            rows["sold_p2p_kwh"]
            - rows["bought_p2p_kwh"]
            + rows["grid_export_kwh"]
            - rows["grid_import_kwh"]
        )
        # both sides from agents.parquet's columns, each within QUANTUM / 2: nine terms
        np.testing.assert_allclose(table["net_kwh"], other, atol=5 * QUANTUM)
