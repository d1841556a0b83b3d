"""The command line's mistakes and messages: a clean error and exit 2 instead of a
traceback, text printed as written (no markup eaten), KPIs in their units."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios.kpis.format import format_kpi
from scenarios.studies import dask_cluster

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scenarios" / "library" / "demo.toml"
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


def p2pgrid(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def flat(text: str) -> str:
    """Terminal output with its line wrapping undone."""
    return " ".join(text.split())


def clean_exit_2(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return flat(proc.stderr)


def test_validate_rejects_an_unknown_feeder_as_run_does(tmp_path: Path) -> None:
    message = "grid.feeder: unknown feeder 'ieee34'"
    validate = clean_exit_2(p2pgrid("validate", str(DEMO), "--set", "grid.feeder=ieee34"))
    run = clean_exit_2(
        p2pgrid("run", str(DEMO), "--set", "grid.feeder=ieee34", "--out", str(tmp_path / "o"))
    )
    assert message in validate and message in run
    # a bad feeder file too, with the same problems
    bad = tmp_path / "feeder.json"
    bad.write_text("{}", encoding="utf-8")
    both = [
        clean_exit_2(p2pgrid(cmd, str(DEMO), "--set", f"grid.feeder='{bad}'", *extra))
        for cmd, extra in (("validate", ()), ("run", ("--out", str(tmp_path / "o2"))))
    ]
    for text in both:
        # not wrapped when stderr is not a terminal (a long path was split as "feeder. json")
        assert f"{bad}:" in text
        assert f"grid.feeder: {bad}: buses: must be a non-empty list" in text
        assert f"grid.feeder: {bad}: lines: must be a non-empty list" in text
    # without the grid check the run never loads the feeder, and validate agrees
    off = p2pgrid("validate", str(DEMO), "--set", "grid.feeder=ieee34", "--set", "grid.check=off")
    assert off.returncode == 0, off.stderr


def test_validate_rejects_a_radial_feeder_too_large_as_run_does(tmp_path: Path) -> None:
    """validate reads a generated feeder's name without building it (so it need not import
    pandas); the size check is the one the builder runs."""
    from grid.radial_design import RADIAL_MAX_HOUSEHOLDS

    size = RADIAL_MAX_HOUSEHOLDS + 1
    message = f"grid.feeder: radial:{size}: the number of households must be between 1 and"
    too_big = ("--set", f"grid.feeder='radial:{size}'")
    validate = clean_exit_2(p2pgrid("validate", str(DEMO), *too_big))
    run = clean_exit_2(p2pgrid("run", str(DEMO), *too_big, "--out", str(tmp_path / "o")))
    assert message in validate and message in run
    assert f"{RADIAL_MAX_HOUSEHOLDS}: radial:{size} would have" in validate


def test_an_old_capacity_key_is_a_one_line_warning_naming_the_new_key() -> None:
    proc = p2pgrid("validate", str(DEMO), "--set", "community.ev_kwh=[30, 50]")
    assert proc.returncode == 0, proc.stderr
    assert flat(proc.stderr) == (
        "warning: community.ev_kwh is renamed community.ev_capacity_kwh: write "
        "community.ev_capacity_kwh (the old name still works for now)"
    )
    assert '"ev_capacity_kwh": [ 30.0, 50.0 ]' in flat(proc.stdout)


def test_missing_simbench_is_a_clean_error_with_the_install_hint_in_brackets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "simbench", None)  # import simbench → ImportError
    runner = CliRunner()
    feeder = runner.invoke(
        app, ["validate", str(DEMO), "--set", "grid.feeder='simbench:1-LV-rural1--0-sw'"]
    )
    assert feeder.exit_code == 2, feeder.output
    assert 'pip install "p2pgrid[simbench]"' in flat(feeder.output)
    for extra in ([], ["--out", "unused", "-q"]):
        command = "run" if extra else "validate"
        res = runner.invoke(
            app, [command, str(DEMO), "--set", "community.profiles=simbench", *extra]
        )
        assert res.exit_code == 2, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        text = flat(res.output)
        assert "community.profiles: SimBench profiles need" in text
        assert 'pip install "p2pgrid[simbench]"' in text


def test_out_pointing_at_a_file_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("not a directory\n", encoding="utf-8")
    for args in (
        ("run", str(DEMO), "--days", "1", "--out", str(file)),
        ("run", str(DEMO), "--days", "1", "--out", str(file / "below")),
        ("compare", str(DEMO), "--days", "1", "--mechanisms", "uniform", "--out", str(file)),
        ("acl", str(DEMO), "--out", str(file)),
    ):
        err = clean_exit_2(p2pgrid(*args))
        assert f"'{file}'" in err and "is a file" in err, err
    assert file.read_text(encoding="utf-8") == "not a directory\n"


def test_broker_on_a_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = clean_exit_2(p2pgrid("broker", "--port", str(port), timeout=60))
    assert f"cannot listen on 127.0.0.1:{port}" in err and "address already in use" in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_cluster, "SCHEDULER_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{_closed_port()}"
    file = tmp_path / "s.toml"
    file.write_text(
        f'base = "{DEMO}"\n[set]\n"simulation.days" = 1\n'
        '[parameters]\n"community.pv_share" = [0.2, 0.4]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    for args in (
        ["sweep", str(file), "--out", str(tmp_path / "s"), "--scheduler", address, "-q"],
        ["hosting-capacity", str(DEMO), "--out", str(tmp_path / "h"), "--scheduler", address],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert f"--scheduler {address}: cannot connect to the Dask scheduler" in flat(res.output)


def test_square_brackets_print_as_written(tmp_path: Path) -> None:
    grid = p2pgrid("validate-grid", "radial:4", "--households", "4", "--buses")
    assert grid.returncode == 0, grid.stderr
    assert "v model [p.u.]" in grid.stdout and "error [p.u.]" in grid.stdout
    scenario = tmp_path / "named.toml"
    scenario.write_text(
        'name = "street [north]"\n[simulation]\ndays = 1\n[community]\nhouseholds = 6\n'
        '[grid]\nfeeder = "radial:6"\n',
        encoding="utf-8",
    )
    out = tmp_path / "run"
    run = p2pgrid("run", str(scenario), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "street [north]: KPIs" in run.stdout
    assert "street [north]" in run.stderr  # the progress bar's description


def test_kpi_table_in_units_without_scientific_notation(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = p2pgrid(
        "run", str(DEMO), "--days", "1", "--set", "community.households=12", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in proc.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows["community_savings"] == f"{kpis['community_savings']:,.2f} EUR"
    assert rows["self_sufficiency"] == f"{100 * kpis['self_sufficiency']:.1f} %"
    assert rows["p2p_kwh"] == f"{kpis['p2p_kwh']:,.1f} kWh"
    assert rows["mean_price_per_kwh"] == f"{kpis['mean_price_per_kwh']:.4f} EUR/kWh"
    assert not any("e+" in v or "e-" in v for v in rows.values()), rows


def test_money_is_never_in_scientific_notation() -> None:
    assert format_kpi("community_savings", 123456.789) == "123,456.79 EUR"
    assert format_kpi("baseline_cost", 2.5e7, "CHF") == "25,000,000.00 CHF"
    assert format_kpi("household_savings_max", -0.004) == "-0.00 EUR"
    assert format_kpi("peak_import_kw", 12345.67) == "12,345.7 kW"
    assert format_kpi("violation_hours", None) == "—"
    assert format_kpi("recleared_intervals", 3) == "3"
    assert format_kpi("wall_time_s", 1234.56) == "1,234.6 s"
    assert format_kpi("efficiency", 1.0) == "100.0 %"


def test_python_dash_m_runs_the_command_line() -> None:
    # `python -m p2pgrid.cli` imported the command modules in a circle (ImportError)
    proc = subprocess.run(
        [sys.executable, "-m", "p2pgrid.cli", "validate", str(DEMO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # the console wraps long lines (a long checkout path) where it is not a terminal
    assert "is a valid scenario ('demo')" in " ".join(proc.stdout.split())


def test_an_error_into_a_pipe_is_not_wrapped(tmp_path: Path) -> None:
    """stderr is a pipe here: the message names a 200-character path on one line, as
    written (rich had wrapped it at 80 columns, splitting the path)."""
    bad = tmp_path / ("d" * 200) / "feeder.json"
    bad.parent.mkdir()
    bad.write_text("{}", encoding="utf-8")
    proc = p2pgrid("validate", str(DEMO), "--set", f"grid.feeder='{bad}'")
    assert proc.returncode == 2
    assert any(
        f"{bad}: buses: must be a non-empty list" in line for line in proc.stderr.splitlines()
    )
