"""PV hosting capacity of a feeder: bisection over PV penetration with the grid check on.

``p2pgrid hosting-capacity FILE`` (or :func:`hosting_capacity`) finds the largest PV
penetration — the share of households with PV (``pv_share``, the default) or the PV
size of every PV household (``pv_kwp``, both bounds of ``community.pv_kwp`` set to it) —
that the feeder takes over the simulated period without a PV violation, in two cases:

- ``with_storage``: the scenario's batteries, EVs and V2G as given;
- ``without_storage``: no home batteries and no V2G (``community.battery_share = 0``,
  ``community.v2g_share = 0``; EVs still charge).

What counts as a violation. On real feeders the feeder's own background load breaks the
lower voltage limit on its own (on ``ieee33`` in every interval, see
``violations_background``), and PV cannot cause an under-voltage; PV breaks the *upper*
limits. A probe run therefore fails when, in any interval,

1. the grid check curtailed PV (``curtailed_kwh > 0`` in ``intervals.parquet``): the
   re-clearing curtails PV only to hold an over-voltage or a reverse-flow overload the
   uncurtailed flows break, so the feeder could not take that PV; or
2. a bus is above the upper voltage limit ``grid.v_max_pu − grid.v_margin_pu`` after the
   check (an over-voltage the re-clearing could not remove); or
3. a line (the transformer included) that carries power towards the substation
   (``p_kw < 0``, reverse flow) is above its loading limit after the check.

Limits, margins and the tolerance are the feeder model's own (:mod:`grid.limits`, built from
the scenario by :func:`scenarios.engine.grid_stage.scenario_limits`), so a probe fails on exactly
the violations the run's check counts.

The background load alone never breaks any of these (it is load: it lowers voltages and
drives forward flow), so every such violation is the community's. Under-voltage and
forward-flow overloads (load and EV charging) are not PV hosting limits and are not
counted. A violation that the market's grid-aware re-clearing removes by re-dispatching
batteries or V2G alone, without curtailing PV, is hosted: that is how storage raises
hosting capacity.

The binding element is read from ``buses.parquet`` and ``lines.parquet`` of the lowest
failing probe: of the buses at the upper voltage limit and the reverse-flow lines at
their loading limit (within :data:`ACTIVE_TOL_PU`, :data:`ACTIVE_TOL_LOADING`) in the
failing intervals, the one that is at its limit in the most intervals (then the one
furthest over it).

Search. ``pv_share`` is searched over whole numbers of PV households ``k = 0..n``
(penetration ``k / n``; owners are nested as ``k`` grows, since they are drawn from one
permutation); ``pv_kwp`` over ``[low, high]`` to within ``tol``. The bisection assumes that
a run which fails keeps failing with more PV; every probe is kept (``probes.parquet``) so
that can be checked. Every probe is a full run, kept under ``<case>/<probe>/``; a re-run
reuses finished probes (the sweep's ``done.json`` marker). Both cases are bisected in
lock-step, so with a Dask ``client`` their probes run in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import scenario_limits
from scenarios.errors import ScenarioError
from scenarios.results.files import BUSES_FILE, INTERVALS_FILE, LINES_FILE, write_json
from scenarios.results.out_dir import make_out_dir
from scenarios.studies.sweep import DONE_FILE, is_complete, run_variant

if TYPE_CHECKING:
    from distributed import Client

PARAMETERS = ("pv_share", "pv_kwp")
CASES = ("with_storage", "without_storage")
CURTAIL_TOL_KWH = 1e-6
"""Curtailment above this [kWh] in an interval fails the probe."""
ACTIVE_TOL_PU = 1e-3
"""How close to the upper voltage limit a bus must be to count as binding [p.u.]."""
ACTIVE_TOL_LOADING = 0.01
"""How close to its loading limit a line must be to count as binding [fraction of
rating]; the re-clearing holds the loading circle with an inscribed polygon, which stays
up to about half a percent inside it."""
PROBES_FILE = "probes.parquet"
HOSTING_FILE = "hosting.json"

HostingProgress = Callable[[str, float, bool], None]
"""``progress(case, value, passed)`` after each probe."""


@dataclass(frozen=True)
class Binding:
    """The element that limits hosting capacity in a failing run."""

    kind: Literal["bus", "line"]
    element: str
    limit: Literal["over-voltage", "reverse-flow overload"]
    worst_value: float
    """Highest voltage [p.u.] or loading [fraction of rating] in the failing intervals."""
    limit_value: float
    t: int
    """Interval of the worst value."""
    intervals: int
    """Failing intervals in which the element is at or over its limit."""

    def describe(self) -> str:
        unit = "p.u." if self.kind == "bus" else "of rating"
        return (
            f"{self.kind} {self.element} ({self.limit}: {self.worst_value:.4f} {unit} "
            f"vs limit {self.limit_value:.4f}, at its limit in {self.intervals} interval(s))"
        )


@dataclass(frozen=True)
class Assessment:
    """Whether a run stays within the PV hosting limits, and what binds if not."""

    passed: bool
    failing_intervals: int
    curtailed_kwh: float
    v_max_pu: float
    max_reverse_loading_frac: float
    binding: Binding | None


def assess(out_dir: str | Path, scenario: Scenario) -> Assessment:
    """Check a finished run (grid check on) against the PV hosting limits.

    See the module docstring for the definition of a violation.
    """
    if scenario.grid.check == "off":
        raise ScenarioError(["grid.check: hosting capacity needs the grid check ('pyomo')"])
    out = Path(out_dir)
    limits = scenario_limits(scenario)
    v_hi, load_hi = limits.v_hi_pu, limits.loading_limit_frac
    iv = pd.read_parquet(out / INTERVALS_FILE, columns=["t", "curtailed_kwh"])
    buses = pd.read_parquet(out / BUSES_FILE, columns=["t", "bus", "v_pu"])
    lines = pd.read_parquet(out / LINES_FILE, columns=["t", "line", "p_kw", "loading_frac"])
    buses["bus"] = buses["bus"].astype(str)
    lines["line"] = lines["line"].astype(str)
    reverse = lines[lines["p_kw"] < 0]

    curtailed_t = set(iv.loc[iv["curtailed_kwh"] > CURTAIL_TOL_KWH, "t"].astype(int))
    over_t = set(buses.loc[limits.over_voltage(buses["v_pu"].to_numpy()), "t"].astype(int))
    overload = limits.line_violation(reverse["loading_frac"].to_numpy())
    overload_t = set(reverse.loc[overload, "t"].astype(int))
    failing = curtailed_t | over_t | overload_t
    v_max = float(buses["v_pu"].max()) if len(buses) else float("nan")
    rev_max = float(reverse["loading_frac"].max()) if len(reverse) else 0.0
    binding = _binding(failing, buses, reverse, v_hi, load_hi) if failing else None
    return Assessment(
        passed=not failing,
        failing_intervals=len(failing),
        curtailed_kwh=float(iv["curtailed_kwh"].sum()),
        v_max_pu=v_max,
        max_reverse_loading_frac=rev_max,
        binding=binding,
    )


def _binding(
    failing: set[int], buses: pd.DataFrame, reverse: pd.DataFrame, v_hi: float, load_hi: float
) -> Binding:
    """The element at its upper limit in the most failing intervals."""
    b = buses[buses["t"].isin(failing)]
    r = reverse[reverse["t"].isin(failing)]
    candidates: list[tuple[int, float, Binding]] = []
    for frame, kind, column, limit, tol, name in (
        (b, "bus", "v_pu", v_hi, ACTIVE_TOL_PU, "over-voltage"),
        (r, "line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "reverse-flow overload"),
    ):
        active = frame[frame[column] >= limit - tol]
        for element, part in active.groupby(kind, sort=True):
            worst = part.loc[part[column].idxmax()]
            hits = int(part["t"].nunique())
            excess = float(worst[column]) / limit
            candidates.append(
                (
                    hits,
                    excess,
                    Binding(
                        kind,
                        str(element),
                        name,
                        float(worst[column]),
                        limit,
                        int(worst["t"]),
                        hits,
                    ),
                )
            )
    if candidates:
        return max(candidates, key=lambda c: (c[0], c[1]))[2]
    # nothing sits at a limit (should not happen): name the highest voltage
    worst = b.loc[b["v_pu"].idxmax()]
    return Binding(
        "bus", str(worst["bus"]), "over-voltage", float(worst["v_pu"]), v_hi, int(worst["t"]), 0
    )


# ------------------------------------------------------------------------------ probes


@dataclass(frozen=True)
class Probe:
    """One run of the search."""

    case: str
    value: float
    """pv_share [-] or kWp per PV household [kWp]."""
    households_with_pv: int
    assessment: Assessment
    out_dir: Path


def case_scenario(scenario: Scenario, case: str) -> dict[str, Any]:
    """The scenario of a case as a plain dict."""
    if case not in CASES:
        raise ValueError(f"case {case!r} is not one of {', '.join(CASES)}")
    data = scenario.model_dump(mode="json")
    if case == "without_storage":
        data["community"] = {**data["community"], "battery_share": 0.0, "v2g_share": 0.0}
    return data


def probe_scenario(scenario: Scenario, case: str, parameter: str, value: float) -> Scenario:
    """The scenario of one probe: the case, with the PV penetration set to ``value``.

    Raises
    ------
    ScenarioError
        The value makes an invalid scenario.
    """
    data = case_scenario(scenario, case)
    if parameter == "pv_share":
        data["community"]["pv_share"] = float(value)
    elif parameter == "pv_kwp":
        data["community"]["pv_kwp"] = [float(value), float(value)]
    else:
        raise ScenarioError([f"parameter: {parameter!r} is not one of {', '.join(PARAMETERS)}"])
    data["name"] = f"{scenario.name} {case} {parameter}={value:.6g}"
    return load_scenario(data)


def _probe_dir(out: Path, case: str, parameter: str, value: float) -> Path:
    return out / case / f"{parameter}-{value:.6g}"


def _run_probes(
    jobs: Sequence[tuple[str, float]],
    scenario: Scenario,
    parameter: str,
    out: Path,
    client: Client | None,
) -> list[Probe]:
    """Run (or reuse) the probes ``jobs`` = [(case, value)], in parallel with a client."""
    scenarios = [probe_scenario(scenario, c, parameter, v) for c, v in jobs]
    dirs = [_probe_dir(out, c, parameter, v) for c, v in jobs]
    todo = [
        i for i, (s, d) in enumerate(zip(scenarios, dirs, strict=True)) if not is_complete(d, s)
    ]
    args = [
        (
            f"{jobs[i][0]}:{jobs[i][1]:.6g}",
            scenarios[i].model_dump(mode="json"),
            str(dirs[i].resolve()),
        )
        for i in todo
    ]
    if client is not None and args:
        futures = [client.submit(run_variant, *a, pure=False) for a in args]
        outcomes = client.gather(futures)
    else:
        outcomes = [run_variant(*a) for a in args]
    for outcome in outcomes:
        if outcome["status"] != "ok":
            raise RuntimeError(f"probe {outcome['variant']} failed: {outcome['error']}")
    probes = []
    for (case, value), sc, d in zip(jobs, scenarios, dirs, strict=True):
        assert (d / DONE_FILE).is_file()
        n_pv = round(sc.community.pv_share * sc.community.households)
        probes.append(Probe(case, float(value), n_pv, assess(d, sc), d))
    return probes


# ---------------------------------------------------------------------------- search


@dataclass
class _Search:
    lo: float
    hi: float
    passed: dict[float, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseResult:
    """Hosting capacity of one case."""

    case: str
    capacity: float | None
    """Largest value found to pass; None when even the lowest fails."""
    first_failing: float | None
    """Smallest value found to fail; None when the highest passes (capacity ≥ high)."""
    binding: Binding | None
    """The binding element of the ``first_failing`` probe."""
    probes: tuple[Probe, ...]


@dataclass(frozen=True)
class HostingCapacity:
    """Hosting capacity of the scenario's feeder, per case."""

    parameter: str
    low: float
    high: float
    cases: dict[str, CaseResult]
    out_dir: Path
    probes: pd.DataFrame


