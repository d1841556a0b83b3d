"""No import cycle between the project's modules (issue 13), read from the source with ast.

Every ``import`` counts, at module level and inside functions alike: an import moved into
a function only hides a cycle from Python, the two modules still need each other (issue
13 names ``cli.py`` ↔ ``cli_live.py``, whose cycle was such a deferred import). Imports
under ``if TYPE_CHECKING:`` do not count: they never run, and they are how an annotation
names a type across a boundary. ``from package import name`` counts as an import of the
submodule the package's lazy ``_EXPORTS`` table names for ``name`` (see e.g.
``market/__init__.py``), so re-exporting through a package hides nothing either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "market", "grid", "scenarios", "live", "p2pgrid")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """A package ``__init__``'s ``_EXPORTS`` table (name -> submodule), if it has one."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            return {ast.literal_eval(k): ast.literal_eval(v) for k, v in
                    zip(node.value.keys, node.value.values, strict=True)}  # fmt: skip
    return {}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (see the module docstring)."""
    files = module_files()
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in files.items()}
    exports = {name: _lazy_exports(tree) for name, tree in trees.items()}
    graph: dict[str, set[str]] = {}
    for name, tree in trees.items():
        targets: set[str] = set()
        package = name if files[name].name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in files:
                    targets.add(submodule)
                else:
                    targets.add(exports.get(base, {}).get(alias.name, base))
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    # module level, through the lazy package table: scenarios.engine.fees -> grid.distance
    assert "grid.distance" in graph["scenarios.engine.fees"]
    # function level: p2pgrid.cli_live imports the loader inside its commands
    assert "scenarios.config.loader" in graph["p2pgrid.cli_live"]


def test_cycles_finds_a_cycle_and_only_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    found = cycles(import_graph())
    described = ["  " + " <-> ".join(component) for component in found]
    assert not found, "import cycles between modules:\n" + "\n".join(described)


def test_grid_imports_only_market_and_itself() -> None:
    """grid/ imports nothing of the rooms above it (DESIGN.md, "Layout")."""
    bad = {
        (name, dep)
        for name, deps in import_graph().items()
        if name.split(".")[0] == "grid"
        for dep in deps
        if dep.split(".")[0] not in {"grid", "market"}
    }
    assert bad == set()


@pytest.mark.parametrize("package", ["market", "grid", "scenarios", "live.dashboard"])
def test_lazy_exports_match_all(package):
    """A package's ``__all__`` is its lazy table, and every name resolves in the submodule
    the table names."""
    import importlib

    module = importlib.import_module(package)
    table = getattr(module, "_EXPORTS", {})
    assert sorted(module.__all__) == sorted(table)
    for name, submodule in table.items():
        assert getattr(module, name) is getattr(importlib.import_module(submodule), name)


HEAVY = (
    "numpy",
    "pandas",
    "scipy",
    "pyomo",
    "pydantic",
    "paho",
    "uvicorn",
    "fastapi",
    "pandapower",
    "plotly",
    "dask",
    "pvlib",
    "rich.progress",
)


@pytest.mark.parametrize("statement", ["import p2pgrid.cli", "import market, grid, scenarios"])
def test_start_up_imports_nothing_heavy(statement: str) -> None:
    """``p2pgrid --help`` (the CLI module) and importing a package load none of the heavy
    libraries: the packages resolve their names on first use (issue 13; the start-up
    time itself is measured by bench/bench_startup.py); rich.progress only for the
    commands that show a progress bar."""
    import subprocess
    import sys

    probe = f"{statement}; import sys; print(sorted(set(sys.modules) & set({HEAVY!r})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


VALIDATE_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print(sorted(set(sys.modules) & set({heavy!r})), file=sys.stderr))
sys.argv = ["p2pgrid", "validate", {file!r}, *{extra!r}]
runpy.run_module("p2pgrid.cli", run_name="__main__")
"""


