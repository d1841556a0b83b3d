"""What ``pip install -e .`` brings: every third-party module the package imports.

A module imported outside a ``try: … except ImportError`` (an optional extra with its
own install hint) must come from a distribution named in ``[project] dependencies``, or
a bare install ends in ``ModuleNotFoundError`` (pandapower once came only with extras,
so the ieee33 feeder and ``validate-grid`` failed after the README's first command).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]
FIRST_PARTY = {p.split(".")[0] for p in PACKAGES}


def _guarded(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside ``try`` blocks that catch ImportError."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {
            name.id
            for h in node.handlers
            for name in ast.walk(h.type)
            if h.type is not None
            if isinstance(name, ast.Name)
        }
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for stmt in node.body:
                lines |= {
                    n.lineno for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)
                }
    return lines


def required_imports() -> dict[str, str]:
    """Third-party top-level module → first file importing it unguarded."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            optional = _guarded(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                if node.lineno in optional:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY:
                        continue
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def declared_distributions() -> set[str]:
    """Distributions named in [project] dependencies, with the ones their extras add."""
    out: set[str] = set()
    for text in PYPROJECT["project"]["dependencies"]:
        req = Requirement(text)
        out.add(canonicalize_name(req.name))
        for extra in req.extras:
            for sub in requires(req.name) or []:
                dep = Requirement(sub)
                if dep.marker is not None and dep.marker.evaluate({"extra": extra}):
                    out.add(canonicalize_name(dep.name))
    return out


def test_every_unguarded_import_is_a_declared_dependency():
    modules = required_imports()
    # the package's own heavy hitters are among them: the scan sees function-level imports
    assert {"pandapower", "pyomo", "highspy", "distributed"} <= set(modules)
    dists = packages_distributions()
    declared = declared_distributions()
    missing = {
        module: where
        for module, where in modules.items()
        if not {canonicalize_name(d) for d in dists.get(module, [module])} & declared
    }
    assert missing == {}, f"imported without being in [project] dependencies: {missing}"


def test_simbench_stays_an_extra_behind_an_install_hint():
    # 380 MB of network data: only on request, and every import of it is guarded
    assert "simbench" not in required_imports()
    assert "simbench" not in declared_distributions()
    assert PYPROJECT["project"]["optional-dependencies"]["simbench"] == ["simbench>=1.5"]


def test_license_file_matches_pyproject():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_every_package_folder_is_listed():
    """A subfolder with an ``__init__.py`` that ``[tool.setuptools] packages`` does not list
    is missing from a wheel (an editable install hides it)."""
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in {p.split(".")[0] for p in PACKAGES}
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert folders == set(PACKAGES)
