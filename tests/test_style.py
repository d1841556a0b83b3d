"""The project's own code is ruff-clean (lint, import order and formatting), as configured
in pyproject.toml. Only the project's folders are linted: a stray script in the checkout
(a notebook export, a scratch file) is not the project's code."""

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_targets(root: Path) -> list[str]:
    """The project's top-level folders (its packages, tests and benchmarks) under ``root``."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    folders = {p.split(".")[0] for p in config["tool"]["setuptools"]["packages"]}
    return sorted(f for f in folders | {"tests", "bench"} if (root / f).is_dir())


def ruff(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ruff", "check", *lint_targets(root)], cwd=root, capture_output=True, text=True
    )


def test_ruff_clean() -> None:
    assert {"p2pgrid", "market", "grid", "agents", "scenarios", "live", "tests", "bench"} <= set(
        lint_targets(ROOT)
    )
    proc = ruff(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean() -> None:
    proc = subprocess.run(
        ["ruff", "format", "--check", *lint_targets(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_stray_file_outside_the_project_folders_is_not_linted(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    (tmp_path / "market").mkdir()
    (tmp_path / "market" / "ok.py").write_text("X = 1\n", encoding="utf-8")
    (tmp_path / "scratch.py").write_text("import os\n", encoding="utf-8")  # F401
    assert ruff(tmp_path).returncode == 0
    (tmp_path / "market" / "bad.py").write_text("import os\n", encoding="utf-8")
    bad = ruff(tmp_path)
    assert bad.returncode == 1 and "F401" in bad.stdout  # the project's own files still are
