"""What a run needs beyond the schema, checked by the code the run itself uses.

The run loads its feeder with :func:`scenario_feeder` and its profiles after
:func:`require_profiles`; ``p2pgrid validate`` calls :func:`check_runnable`, which runs
both, so a scenario it calls valid gets past the run's set-up (an unknown feeder name, a
bad feeder file, an optional package the scenario needs but that is not installed). A
generated feeder (``ieee33``, ``radial:<households>``) has no problem its name does not
show, so validate reads the name and does not build it (:func:`grid.feeder_names.parse_feeder`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from grid.district_networks import is_district, load_district
from grid.errors import FeederError
from grid.feeder_names import parse_feeder
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError

if TYPE_CHECKING:
    from grid.feeders import Feeder


@contextlib.contextmanager
def _under_grid_feeder() -> Iterator[None]:
    """The feeder's problems, reported under ``grid.feeder``."""
    try:
        yield
    except FeederError as exc:
        raise ScenarioError([f"grid.feeder: {p}" for p in exc.problems]) from None


def scenario_feeder(scenario: Scenario, n_households: int | None = None) -> Feeder:
    """The scenario's feeder, sized for ``n_households`` (default: its community);
    problems under ``grid.feeder``."""
    n = scenario.community.households if n_households is None else n_households
    with _under_grid_feeder():
        return parse_feeder(scenario.grid.feeder, households=n).load()


def check_feeder(scenario: Scenario) -> None:
    """Raise what :func:`scenario_feeder` would, building the feeder only when its name
    cannot tell (a feeder file, a SimBench grid)."""
    with _under_grid_feeder():
        if is_district(scenario.grid.feeder):  # the engine of scenarios.engine.district
            load_district(scenario.grid.feeder, households=scenario.community.households)
            return
        spec = parse_feeder(scenario.grid.feeder, households=scenario.community.households)
        if not spec.generated:
            spec.load()


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
        checks.append(check_feeder)
    for check in checks:
        try:
            check(scenario)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems, source=source)
