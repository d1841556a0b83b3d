"""Import cycles and room order: no module imports another that imports it back (directly
or through others), and grid/ imports nothing of the rooms above it (DESIGN.md, "Layout").

Every ``import`` statement counts, wherever it stands: at the top, inside a function
(a deferred import is still a dependency) or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("market", "grid", "agents", "scenarios", "live", "p2pgrid")
#: What each room may import of the project (DESIGN.md's table).
ALLOWED = {"grid": {"grid", "market"}}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules that the file imports (``from a.b import c`` names ``a.b.c``
    when that is a module, else ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    modules = set(files)
    return {name: project_imports(path, modules) - {name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components of more
    than one module, Tarjan's algorithm) with a module of package ``within``, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                m = stack.pop()
                on_stack.discard(m)
                group.append(m)
                if m == node:
                    break
            if len(group) > 1 and any(m.split(".")[0] == within for m in group):
                groups.append(sorted(group))

    for start in sorted(graph):
        if start not in index:
            visit(start)
    return sorted(groups)


def test_the_checker_finds_a_cycle_and_a_deferred_import(tmp_path: Path) -> None:
    pkg = tmp_path / "grid"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "a.py").write_text("from grid.b import x\n", encoding="utf-8")
    (pkg / "b.py").write_text("def f():\n    from grid import a\n", encoding="utf-8")
    graph = import_graph(tmp_path)
    assert graph["grid.a"] == {"grid.b"} and graph["grid.b"] == {"grid", "grid.a"}
    assert cycles(graph, "grid") == [["grid.a", "grid.b"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    assert cycles(import_graph(ROOT), package) == []


def test_grid_imports_only_market_and_itself() -> None:
    graph = import_graph(ROOT)
    bad = {
        (name, dep)
        for name, deps in graph.items()
        if name.split(".")[0] == "grid"
        for dep in deps
        if dep.split(".")[0] not in ALLOWED["grid"]
    }
    assert bad == set()
