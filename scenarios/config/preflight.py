"""What a run needs beyond the schema, checked by the code the run itself uses.

The run loads its feeder with :func:`scenario_feeder` and its profiles after
:func:`require_profiles`; ``p2pgrid validate`` calls :func:`check_runnable`, which runs
both, so a scenario it calls valid gets past the run's set-up (an unknown feeder name, a
bad feeder file, an optional package the scenario needs but that is not installed).
"""

from __future__ import annotations

from collections.abc import Callable

from grid import Feeder, FeederError, load_feeder
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError


def scenario_feeder(scenario: Scenario, n_households: int | None = None) -> Feeder:
    """The scenario's feeder, sized for ``n_households`` (default: its community);
    problems under ``grid.feeder``."""
    n = scenario.community.households if n_households is None else n_households
    try:
        return load_feeder(scenario.grid.feeder, households=n)
    except FeederError as exc:
        raise ScenarioError([f"grid.feeder: {p}" for p in exc.problems]) from None


def require_profiles(scenario: Scenario) -> None:
    """Raise unless the package behind ``community.profiles`` is installed."""
    if scenario.community.profiles != "simbench":
        return
    # imported here: the profile generators (scipy.signal) cost ``p2pgrid validate`` a second
    from agents.profiles.simbench import import_simbench

    try:
        import_simbench()
    except ImportError as exc:
        raise ScenarioError([f"community.profiles: {exc}"]) from None


def check_runnable(scenario: Scenario, source: str | None = None) -> None:
    """Every problem the run's set-up would raise, reported together.

    The feeder is loaded only when the run loads it (``grid.check`` not ``"off"``).
    """
    problems: list[str] = []
    checks: list[Callable[[Scenario], object]] = [require_profiles]
    if scenario.grid.check != "off":
        checks.append(scenario_feeder)
    for check in checks:
        try:
            check(scenario)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems, source=source)
