"""The report's heat-pump and §14a figures (issue 14, item 5): drawn from the run's own
files, with the numbers of the parquet files; absent from a run that has none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from scenarios import run
from scenarios.config.loader import load_scenario
from scenarios.reports.energy import flows_figure
from scenarios.reports.grid_tables import grid_tables
from scenarios.reports.heat import fleet_heat, heat_figures
from scenarios.reports.run import grid_figures

DT_H = 0.25
BAND = (20.0, 22.0)


def _scenario(heat_pump_share: float):
    return load_scenario(
        {
            "simulation": {"start": "2026-01-05", "days": 1},
            "grid": {"check": "off"},
            # one class built before 2002: radiators; no ground source: all air-source
            "community": {"households": 12, "heat_pump_share": heat_pump_share,
                          "building_classes": ["SFH.05"], "pv_share": 0.5},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def hp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hp-report")
    run(_scenario(0.5), out)
    return out


def _files(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        pd.read_parquet(out / "intervals.parquet"),
        pd.read_parquet(out / "agents.parquet"),
        pd.read_parquet(out / "households.parquet"),
    )


def test_heat_figures_show_the_parquet_numbers(hp_run: Path) -> None:
    iv, agents, hh = _files(hp_run)
    temp, power, cop = heat_figures(iv, hp_run / "agents.parquet", hh, BAND, DT_H)
    # indoor temperatures: warmest, median, coldest of the 6 heat-pump houses per interval
    owners = agents[agents.indoor_temp_c.notna()].groupby("t").indoor_temp_c
    assert owners.size().eq(6).all()
    np.testing.assert_array_equal(np.asarray(temp.data[0].y), owners.max().to_numpy())
    np.testing.assert_array_equal(np.asarray(temp.data[1].y), owners.median().to_numpy())
    np.testing.assert_array_equal(np.asarray(temp.data[2].y), owners.min().to_numpy())
    np.testing.assert_array_equal(np.asarray(temp.data[3].y), iv.unmet_heat_kwh.to_numpy())
    assert [s.y0 for s in temp.layout.shapes] == [20.0, 22.0]
    assert temp.layout.yaxis.title.text == "indoor temperature [°C]"
    assert "6 heat-pump households" in temp.layout.title.text
    # heat-pump power [kW] against the outdoor temperature, one point per interval
    np.testing.assert_array_equal(np.asarray(power.data[0].x), iv.outdoor_temp_c.to_numpy())
    np.testing.assert_allclose(np.asarray(power.data[0].y), iv.heat_pump_kwh / DT_H, rtol=1e-12)
    assert iv.heat_pump_kwh.sum() > 20.0, "the heat pumps drew little: a weak test"
    # COP: air source, radiators (supply 40 − T_out), the pumps sized for −14 °C so no
    # backup in this week: When2Heat's 0.85·(6.0801 − 0.0941·ΔT + 0.0005·ΔT²), ΔT = 40 − 2·T
    lift = np.maximum(40.0 - 2.0 * iv.outdoor_temp_c.to_numpy(), 15.0)
    expected = 0.85 * (6.0801 - 0.0941 * lift + 0.0005 * lift**2)
    drew = iv.heat_pump_kwh.to_numpy() > 0
    assert drew.sum() > 48
    np.testing.assert_allclose(np.asarray(cop.data[0].y)[drew], expected[drew], rtol=1e-12)
    assert np.isnan(np.asarray(cop.data[0].y)[~drew]).all()
    assert cop.layout.yaxis.title.text == "COP [-]"
    assert power.layout.xaxis.title.text == "outdoor temperature [°C]"
    # the community flows count the heat pumps among the uses (negative) [kW]
    flows = {t.name: np.asarray(t.y) for t in flows_figure(iv, DT_H).data}
    np.testing.assert_allclose(flows["heat pumps"], -iv.heat_pump_kwh / DT_H, rtol=1e-12)


def test_fleet_heat_reads_row_groups_that_split_intervals(hp_run: Path, tmp_path: Path) -> None:
    iv, _agents, hh = _files(hp_run)
    whole = fleet_heat(hp_run / "agents.parquet", hh, iv.outdoor_temp_c.to_numpy(), DT_H)
    split = tmp_path / "agents.parquet"
    pq.write_table(pq.read_table(hp_run / "agents.parquet"), split, row_group_size=7)
    assert pq.ParquetFile(split).metadata.num_row_groups > 96  # 7 rows: not 12 households
    again = fleet_heat(split, hh, iv.outdoor_temp_c.to_numpy(), DT_H)
    for name in ("indoor_min_c", "indoor_median_c", "indoor_max_c", "electric_kwh", "heat_kwh"):
        np.testing.assert_array_equal(getattr(again, name), getattr(whole, name))
    np.testing.assert_allclose(whole.electric_kwh, iv.heat_pump_kwh, atol=1e-12)
    short = tmp_path / "short.parquet"
    pq.write_table(pq.read_table(hp_run / "agents.parquet").slice(0, 12 * 95 + 5), short)
    with pytest.raises(ValueError, match=r"short.parquet: does not hold 96 whole intervals"):
        fleet_heat(short, hh, iv.outdoor_temp_c.to_numpy(), DT_H)


def test_report_has_heat_figures_only_with_heat_pumps(hp_run: Path, tmp_path: Path) -> None:
    page = (hp_run / "report.html").read_text(encoding="utf-8")
    titles = ("heat-pump households against the comfort band", "Fleet COP", "Heat-pump power")
    assert all(t in page for t in titles)
    run(_scenario(0.0), tmp_path)
    plain = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not any(t in plain for t in titles)
    iv, _agents, hh = _files(tmp_path)
    assert heat_figures(iv, tmp_path / "agents.parquet", hh, BAND, DT_H) == []
    assert "heat pumps" not in {t.name for t in flows_figure(iv, DT_H).data}


def _grid_case(dimmed: list[float], shortfall: list[float]) -> list:
    stamps = pd.date_range("2026-01-05", periods=3, freq="15min", tz="Europe/Berlin")
    intervals = pd.DataFrame(
        {"t": [0, 1, 2], "timestamp": stamps, "v_min_pu": 0.96, "v_max_pu": 1.0,
         "curtailed_kwh": 0.0, "violations_before_reclear": [0, 1, 0], "violations_background": 0,
         "dimmed_kwh": dimmed, "ev_shortfall_kwh": shortfall}
    )  # fmt: skip
    buses = pd.DataFrame({"t": [0, 1, 2], "bus": "1", "v_pu": 1.0, "nodal_price_per_kwh": np.nan})
    lines = pd.DataFrame({"t": [0, 1, 2], "line": "1-2", "loading_frac": 0.5})
    grid = grid_tables(buses, lines, intervals["timestamp"])
    return grid_figures(intervals, grid, 0.95, 1.05, "EUR")


def test_curtailment_figure_shows_dimming_only_where_the_run_dimmed() -> None:
    curtailment = _grid_case([0.0, 1.5, 0.25], [0.0, 0.5, 0.0])[3]
    bars = {t.name: list(t.y) for t in curtailment.data if t.type == "bar"}
    assert bars == {
        "curtailed PV [kWh]": [0.0, 0.0, 0.0],
        "dimmed by the grid operator (§14a) [kWh]": [0.0, 1.5, 0.25],
        "of it EV charging missing at departure [kWh]": [0.0, 0.5, 0.0],
    }
    assert curtailment.layout.title.text.startswith("Curtailment, §14a dimming (2 intervals")
    plain = _grid_case([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])[3]
    assert [t.name for t in plain.data if t.type == "bar"] == ["curtailed PV [kWh]"]
    assert plain.layout.title.text == "Curtailment and re-cleared intervals"