def _step(value: float, households: int, parameter: str) -> float:
    """Map a search coordinate to the parameter (pv_share searches over households)."""
    return value / households if parameter == "pv_share" else value


def hosting_capacity(
    scenario: Scenario,
    out_dir: str | Path,
    parameter: str = "pv_share",
    low: float | None = None,
    high: float | None = None,
    tol: float = 0.5,
    cases: Sequence[str] = CASES,
    client: Client | None = None,
    progress: HostingProgress | None = None,
) -> HostingCapacity:
    """Bisect the PV penetration the feeder hosts without a PV violation.

    Parameters
    ----------
    scenario : Scenario
        With ``grid.check`` on.
    out_dir : path
        Where every probe's results go (reused on a re-run).
    parameter : {"pv_share", "pv_kwp"}
        ``pv_share``: share of households with PV, searched over whole households;
        ``pv_kwp``: the size of every PV household's array [kWp].
    low, high : float, optional
        Search range; defaults 0 and 1 for ``pv_share``, 1 and 30 kWp for ``pv_kwp``.
    tol : float
        Resolution of the ``pv_kwp`` search [kWp] (``pv_share`` resolves one household).
    cases : sequence of str
        Some of :data:`CASES`.
    client : distributed.Client, optional
        Run the probes of the cases in parallel on this client.
    progress : callable, optional
        ``progress(case, value, passed)`` after each probe.

    Raises
    ------
    ScenarioError
        Grid check off, a bad parameter or range, or a probe scenario that is invalid.
    """
    problems = []
    if parameter not in PARAMETERS:
        problems.append(f"parameter: {parameter!r} is not one of {', '.join(PARAMETERS)}")
    if scenario.grid.check == "off":
        problems.append(
            "grid.check: hosting capacity needs the grid check ('pyomo' or 'pyomo+ac'), not 'off'"
        )
    bad_cases = [c for c in cases if c not in CASES]
    if bad_cases or not cases:
        problems.append(f"cases: give some of {', '.join(CASES)} (got {list(cases)})")
    n = scenario.community.households
    if parameter == "pv_share":
        low = 0.0 if low is None else low
        high = 1.0 if high is None else high
        if not 0.0 <= low < high <= 1.0:
            problems.append(f"range: pv_share needs 0 ≤ low < high ≤ 1 (got {low}, {high})")
        lo_k, hi_k = int(np.ceil(low * n - 1e-9)), int(np.floor(high * n + 1e-9))
        if lo_k >= hi_k:
            problems.append(f"range: [{low}, {high}] holds fewer than two whole households of {n}")
    else:
        low = 1.0 if low is None else low
        high = 30.0 if high is None else high
        if not 0.0 < low < high:
            problems.append(f"range: pv_kwp needs 0 < low < high (got {low}, {high})")
        if not tol > 0:
            problems.append(f"tol: must be > 0 (got {tol})")
        if scenario.community.pv_share <= 0:
            problems.append("community.pv_share: searching pv_kwp needs households with PV")
        lo_k, hi_k = low, high  # type: ignore[assignment]
    if problems:
        raise ScenarioError(problems)
    for case in cases:  # both ends must make valid scenarios: fail before running anything
        for k in (lo_k, hi_k):
            probe_scenario(scenario, case, parameter, _step(k, n, parameter))

    out = make_out_dir(out_dir)
    discrete = parameter == "pv_share"
    searches = {c: _Search(float(lo_k), float(hi_k)) for c in cases}
    found: dict[str, list[Probe]] = {c: [] for c in cases}

    def evaluate(points: list[tuple[str, float]]) -> None:
        jobs = [(c, _step(k, n, parameter)) for c, k in points]
        for (case, k), probe in zip(
            points, _run_probes(jobs, scenario, parameter, out, client), strict=True
        ):
            searches[case].passed[k] = probe.assessment.passed
            found[case].append(probe)
            if progress is not None:
                progress(case, probe.value, probe.assessment.passed)

    evaluate([(c, s.hi) for c, s in searches.items()] + [(c, s.lo) for c, s in searches.items()])
    while True:
        points = []
        for case, s in searches.items():
            if s.passed[s.hi] or not s.passed[s.lo]:
                continue
            if (s.hi - s.lo <= 1) if discrete else (s.hi - s.lo <= tol):
                continue
            mid = float((s.lo + s.hi) // 2) if discrete else 0.5 * (s.lo + s.hi)
            points.append((case, mid))
        if not points:
            break
        evaluate(points)
        for case, mid in points:
            s = searches[case]
            if s.passed[mid]:
                s.lo = mid
            else:
                s.hi = mid

    results: dict[str, CaseResult] = {}
    for case, s in searches.items():
        by_value = {p.value: p for p in found[case]}
        if s.passed[s.hi]:
            capacity, first_failing = s.hi, None
        elif not s.passed[s.lo]:
            capacity, first_failing = None, s.lo
        else:
            capacity, first_failing = s.lo, s.hi
        cap = None if capacity is None else _step(capacity, n, parameter)
        fail = None if first_failing is None else _step(first_failing, n, parameter)
        binding = by_value[fail].assessment.binding if fail is not None else None
        probes = tuple(sorted(found[case], key=lambda p: p.value))
        results[case] = CaseResult(case, cap, fail, binding, probes)

    table = probes_table(results)
    table.to_parquet(out / PROBES_FILE, index=False)
    report = HostingCapacity(parameter, float(low), float(high), results, out, table)
    write_json(hosting_json(report, scenario), out / HOSTING_FILE)
    return report


def probes_table(results: dict[str, CaseResult]) -> pd.DataFrame:
    """Every probe of every case: value, verdict and what bound."""
    rows = []
    for result in results.values():
        for p in result.probes:
            a = p.assessment
            rows.append(
                {
                    "case": p.case,
                    "value": p.value,
                    "households_with_pv": p.households_with_pv,
                    "passed": a.passed,
                    "failing_intervals": a.failing_intervals,
                    "curtailed_kwh": a.curtailed_kwh,
                    "v_max_pu": a.v_max_pu,
                    "max_reverse_loading_frac": a.max_reverse_loading_frac,
                    "binding_kind": a.binding.kind if a.binding else None,
                    "binding_element": a.binding.element if a.binding else None,
                    "binding_limit": a.binding.limit if a.binding else None,
                    "run_dir": str(p.out_dir),
                }
            )
    return pd.DataFrame(rows)


def hosting_json(report: HostingCapacity, scenario: Scenario) -> dict[str, Any]:
    """The summary written to ``hosting.json``."""
    return {
        "scenario": scenario.name,
        "feeder": scenario.grid.feeder,
        "households": scenario.community.households,
        "days": scenario.simulation.days,
        "parameter": report.parameter,
        "range": [report.low, report.high],
        "cases": {
            case: {
                "capacity": r.capacity,
                "first_failing": r.first_failing,
                "binding": asdict(r.binding) if r.binding else None,
                "probes": len(r.probes),
            }
            for case, r in report.cases.items()
        },
    }


def read_hosting(out_dir: str | Path) -> dict[str, Any]:
    """``hosting.json`` of an earlier search."""
    return json.loads((Path(out_dir) / HOSTING_FILE).read_text(encoding="utf-8"))
