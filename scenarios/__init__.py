"""Scenarios: schema, the interval engine, runs and their results files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.lazy import lazy_namespace

if TYPE_CHECKING:
    from scenarios.config.loader import load_scenario
    from scenarios.config.schema import Scenario
    from scenarios.engine.runner import RunResult, run
    from scenarios.errors import ScenarioError
    from scenarios.results.files import read_results

#: Public name -> the submodule defining it, imported on first use (PEP 562), so that
#: importing one submodule (or the CLI's --help) does not import the whole package.
_EXPORTS = {
    "RunResult": "scenarios.engine.runner",
    "Scenario": "scenarios.config.schema",
    "ScenarioError": "scenarios.errors",
    "load_scenario": "scenarios.config.loader",
    "read_results": "scenarios.results.files",
    "run": "scenarios.engine.runner",
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
