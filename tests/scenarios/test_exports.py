"""Meter CSV exports for the market roles (issue 16, item 4): the files' sums equal the
results files' per member and month; the layout (header, units, timestamps in the
scenario's timezone, quarter-hour rows, 92 and 100 rows on the clock-change days)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios import load_scenario, run
from scenarios.exports.meter_csv import COLUMNS, export_csv
from scenarios.results.files import ResultsFileError
from scenarios.results.schema import QUANTUM

HEADER = (
    "start,end,consumption_kwh,allocated_kwh,residual_supply_kwh,injection_kwh,shared_kwh,"
    "feed_in_kwh"
)
TZ = "Europe/Vienna"


def _run(tmp: Path, start: str, days: int) -> Path:
    """Four members, no feeder: a quick run over ``days`` from ``start``."""
    scenario = load_scenario(
        {
            "name": f"export-{start}",
            "simulation": {"start": start, "days": days, "timezone": TZ, "seed": 2},
            "community": {"households": 4, "pv_share": 0.5, "battery_share": 0.25},
            "grid": {"check": "off"},
        }
    )
    run(scenario, tmp)
    return tmp


@pytest.fixture(scope="module")
def autumn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 Oct to 1 Nov 2026: the fall-back day (25 Oct) whole, and a month boundary."""
    return _run(tmp_path_factory.mktemp("autumn"), "2026-10-24", 9)