@pytest.mark.parametrize(
    "extra",
    [(), ("--set", "grid.feeder=ieee33"), ("--set", "simulation.start=2026-06-15T00:00+02:00")],
)
def test_validate_imports_no_numpy_pandas_or_solver(extra: tuple[str, ...]) -> None:
    """``p2pgrid validate`` of a scenario on a generated feeder reads the scenario and the
    feeder's name with pydantic only (issue 13: validate under 0.5 s, measured by
    bench/bench_startup.py): numpy, pandas, scipy, the solver stack, pandapower, plotly,
    dask, the dashboard and rich.progress (no progress bar) stay unloaded."""
    import subprocess
    import sys

    demo = str(ROOT / "scenarios" / "library" / "demo.toml")
    heavy = ("numpy", "pandas", "scipy", "pyomo", "pyarrow", "pandapower", "plotly", "dask",
             "fastapi", "pvlib", "highspy", "rich.progress")  # fmt: skip
    probe = VALIDATE_PROBE.format(heavy=heavy, file=demo, extra=list(extra))
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "[]"


RUN_PROBE = """
import runpy, sys
sys.argv = ["p2pgrid", "run", {file!r}, "--out", {out!r}, *{extra!r}]
try:
    runpy.run_module("p2pgrid.cli", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(m for m in sys.modules if m.partition(".")[0] in {heavy!r} or m in {heavy!r}))
"""


def test_a_small_run_imports_no_solver_stack_when_the_screen_settles_it(tmp_path: Path) -> None:
    """A run whose every interval passes the grid screen (10 households, 1 day on radial:40:
    ``recleared_intervals`` 0, no interval near a limit) never builds the Pyomo check model,
    so Pyomo, HiGHS and the scipy.stats that Pyomo's import pulls in stay unloaded (issue
    18 item 6), as do scipy.signal (the AR(1) filter is agents.profiles.load.ar1_days),
    pandapower, dask and the dashboard's FastAPI; the run still writes its check of
    every interval. Without ``--ledger`` and meters, cryptography (the ledger's Ed25519
    keys, the OCMF meters) is not loaded, and a TOML scenario does not load PyYAML."""
    import json
    import os
    import subprocess
    import sys

    demo = str(ROOT / "scenarios" / "library" / "demo.toml")
    extra = ["--set", "simulation.days=1", "--set", "community.households=10"]
    heavy = ("pyomo", "highspy", "scipy.stats", "scipy.signal", "pandapower", "dask", "fastapi",
             "cryptography", "yaml")  # fmt: skip
    probe = RUN_PROBE.format(file=demo, out=str(tmp_path / "run"), extra=extra, heavy=heavy)
    env = {**os.environ, "P2PGRID_CACHE_DIR": "off"}  # the run computes its PV
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    kpis = json.loads((tmp_path / "run" / "kpis.json").read_text())
    assert kpis["recleared_intervals"] == 0
    import pyarrow.parquet as pq

    intervals = pq.read_table(tmp_path / "run" / "intervals.parquet")
    assert intervals.num_rows == 96
    assert min(intervals["v_min_pu"].to_pylist()) > 0.95


FIRST_INTERVAL_PROBE = """
import runpy, sys
import scenarios.engine.start_trace as trace
at_first_interval = []
def mark():
    at_first_interval.append(sorted(m for m in sys.modules if m.partition(".")[0] in {heavy!r}
                                    or m.startswith("scenarios.reports")))
trace.mark_first_interval = mark
sys.argv = ["p2pgrid", "run", {file!r}, "--out", {out!r}, *{extra!r}]
try:
    runpy.run_module("p2pgrid.cli", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(at_first_interval)
print("plotly" in sys.modules, "igraph" in sys.modules)
"""


