"""The probe runs of a hosting-capacity search: one case's scenario at one PV
penetration, run (or reused when its ``done.json`` matches) and assessed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError
from scenarios.studies.hosting_assessment import Assessment, assess
from scenarios.studies.sweep_worker import DONE_FILE, is_complete, run_variant

if TYPE_CHECKING:
    from distributed import Client

PARAMETERS = ("pv_share", "pv_kwp")
CASES = ("with_storage", "without_storage")


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


def run_probes(
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
