"""The library's energy communities (issue 16, item 7) validate and run from the command
line for two days: the special member is in the community, and every shared kWh carries the
jurisdiction's charges (de_42c: 0.09 + 0.047; at_eeg local: 0.06 · 0.43, levies exempt)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios import load_scenario

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "scenarios" / "library"
CASES = [
    # file, members, special member, its kWp, charges per shared kWh, internal price
    ("energy-community-de.toml", 51, "h0051", 99.0, 0.137, 0.08 + 0.5 * (0.35 - 0.137 - 0.08)),
    ("energy-community-at.toml", 31, "h0031", 40.0, 0.06 * (1 - 0.57), 0.12),
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(("name", "n", "member", "kwp", "charges", "price"), CASES)
def test_library_community_runs(
    tmp_path: Path, name: str, n: int, member: str, kwp: float, charges: float, price: float
) -> None:
    path = LIBRARY / name
    scenario = load_scenario(path)
    assert scenario.simulation.days == 365 and scenario.market.is_sharing
    proc = _cli("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    proc = _cli("run", str(path), "--out", str(tmp_path), "--set", "simulation.days=2")
    assert proc.returncode == 0, proc.stderr
    hh = pd.read_parquet(tmp_path / "households.parquet").set_index("agent_id")
    assert len(hh) == n and hh.loc[member, "pv_kwp"] == kwp
    assert hh.loc[member, "battery_kwh"] == 0 and hh.loc[member, "ev_kwh"] == 0
    tr = pd.read_parquet(tmp_path / "trades.parquet")
    a = pd.read_parquet(tmp_path / "agents.parquet")
    assert tr.energy_kwh.sum() > 1.0
    np.testing.assert_allclose(tr.grid_fee, charges * tr.energy_kwh, rtol=1e-12)
    np.testing.assert_allclose(tr.price_per_kwh, price, rtol=1e-12)
    assert a.bought_p2p_kwh.sum() == pytest.approx(tr.energy_kwh.sum())
