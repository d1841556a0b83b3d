"""The probe runs of a hosting-capacity search: one case's scenario at one value of the
searched parameter, run (or reused when its ``done.json`` matches) and assessed.

Cases. PV (``pv_share``, ``pv_kwp``): :data:`CASES`, with and without batteries/V2G.
Heat pumps (``heat_pump_share``): :data:`HEAT_PUMP_CASES`, with and without §14a dimming
(``dimming``: ``grid.dimming = true`` with the scenario's ``grid.controllable_share``, or
every household registered when the scenario has none, as every heat pump installed
since 2024 must be; ``no_dimming``: ``grid.dimming = false``), each with the market
(``p2p``, the run itself) and without it (``baseline``, the same run's no-P2P baseline:
both cases read one run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError
from scenarios.studies.hosting_assessment import Assessment, Side, assess, assess_baseline
from scenarios.studies.sweep_worker import DONE_FILE, is_complete, run_variant

if TYPE_CHECKING:
    from distributed import Client

PARAMETERS = ("pv_share", "pv_kwp", "heat_pump_share")
CASES = ("with_storage", "without_storage")
HEAT_PUMP_CASES = ("p2p_dimming", "baseline_dimming", "p2p_no_dimming", "baseline_no_dimming")
SIDES: dict[str, Side] = {"pv_share": "export", "pv_kwp": "export", "heat_pump_share": "import"}
"""Which limits each parameter is hosted up to (:mod:`scenarios.studies.hosting_assessment`)."""


def parameter_cases(parameter: str) -> tuple[str, ...]:
    """The cases a search over ``parameter`` compares."""
    return HEAT_PUMP_CASES if parameter == "heat_pump_share" else CASES


def _run_case(case: str) -> str:
    """The run a case reads (a heat-pump case's market and baseline share one run)."""
    return case.removeprefix("p2p_").removeprefix("baseline_")


@dataclass(frozen=True)
class Probe:
    """One run of the search."""

    case: str
    value: float
    """pv_share [-] or kWp per PV household [kWp]."""
    households_with_pv: int
    households_with_heat_pump: int
    assessment: Assessment
    out_dir: Path


def case_scenario(scenario: Scenario, case: str) -> dict[str, Any]:
    """The scenario of a case as a plain dict."""
    if case not in CASES + HEAT_PUMP_CASES:
        raise ValueError(f"case {case!r} is not one of {', '.join(CASES + HEAT_PUMP_CASES)}")
    data = scenario.model_dump(mode="json")
    if case == "without_storage":
        data["community"] = {**data["community"], "battery_share": 0.0, "v2g_share": 0.0}
    elif _run_case(case) == "dimming":
        share = scenario.grid.controllable_share or 1.0
        data["grid"] = {**data["grid"], "dimming": True, "controllable_share": share}
    elif _run_case(case) == "no_dimming":
        data["grid"] = {**data["grid"], "dimming": False}
    return data


def probe_scenario(scenario: Scenario, case: str, parameter: str, value: float) -> Scenario:
    """The scenario of one probe: the case, with ``parameter`` set to ``value``.

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
    elif parameter == "heat_pump_share":
        data["community"]["heat_pump_share"] = float(value)
    else:
        raise ScenarioError([f"parameter: {parameter!r} is not one of {', '.join(PARAMETERS)}"])
    data["name"] = f"{scenario.name} {_run_case(case)} {parameter}={value:.6g}"
    return load_scenario(data)


def _probe_dir(out: Path, case: str, parameter: str, value: float) -> Path:
    return out / _run_case(case) / f"{parameter}-{value:.6g}"


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
    first = {d: i for i, d in reversed(list(enumerate(dirs)))}  # one run per directory
    todo = [i for i in sorted(first.values()) if not is_complete(dirs[i], scenarios[i])]
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
        c = sc.community
        n_pv, n_hp = round(c.pv_share * c.households), round(c.heat_pump_share * c.households)
        if case.startswith("baseline_"):
            assessment = assess_baseline(d, sc)
        else:
            assessment = assess(d, sc, SIDES[parameter])
        probes.append(Probe(case, float(value), n_pv, n_hp, assessment, d))
    return probes
