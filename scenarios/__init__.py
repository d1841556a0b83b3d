"""Scenarios: schema, the interval engine, runs and their results files."""

from scenarios.errors import ScenarioError
from scenarios.loader import load_scenario
from scenarios.results import read_results
from scenarios.runner import RunResult, run
from scenarios.schema import Scenario

__all__ = ["RunResult", "Scenario", "ScenarioError", "load_scenario", "read_results", "run"]
