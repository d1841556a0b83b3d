"""SimBench and file districts through the district engine (issue 18): a run over a day of
hourly intervals with every grid check, one household per LV feeder (the fewest that give
every feeder one), and its results: every feeder's partition, the balances per level to
1e-6, and the MV voltages against pandapower's AC power flow on the same injections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from grid.district import District
from grid.district_networks import load_district
from scenarios import load_scenario
from scenarios.engine.district import run_district
from scenarios.engine.district_feeder import feeder_dir
from scenarios.engine.runner import RunResult
from scenarios.results.schema import QUANTUM

ALL = "simbench:1-MVLV-rural-all-0-sw"


def _scenario(feeder: str, households: int) -> Any:
    return load_scenario(
        {
            "simulation": {"start": "2026-06-19", "days": 1, "seed": 5, "interval_minutes": 60},
            # PV of very different sizes: at noon the big ones sell what the small ones buy
            "community": {
                "households": households,
                "profiles": "synthetic",
                "pv_share": 1.0,
                "pv_kwp": [0.2, 9.0],
                "battery_share": 0.0,
                "ev_share": 0.0,
            },
            "grid": {"feeder": feeder, "check": "pyomo"},
            "market": {"levels": ["feeder", "district"], "district_grid_fee_per_kwh": 0.02},
        }
    )


def _check_partitions(result: RunResult, district: District) -> None:
    out = result.out_dir
    for fid in district.feeder_ids:
        where = feeder_dir(out, fid)
        for name in ("agents", "intervals", "trades", "households", "buses", "lines"):
            assert (where / f"{name}.parquet").is_file(), (fid, name)
        assert len(pd.read_parquet(where / "households.parquet")) == 1
    files = sorted(str(p) for p in out.glob("feeder=*/agents.parquet"))
    frame = ds.dataset(files, partitioning="hive", partition_base_dir=str(out)).to_table()
    assert set(frame.column("feeder").to_pylist()) == set(district.feeder_ids)
    assert (out / "report.html").is_file()


def _check_balances(result: RunResult, district: District) -> None:
    """Feeder markets, district market and utility, each to 1e-6 (energy and money)."""
    out = result.out_dir
    d_trades = pd.read_parquet(out / "district" / "trades.parquet")
    d_iv = pd.read_parquet(out / "district" / "intervals.parquet")
    side = d_trades.groupby(["t", "side"], observed=True).energy_kwh.sum().unstack(fill_value=0)
    np.testing.assert_allclose(side.get("buy", 0.0), side.get("sell", 0.0), atol=1e-6)
    value = d_trades.energy_kwh * d_trades.price_per_kwh
    money = value.groupby(d_trades.side, observed=True).sum()
    assert money.get("buy", 0.0) == pytest.approx(money.get("sell", 0.0), abs=1e-6)
    assert d_iv.district_kwh.sum() == pytest.approx(d_trades.energy_kwh.sum() / 2, abs=1e-6)
    assert result.kpis["district_kwh"] == pytest.approx(d_iv.district_kwh.sum(), abs=1e-6)
    total_cost = utility = fees = surplus = 0.0
    rows = 0
    for fid in district.feeder_ids:
        where = feeder_dir(out, fid)
        a = pd.read_parquet(where / "agents.parquet")
        iv = pd.read_parquet(where / "intervals.parquet")
        tr = pd.read_parquet(where / "trades.parquet")
        assert tr.energy_kwh.sum() == pytest.approx(iv.p2p_kwh.sum(), abs=1e-6)
        devices = a.battery_kwh + a.ev_kwh + a.heat_pump_kwh
        lhs = a.generation_kwh - a.demand_kwh - devices
        rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
        np.testing.assert_allclose(lhs, rhs, atol=1e-6)
        np.testing.assert_allclose(
            iv.grid_import_kwh, a.groupby("t").grid_import_kwh.sum(), atol=1e-6
        )
        total_cost += a.cost.sum()
        rows += len(a)
        utility += (a.grid_import_kwh * 0.32 - a.grid_export_kwh * 0.08).sum()
        utility += a.imbalance_cost.sum()
        fees += tr.grid_fee.sum()
        surplus += iv.market_surplus.sum()
    fees += d_trades.grid_fee.sum()
    # agents.parquet holds energies and money in QUANTUM steps: its sums are good to half a
    # step a row and column (cost, imbalance cost, import x 0.32, export x 0.08)
    assert total_cost == pytest.approx(utility + fees + surplus, abs=rows * QUANTUM * 0.6)
    # the kpis sum the intervals files
    assert result.kpis["cost"] == pytest.approx(total_cost, abs=rows * QUANTUM / 2)


def _check_mv_against_ac(result: RunResult, district: District, tol_pu: float) -> None:
    """The MV check's voltage range per interval against pandapower's AC power flow of
    the MV grid with the same injections: its background plus every LV feeder's
    transformer flow (district/transformers.parquet) at its MV bus."""
    from grid.ac import AcPowerFlow

    out = result.out_dir
    flows = pd.read_parquet(out / "district" / "transformers.parquet")
    d_iv = pd.read_parquet(out / "district" / "intervals.parquet")
    mv = district.mv
    ac = AcPowerFlow(mv)
    col = {f: k for k, f in enumerate(district.feeder_ids)}
    worst = 0.0
    for t, rows in flows.groupby("t"):
        p, q = mv.base_injection_kw().copy(), mv.base_injection_kvar().copy()
        k = rows.feeder.astype(str).map(col).to_numpy()
        np.add.at(p, district.mv_bus[k], rows.p_kw.to_numpy())
        np.add.at(q, district.mv_bus[k], rows.q_kvar.to_numpy())
        v = ac.run(p, q).v_pu
        row = d_iv.iloc[int(t)]
        worst = max(worst, abs(v.min() - row.mv_v_min_pu), abs(v.max() - row.mv_v_max_pu))
    assert worst < tol_pu
    assert len(flows) == len(d_iv) * district.n_feeders


@pytest.mark.slow
def test_the_rural_simbench_district_runs(tmp_path: Path) -> None:
    """All 90 LV grids of 1-MVLV-rural-all, one household each, 24 hourly intervals: MV
    voltages within 1e-3 p.u. of AC (README "SimBench MV+LV districts": 1e-3 p.u. on the
    whole rural grid at 30 % of SimBench's peak)."""
    pytest.importorskip("simbench")
    district = load_district(ALL)
    assert district.n_feeders == 90
    result = run_district(_scenario(ALL, district.n_feeders), tmp_path)
    _check_partitions(result, district)
    _check_balances(result, district)
    _check_mv_against_ac(result, district, 1e-3)
    assert result.kpis["district_kwh"] > 0  # the feeders traded with each other


def _district_doc() -> dict[str, Any]:
    """A 20 kV cable sub - s1 - s2, station s1 feeding LV feeder "a", s2 feeder "b"; each
    LV feeder a 250 kVA transformer and two household buses on NAYY cables; 40 kW of MV
    background at s1."""
    trafo = {"kind": "trafo", "sn_kva": 250, "vk_percent": 4, "vkr_percent": 1.3}
    buses: list[dict[str, Any]] = [
        {"bus": "sub", "vn_kv": 20}, {"bus": "s1", "vn_kv": 20, "base_p_kw": 40},
        {"bus": "s2", "vn_kv": 20},
    ]  # fmt: skip
    lines: list[dict[str, Any]] = [
        {"line": "m1", "from_bus": "sub", "to_bus": "s1", "r_ohm": 0.4, "x_ohm": 0.3,
         "s_max_kva": 8000},
        {"line": "m2", "from_bus": "s1", "to_bus": "s2", "r_ohm": 0.4, "x_ohm": 0.3,
         "s_max_kva": 8000},
    ]  # fmt: skip
    for f, station in (("a", "s1"), ("b", "s2")):
        buses += [
            {"feeder": f, "bus": "mv", "vn_kv": 20, "mv_bus": station},
            {"feeder": f, "bus": "lv", "vn_kv": 0.4, "household_bus": False},
            {"feeder": f, "bus": "h1", "vn_kv": 0.4},
            {"feeder": f, "bus": "h2", "vn_kv": 0.4},
        ]
        lines += [
            {"feeder": f, "line": "t", "from_bus": "mv", "to_bus": "lv", **trafo},
            {"feeder": f, "line": "c1", "from_bus": "lv", "to_bus": "h1",
             "cable": "NAYY 4x150 SE", "length_km": 0.15},
            {"feeder": f, "line": "c2", "from_bus": "h1", "to_bus": "h2",
             "cable": "NAYY 4x50 SE", "length_km": 0.1},
        ]  # fmt: skip
    return {"name": "two-stations", "slack_bus": "sub", "buses": buses, "lines": lines}


def test_a_district_file_runs(tmp_path: Path) -> None:
    """The district file written here, one household per LV feeder: MV voltages within
    1e-4 p.u. of AC (two light stations on a short cable)."""
    path = tmp_path / "two-stations.json"
    path.write_text(json.dumps(_district_doc()))
    district = load_district(str(path))
    assert district.feeder_ids == ("a", "b")
    result = run_district(_scenario(str(path), 2), tmp_path / "out")
    _check_partitions(result, district)
    _check_balances(result, district)
    _check_mv_against_ac(result, district, 1e-4)
    assert result.kpis["mv_v_min_pu"] < 1.0  # the 40 kW background at s1 pulls it down
    assert result.kpis["district_kwh"] > 0  # the balances above saw district trades
