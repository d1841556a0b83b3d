"""Options and arguments shared by the commands (in their own module, so that
``python -m p2pgrid.cli`` does not import the command modules in a circle)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a scenario key: --set market.mechanism=uniform"),
]
ScenarioArg = Annotated[Path, typer.Argument(help="Scenario file (TOML or YAML).")]


def overrides(
    sets: list[str] | None, days: int | None = None, seed: int | None = None
) -> list[str]:
    """``--set`` overrides with ``--days`` and ``--seed`` added as their keys."""
    out = list(sets or [])
    if days is not None:
        out.append(f"simulation.days={days}")
    if seed is not None:
        out.append(f"simulation.seed={seed}")
    return out
