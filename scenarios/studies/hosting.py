"""Hosting capacity of a feeder: bisection over PV or heat-pump penetration with the grid
check on.

``p2pgrid hosting-capacity FILE`` (or :func:`hosting_capacity`) finds the largest PV
penetration — the share of households with PV (``pv_share``, the default) or the PV
size of every PV household (``pv_kwp``, both bounds of ``community.pv_kwp`` set to it) —
that the feeder takes over the simulated period without a PV violation, in two cases:

- ``with_storage``: the scenario's batteries, EVs and V2G as given;
- ``without_storage``: no home batteries and no V2G (``community.battery_share = 0``,
  ``community.v2g_share = 0``; EVs still charge).

Over ``heat_pump_share`` (the share of households heated by a heat pump) it finds the
largest share the feeder takes without a load-side violation, with and without §14a
dimming, with and without the market (the cases of :mod:`scenarios.studies.hosting_probes`),
over the scenario's own dates (heat pumps bind in winter: give a January scenario).

What counts as a violation and what binds: :mod:`scenarios.studies.hosting_assessment`;
the probe runs: :mod:`scenarios.studies.hosting_probes`.

Search. ``pv_share`` and ``heat_pump_share`` are searched over whole numbers of
households ``k = 0..n`` (penetration ``k / n``; owners are nested as ``k`` grows, since
they are drawn from one permutation); ``pv_kwp`` over ``[low, high]`` to within ``tol``.
The bisection assumes that a run which fails keeps failing with more PV (heat pumps);
every probe is kept (``probes.parquet``) so that can be checked. Every probe is a full
run, kept under ``<case>/<probe>/`` (a heat-pump case's market and baseline read one run,
under ``dimming/`` or ``no_dimming/``); a re-run
reuses finished probes (the sweep's ``done.json`` marker). Both cases are bisected in
lock-step, so with a Dask ``client`` their probes run in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError
from scenarios.results.files import write_json
from scenarios.results.out_dir import make_out_dir
from scenarios.studies.hosting_assessment import Binding
from scenarios.studies.hosting_probes import (
    PARAMETERS,
    Probe,
    parameter_cases,
    probe_scenario,
    run_probes,
)

if TYPE_CHECKING:
    from distributed import Client

PROBES_FILE = "probes.parquet"
HOSTING_FILE = "hosting.json"

HostingProgress = Callable[[str, float, bool], None]
"""``progress(case, value, passed)`` after each probe."""


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
    """Map a search coordinate to the parameter (shares search over households)."""
    return value / households if parameter in DISCRETE else value


DISCRETE = ("pv_share", "heat_pump_share")
"""The parameters searched over whole households."""


def hosting_capacity(
    scenario: Scenario,
    out_dir: str | Path,
    parameter: str = "pv_share",
    low: float | None = None,
    high: float | None = None,
    tol: float = 0.5,
    cases: Sequence[str] | None = None,
    client: Client | None = None,
    progress: HostingProgress | None = None,
) -> HostingCapacity:
    """Bisect the PV or heat-pump penetration the feeder hosts within its limits.

    Parameters
    ----------
    scenario : Scenario
        With ``grid.check`` on.
    out_dir : path
        Where every probe's results go (reused on a re-run).
    parameter : {"pv_share", "pv_kwp", "heat_pump_share"}
        ``pv_share``: share of households with PV, searched over whole households;
        ``pv_kwp``: the size of every PV household's array [kWp]; ``heat_pump_share``:
        share of households with a heat pump, searched over whole households.
    low, high : float, optional
        Search range; defaults 0 and 1 for the shares, 1 and 30 kWp for ``pv_kwp``.
    tol : float
        Resolution of the ``pv_kwp`` search [kWp] (a share resolves one household).
    cases : sequence of str, optional
        Some of the parameter's cases (:func:`~scenarios.studies.hosting_probes.parameter_cases`);
        default all.
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
        problems.append(f"parameter (--over): {parameter!r} is not one of {', '.join(PARAMETERS)}")
    known = parameter_cases(parameter)
    cases = known if cases is None else tuple(cases)
    if scenario.grid.check == "off":
        problems.append(
            "grid.check: hosting capacity needs the grid check ('pyomo' or 'pyomo+ac'), not 'off'"
        )
    bad_cases = [c for c in cases if c not in known]
    if bad_cases or not cases:
        problems.append(f"cases: give some of {', '.join(known)} (got {list(cases)})")
    n = scenario.community.households
    if parameter in DISCRETE:
        low = 0.0 if low is None else low
        high = 1.0 if high is None else high
        if not 0.0 <= low < high <= 1.0:
            problems.append(f"range: {parameter} needs 0 ≤ low < high ≤ 1 (got {low}, {high})")
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
    discrete = parameter in DISCRETE
    searches = {c: _Search(float(lo_k), float(hi_k)) for c in cases}
    found: dict[str, list[Probe]] = {c: [] for c in cases}

    def evaluate(points: list[tuple[str, float]]) -> None:
        jobs = [(c, _step(k, n, parameter)) for c, k in points]
        for (case, k), probe in zip(
            points, run_probes(jobs, scenario, parameter, out, client), strict=True
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

    table = probes_table(results, parameter)
    table.to_parquet(out / PROBES_FILE, index=False)
    report = HostingCapacity(parameter, float(low), float(high), results, out, table)
    write_json(hosting_json(report, scenario), out / HOSTING_FILE)
    return report


def probes_table(results: dict[str, CaseResult], parameter: str) -> pd.DataFrame:
    """Every probe of every case: value, verdict and what bound."""
    rows = []
    for result in results.values():
        for p in result.probes:
            a = p.assessment
            rows.append(
                {
                    "parameter": parameter,
                    "case": p.case,
                    "value": p.value,
                    "households_with_pv": p.households_with_pv,
                    "households_with_heat_pump": p.households_with_heat_pump,
                    "passed": a.passed,
                    "failing_intervals": a.failing_intervals,
                    "curtailed_kwh": a.curtailed_kwh,
                    "v_max_pu": a.v_max_pu,
                    "max_reverse_loading_frac": a.max_reverse_loading_frac,
                    "v_min_pu": a.v_min_pu,
                    "max_forward_loading_frac": a.max_forward_loading_frac,
                    "dimmed_kwh": a.dimmed_kwh,
                    "unmet_heat_kwh": a.unmet_heat_kwh,
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
