"""The meter export and the dashboard's run view on a run written with ``[output] agents =
"daily"`` or ``"none"``: refused with what is missing and why (the run wrote no full
agents table) and how to get it (re-run with agents = "full"), not "not a results
directory"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from live.dashboard.rundata import RunDirError, read_run
from p2pgrid.cli import app
from scenarios import load_scenario, run
from scenarios.exports.meter_csv import export_csv
from scenarios.results.agents_missing import no_agents_table
from scenarios.results.files import ResultsFileError

SMALL = {
    "simulation": {"start": "2026-03-02", "days": 1, "seed": 3},
    "community": {"households": 4, "profiles": "synthetic", "pv_share": 0.5},
}
WROTE = {
    "daily": "it wrote agents_daily.parquet, one row per household and day",
    "none": "it kept only the members' totals, in kpis.json",
}


@pytest.fixture(scope="module", params=["daily", "none"])
def mode_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp(f"agents-{request.param}")
    run(load_scenario({**SMALL, "output": {"agents": request.param}}), out)
    return request.param, out


def _expected(mode: str, out: Path, who: str) -> str:
    return re.escape(
        f'{out}: no agents.parquet: the run was written with [output] agents = "{mode}" '
        f"({WROTE[mode]}), not the full agents table (one row per household and interval) "
        f'that {who} needs; re-run it with [output] agents = "full"'
    )


def test_the_meter_export_says_what_is_missing(mode_run, tmp_path: Path) -> None:
    mode, out = mode_run
    with pytest.raises(ResultsFileError, match=_expected(mode, out, "the meter export")) as e:
        export_csv(out, tmp_path / "x")
    assert "not a results directory" not in str(e.value)
    done = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path / "y")])
    assert done.exit_code != 0
    assert f'[output] agents = "{mode}"' in " ".join(done.output.split())
    assert not (tmp_path / "y").exists()


def test_the_dashboard_says_what_is_missing(mode_run) -> None:
    mode, out = mode_run
    with pytest.raises(RunDirError, match=_expected(mode, out, "the dashboard's run view")):
        read_run(out)


def test_a_full_run_and_a_stray_directory_keep_their_messages(tmp_path: Path) -> None:
    """A run with agents.parquet needs no hint; a directory that is no run keeps the
    message about missing files (the hint speaks only of a known agents mode)."""
    out = tmp_path / "full"
    run(load_scenario(SMALL), out)
    assert no_agents_table(out, "x") is None
    stray = tmp_path / "stray"
    stray.mkdir()
    assert no_agents_table(stray, "x") is None
    with pytest.raises(ResultsFileError, match=r"no intervals\.parquet"):
        export_csv(stray, tmp_path / "x")
    with pytest.raises(RunDirError, match="not a complete results directory"):
        read_run(stray)
