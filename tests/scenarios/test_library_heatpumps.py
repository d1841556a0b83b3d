"""The library's suburb-winter-heatpumps (issue 14, item 6) runs from the command line:
energy balance, exactly 60 % heat pumps, and the comfort band held or its miss reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.results.schema import INTERVALS_FILE, metered_net_kwh

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "library" / "suburb-winter-heatpumps.toml"


def test_suburb_winter_heatpumps_runs(tmp_path: Path) -> None:
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    args = ["run", str(SCENARIO), "--out", str(tmp_path), "--set", "simulation.days=2"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    kpis = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["grid_check"] == "pyomo"
    hh = pd.read_parquet(tmp_path / "households.parquet")
    a = pd.read_parquet(tmp_path / "agents.parquet")
    iv = pd.read_parquet(tmp_path / "intervals.parquet")
    assert len(hh) == 60 and len(iv) == 2 * 96
    # 60 % of 60 households: exactly 36 heat pumps, and they are the households with a
    # temperature in every interval
    assert int((hh.hp_source > 0).sum()) == 36
    has = a.indoor_temp_c.notna().groupby(a.agent_id, observed=True).all()
    assert int(has.sum()) == 36
    # energy balance per household-interval and for the community, heat pumps included
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(metered_net_kwh(a) - rhs).max() < 1e-6
    community = metered_net_kwh(iv, INTERVALS_FILE) - (iv.grid_export_kwh - iv.grid_import_kwh)
    assert np.abs(community).max() < 1e-6
    np.testing.assert_allclose(iv.heat_pump_kwh, a.groupby("t").heat_pump_kwh.sum(), atol=1e-9)
    assert iv.heat_pump_kwh.sum() > 36 * 2 * 10.0, "a January heat pump draws > 10 kWh a day"
    # the band [20, 22] °C holds in every heat-pump interval, or the heat missing is reported
    hp = a[a.indoor_temp_c.notna()]
    inside = hp.indoor_temp_c.between(20.0 - 1e-9, 22.0 + 1e-9)
    assert (inside | (hp.unmet_heat_kwh > 0)).all()
    np.testing.assert_allclose(iv.unmet_heat_kwh, a.groupby("t").unmet_heat_kwh.sum(), atol=1e-9)
    # the report carries the heat-pump figures
    assert "Fleet COP" in (tmp_path / "report.html").read_text(encoding="utf-8")
