"""``p2pgrid compare`` end to end through the CLI, and the comparison's definitions."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios import ScenarioError
from scenarios.kpis.compute import gini
from scenarios.studies.compare import household_savings, parse_mechanisms

MECHANISMS = ["uniform", "pay_as_bid", "mcafee", "cda"]
DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "library" / "demo.toml"


def p2pgrid(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare")
    proc = p2pgrid(
        "compare",
        str(DEMO),
        "--mechanisms",
        ",".join(MECHANISMS),
        "--out",
        str(out),
        "--days",
        "1",
        "--set",
        "community.households=12",
        "--set",
        "grid.feeder=radial:12",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "market mechanisms" in proc.stdout and "compare.html" in proc.stdout
    return out


def test_files_and_one_run_per_mechanism(compared: Path) -> None:
    for name in MECHANISMS:
        kpis = json.loads((compared / name / "kpis.json").read_text())
        manifest = json.loads((compared / name / "manifest.json").read_text())
        assert manifest["scenario"]["market"]["mechanism"] == name
        assert manifest["scenario"]["community"]["households"] == 12
        assert kpis["intervals"] == 96
        assert (compared / name / "trades.parquet").is_file()
    table = pd.read_parquet(compared / "comparison.parquet")
    assert list(table.mechanism) == MECHANISMS
    csv = pd.read_csv(compared / "comparison.csv")
    pd.testing.assert_frame_equal(csv, table, check_dtype=False)


def test_same_community_in_every_run(compared: Path) -> None:
    """Same seed and profiles: generation and demand are identical across mechanisms."""
    first = pd.read_parquet(compared / "uniform" / "intervals.parquet")
    for name in MECHANISMS[1:]:
        other = pd.read_parquet(compared / name / "intervals.parquet")
        pd.testing.assert_series_equal(first.generation_kwh, other.generation_kwh)
        pd.testing.assert_series_equal(first.demand_kwh, other.demand_kwh)


def test_table_matches_each_runs_kpis(compared: Path) -> None:
    table = pd.read_parquet(compared / "comparison.parquet").set_index("mechanism")
    for name in MECHANISMS:
        kpis = json.loads((compared / name / "kpis.json").read_text())
        for key in (
            "p2p_kwh",
            "p2p_share",
            "efficiency",
            "market_surplus",
            "community_savings",
            "mean_price_per_kwh",
        ):
            assert table.at[name, key] == pytest.approx(kpis[key]), (name, key)
    assert table.at["uniform", "efficiency"] == 1.0
    assert table.at["pay_as_bid", "efficiency"] == 1.0
    assert table.at["mcafee", "efficiency"] < 1.0 and table.at["cda", "efficiency"] < 1.0
    assert table.at["pay_as_bid", "market_surplus"] > 0
    assert table.at["uniform", "market_surplus"] == 0.0
    # pay-as-bid trades what uniform trades, McAfee less
    assert table.at["pay_as_bid", "p2p_kwh"] == pytest.approx(table.at["uniform", "p2p_kwh"])
    assert table.at["mcafee", "p2p_kwh"] < table.at["uniform", "p2p_kwh"]


def test_household_savings_file(compared: Path) -> None:
    savings = pd.read_parquet(compared / "household_savings.parquet")
    assert len(savings) == 12 * len(MECHANISMS)
    table = pd.read_parquet(compared / "comparison.parquet").set_index("mechanism")
    for name, part in savings.groupby("mechanism"):
        assert part.savings.sum() == pytest.approx(table.at[name, "community_savings"])
        assert np.median(part.savings) == pytest.approx(table.at[name, "household_savings_median"])
        if table.at[name, "savings_gini"] == table.at[name, "savings_gini"]:
            assert gini(part.savings.to_numpy()) == pytest.approx(table.at[name, "savings_gini"])
    again = household_savings(compared / "cda")
    np.testing.assert_allclose(
        again.savings, savings[savings.mechanism == "cda"].savings.to_numpy()
    )


def test_report_is_offline_with_the_figures(compared: Path) -> None:
    page = (compared / "compare.html").read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    assert len(page) > 3_000_000  # plotly.js embedded
    for title in (
        "Welfare, P2P share and where the money goes",
        "Prices per interval",
        "Household savings distribution and fairness",
        "Gini of savings",
    ):
        assert title in page
    for name in MECHANISMS:
        assert name in page


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mechanisms", "uniform,vickrey"], "--mechanisms: 'vickrey' is not one of uniform"),
        (["--mechanisms", "uniform,uniform"], "'uniform' is listed twice"),
        (
            ["--set", "market.grid_fee_model=distance", "--set", "grid.check=off"],
            "market.grid_fee_model = 'distance'",
        ),
        (["--set", "community.pv_share=2"], "community.pv_share"),
    ],
)
def test_mistakes_exit_2_without_traceback(tmp_path: Path, args: list, expected: str) -> None:
    proc = p2pgrid("compare", str(DEMO), "--out", str(tmp_path / "o"), "--days", "1", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert expected in " ".join(proc.stderr.split()), proc.stderr
    assert not (tmp_path / "o").exists()


def test_parse_mechanisms() -> None:
    assert parse_mechanisms(" uniform, cda ") == ["uniform", "cda"]
    with pytest.raises(ScenarioError, match="give at least one"):
        parse_mechanisms(",")


def test_gini_by_hand() -> None:
    # savings 1, 2, 3, 6: mean 3; Σ_i Σ_j |x_i - x_j| = 2 (1+2+5+1+4+3) = 32;
    # 32 / (2 · 16 · 3) = 1/3
    assert gini(np.array([3.0, 1.0, 6.0, 2.0])) == pytest.approx(1 / 3)
    assert gini(np.array([2.0, 2.0, 2.0])) == 0.0
    # a mean ≤ 0 is defined too (normalised by the mean |saving|: 2 · 1.5 / (2 · 2 · 1.5)),
    # at the bound (n − 1)/n: one gains, one loses
    assert gini(np.array([-1.0, 0.5])) == pytest.approx(0.5)
