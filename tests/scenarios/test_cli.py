"""The command line as a user runs it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scenarios" / "library" / "demo.toml"


def p2pgrid(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("p2pgrid")
    cmd = [exe] if exe else [sys.executable, "-m", "p2pgrid.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_run_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = p2pgrid(
        "run", str(DEMO), "--out", str(out), "--days", "1", "--set", "community.households=12"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"report:  {out / 'report.html'}" in proc.stdout.replace("\n", "") or (
        str(out / "report.html") in proc.stdout.replace("\n", "")
    )
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["intervals"] == 96
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["community"]["households"] == 12
    assert manifest["scenario"]["name"] == "demo"


def test_validate_ok() -> None:
    proc = p2pgrid("validate", str(DEMO))
    assert proc.returncode == 0, proc.stderr
    assert "valid scenario" in proc.stdout


@pytest.mark.parametrize(
    ("content", "sets", "expected"),
    [
        (
            'name = "x"\n[market]\nmechanism = "uniformm"\n',
            [],
            "market.mechanism: 'uniformm' is not one of uniform",
        ),
        ('name = "x"\n[simulation\n', [], "not valid TOML"),
        ('name = "x"\n', ["community.pv_share=2"], "community.pv_share"),
        (
            'name = "x"\n[communty]\nhouseholds = 3\n',
            [],
            "communty: unknown key (did you mean 'community'?)",
        ),
    ],
)
def test_scenario_mistakes_exit_2_without_traceback(
    tmp_path: Path, content: str, sets: list[str], expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    for command in ("validate", "run"):
        args = [command, str(path)]
        for s in sets:
            args += ["--set", s]
        if command == "run":
            args += ["--out", str(tmp_path / "out")]
        proc = p2pgrid(*args)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert expected in " ".join(proc.stderr.split()), proc.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = p2pgrid("run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "no scenario file" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_grid_ieee33_prints_the_published_case() -> None:
    proc = p2pgrid("validate-grid", "ieee33")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "0.91309" in out  # minimum voltage of the Baran & Wu case (bus 18)
    assert "202.677" in out  # its losses [kW]
    # and off the linearisation point, where the model is not exact: 1.3 x the load
    assert "load x1.3" in out and "0.88392" in out  # AC minimum voltage
    assert "0.00039" in out  # the model's largest voltage error there


def test_validate_grid_unknown_feeder_exits_2() -> None:
    proc = p2pgrid("validate-grid", "ieee34")
    assert proc.returncode == 2
    assert "unknown feeder 'ieee34'" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