def test_a_run_reaches_its_first_interval_without_the_report_stack(tmp_path: Path) -> None:
    """The engine of ``p2pgrid run`` starts its first interval (the mark of
    :mod:`scenarios.engine.start_trace`, where bench/bench_startup.py measures start-up)
    with neither plotly, igraph nor any report module loaded: the runner imports them when
    it writes report.html (:mod:`scenarios.reports.run_page`), after the intervals; the
    run still writes its report with them (issue 18 item 6)."""
    import ast
    import subprocess
    import sys

    demo = str(ROOT / "scenarios" / "library" / "demo.toml")
    extra = ["--set", "simulation.days=1", "--set", "community.households=10"]
    probe = FIRST_INTERVAL_PROBE.format(
        file=demo, out=str(tmp_path / "run"), extra=extra, heavy=("plotly", "igraph")
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    marks, loaded_after = out.stdout.strip().splitlines()[-2:]
    assert ast.literal_eval(marks) == [[]]  # one first interval, nothing of the report
    assert loaded_after == "True True"  # then the report drew its figures and the map
    assert "Plotly.newPlot" in (tmp_path / "run" / "report.html").read_text()


def test_a_repeated_small_run_imports_neither_pvlib_nor_scipy(tmp_path: Path) -> None:
    """The first small run computes the PV generation with pvlib and stores it in the
    profile cache (agents.profiles.cache); the same run again reads it, so pvlib and SciPy
    (the cloud model's scipy.special, the sparse partner lists of a bilateral market) stay
    unloaded, as does demandlib (the H0 year is cached too), and it writes the same
    results (issue 18 item 6)."""
    import json
    import os
    import subprocess
    import sys

    import pyarrow.parquet as pq

    demo = str(ROOT / "scenarios" / "library" / "demo.toml")
    extra = ["--set", "simulation.days=1", "--set", "community.households=10"]
    env = {**os.environ, "P2PGRID_CACHE_DIR": str(tmp_path / "cache")}
    loaded = []
    for run in ("first", "again"):
        probe = RUN_PROBE.format(
            file=demo, out=str(tmp_path / run), extra=extra, heavy=("pvlib", "scipy", "demandlib")
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr
        loaded.append(out.stdout.strip().splitlines()[-1])
    assert all(f"'{m}'" in loaded[0] for m in ("pvlib", "scipy", "demandlib"))  # computes
    assert loaded[1] == "[]"
    first, again = (pq.read_table(tmp_path / r / "agents.parquet") for r in ("first", "again"))
    assert again.to_pandas().equals(first.to_pandas())  # NaN where NaN (indoor_temp_c)
    kpis = [json.loads((tmp_path / r / "kpis.json").read_text()) for r in ("first", "again")]
    assert kpis[0] == kpis[1]


def test_the_profile_and_p2p_modules_import_neither_pvlib_nor_scipy() -> None:
    """pvlib and SciPy are imported inside the functions that compute with them (the PV
    chain, the cloud model's Beta quantiles, an EPW file, sparse partner lists), so the
    modules themselves load without them (issue 18 item 6)."""
    import subprocess
    import sys

    statement = (
        "import agents.profiles.source, agents.profiles.pv, agents.profiles.weather_file, "
        "market.p2p_pairs, scenarios.engine.p2p"
    )
    found = "sorted(m for m in sys.modules if m.partition('.')[0] in ('pvlib', 'scipy'))"
    probe = f"{statement}; import sys; print({found})"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_system_losses_percent_is_pvlibs_default_loss_budget() -> None:
    """``agents.profiles.pv.SYSTEM_LOSSES_PERCENT``, computed on first use: pvlib's
    PVWatts default loss budget, 100 (1 - 0.98 0.97 0.98 0.98 0.995 0.985 0.99 0.97)."""
    import agents.profiles.pv as pv

    expected = 100 * (1 - 0.98 * 0.97 * 0.98 * 0.98 * 0.995 * 0.985 * 0.99 * 0.97)
    assert abs(pv.SYSTEM_LOSSES_PERCENT - expected) < 1e-9
    assert round(pv.SYSTEM_LOSSES_PERCENT, 2) == 14.08
