"""Scenarios: schema, the interval engine, runs and their results files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.lazy import lazy_namespace

if TYPE_CHECKING:
    from scenarios.errors import ScenarioError
    from scenarios.loader import load_scenario
    from scenarios.results import read_results
    from scenarios.runner import RunResult, run
    from scenarios.schema import Scenario

#: Public name -> the submodule defining it, imported on first use (PEP 562), so that
#: importing one submodule (or the CLI's --help) does not import the whole package.
_EXPORTS = {
    "RunResult": "scenarios.runner",
    "Scenario": "scenarios.schema",
    "ScenarioError": "scenarios.errors",
    "load_scenario": "scenarios.loader",
    "read_results": "scenarios.results",
    "run": "scenarios.runner",
}

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "read_results",
    "run",
]


__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS, globals())