@pytest.fixture(scope="module")
def spring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 to 30 Mar 2026: the spring-forward day (29 Mar) whole."""
    return _run(tmp_path_factory.mktemp("spring"), "2026-03-28", 2)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"start": str, "end": str})


def test_sums_equal_the_results_per_member_and_month(autumn: Path, tmp_path: Path) -> None:
    export = export_csv(autumn, tmp_path / "export")
    agents = pd.read_parquet(autumn / "agents.parquet")
    starts = pd.read_parquet(autumn / "intervals.parquet")["timestamp"].dt.tz_convert(TZ)
    agents["month"] = starts.dt.strftime("%Y-%m").to_numpy()[agents["t"].to_numpy()]
    agents["agent_id"] = agents["agent_id"].astype(str)
    want = agents.groupby(["agent_id", "month"]).sum(numeric_only=True)
    files = sorted(p.relative_to(tmp_path / "export").as_posix() for p in export.member_files)
    members = sorted(want.index.get_level_values(0).unique())
    assert files == [
        f"members/{m}/{month}.csv" for m in members for month in ("2026-10", "2026-11")
    ]
    for (member, month), row in want.iterrows():
        got = _read(tmp_path / "export" / "members" / member / f"{month}.csv")
        for column, source in (
            ("allocated_kwh", "bought_p2p_kwh"),
            ("residual_supply_kwh", "grid_import_kwh"),
            ("shared_kwh", "sold_p2p_kwh"),
            ("feed_in_kwh", "grid_export_kwh"),
        ):
            assert got[column].sum() == pytest.approx(row[source], rel=1e-12, abs=1e-12)
        # the two identities of the layout, row by row
        # (of agents.parquet's columns, each within QUANTUM / 2 of the engine's: nine
        # terms of the balance)
        np.testing.assert_allclose(
            got["consumption_kwh"], got["allocated_kwh"] + got["residual_supply_kwh"],
            atol=5 * QUANTUM,
        )  # fmt: skip
        np.testing.assert_allclose(
            got["injection_kwh"], got["shared_kwh"] + got["feed_in_kwh"], atol=5 * QUANTUM
        )
    # the run traded, so the test saw allocated and shared energy, and fed-in energy
    assert want["bought_p2p_kwh"].sum() > 0 and want["grid_export_kwh"].sum() > 0
    community = _read(tmp_path / "export" / "community.csv")
    assert len(community) == len(starts) and (community["members"] == 4).all()
    assert community["allocated_kwh"].sum() == pytest.approx(agents["bought_p2p_kwh"].sum())
    # Σ bought = Σ sold exactly in the engine; agents.parquet's 4 members: QUANTUM / 2 each
    np.testing.assert_allclose(
        community["allocated_kwh"], community["shared_kwh"], atol=4 * QUANTUM
    )
    assert community["residual_supply_kwh"].sum() == pytest.approx(agents["grid_import_kwh"].sum())


def test_layout_timestamps_and_clock_changes(autumn: Path, spring: Path, tmp_path: Path) -> None:
    for run_dir, day, rows in ((autumn, "2026-10-25", 100), (spring, "2026-03-29", 92)):
        out = tmp_path / run_dir.name
        export = export_csv(run_dir, out)
        path = export.member_files[0]
        assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
        table = _read(path)
        # local time with the UTC offset, in the scenario's timezone, quarter hours
        start = pd.to_datetime(table["start"], utc=True).dt.tz_convert(TZ)
        end = pd.to_datetime(table["end"], utc=True).dt.tz_convert(TZ)
        assert (table["start"] == start.map(pd.Timestamp.isoformat)).all()
        assert ((end - start) == pd.Timedelta(minutes=15)).all()
        assert (start.diff().iloc[1:] == pd.Timedelta(minutes=15)).all()
        assert (start.iloc[1:].to_numpy() == end.iloc[:-1].to_numpy()).all()
        assert (start.dt.strftime("%Y-%m") == path.stem).all()
        on_day = table[start.dt.strftime("%Y-%m-%d") == day]
        assert len(on_day) == rows
        assert on_day["start"].iloc[0] == f"{day}T00:00:00+0{1 if rows == 92 else 2}:00"
        layout = json.loads(export.layout_file.read_text(encoding="utf-8"))
        assert layout["timezone"] == TZ and layout["interval_minutes"] == 15
        assert {c: layout["columns"][c]["unit"] for c in COLUMNS} == dict.fromkeys(COLUMNS, "kWh")
    # the hour that repeats on 25 Oct: 02:00 twice, first at +02:00 then at +01:00
    table = _read(tmp_path / autumn.name / "community.csv")
    assert list(table["start"][table["start"].str.startswith("2026-10-25T02:00")]) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    assert not table["start"].str.startswith("2026-03-29T02:").any()
    spring_table = _read(tmp_path / spring.name / "community.csv")
    assert not spring_table["start"].str.startswith("2026-03-29T02:").any()


def test_incomplete_results_are_refused(spring: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("intervals.parquet", "households.parquet", "manifest.json"):
        (broken / name).write_bytes((spring / name).read_bytes())
    with pytest.raises(ResultsFileError, match=r"no agents\.parquet"):
        export_csv(broken, tmp_path / "out")
    agents = pd.read_parquet(spring / "agents.parquet")
    agents[agents["t"] != 5].to_parquet(broken / "agents.parquet")
    with pytest.raises(ResultsFileError, match="lacks intervals"):
        export_csv(broken, tmp_path / "out")


def test_cli_export(spring: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["export", str(spring), "--out", str(tmp_path / "x")])
    assert done.exit_code == 0, done.output
    assert "4 member file(s)" in done.output
    assert (tmp_path / "x" / "members" / "h0001" / "2026-03.csv").is_file()
    refused = runner.invoke(app, ["export", str(spring), "--format", "eda"])
    assert refused.exit_code == 2
    assert "'eda' is not one of csv" in refused.output


def test_a_sharing_run_exports_its_allocations(small_sharing_run: Path, tmp_path: Path) -> None:
    export = export_csv(small_sharing_run, tmp_path / "x")
    trades = pd.read_parquet(small_sharing_run / "trades.parquet")
    trades["buyer_id"] = trades["buyer_id"].astype(str)
    allocated = trades.groupby("buyer_id")["energy_kwh"].sum()
    assert allocated.sum() > 0
    for path in export.member_files:
        member = path.parent.name
        rows = _read(path)["allocated_kwh"]
        # agents.parquet's energies against the trades': QUANTUM / 2 per interval
        assert rows.sum() == pytest.approx(allocated.get(member, 0.0), abs=len(rows) * QUANTUM)
    community = _read(tmp_path / "x" / "community.csv")
    # QUANTUM / 2 per member (agents.parquet's steps)
    np.testing.assert_allclose(
        community["allocated_kwh"], community["shared_kwh"], atol=len(export.member_files) * QUANTUM
    )


def test_layout_names_the_sharing_contract(
    small_sharing_run: Path, spring: Path, tmp_path: Path
) -> None:
    layout = json.loads(export_csv(small_sharing_run, tmp_path / "s").layout_file.read_text())
    contract = layout["contract"]
    assert contract["sharing"]["key"] == "proportional" and "shares" not in contract["sharing"]
    households = pd.read_parquet(small_sharing_run / "households.parquet")
    assert sorted(contract["members"]) == sorted(households["agent_id"])
    # a dynamic key has no static shares; no priority groups: everyone in group 0
    assert all(
        terms == {"share": None, "priority_group": 0, "load": "household"}
        for terms in contract["members"].values()
    )
    # an auction run has no contract
    auction = export_csv(spring, tmp_path / "a")
    assert json.loads(auction.layout_file.read_text())["contract"] is None
