"""The variants of a sweep: every point of the parameters, with its seed and its
validated scenario.

Variants. The list and range parameters span a grid (their Cartesian product, in file
order, the last varying fastest); random parameters (``uniform``, ``integers``,
``choice``) are drawn ``sample.n`` times from ``numpy.random.default_rng(sample.seed)``,
in file order, and every draw is combined with every grid point. The expansion is
deterministic: the same file gives the same variants with the same ids (``v0000``, …).

Seeds (``seed_rule``). ``common`` (default): every variant runs with the base
scenario's ``simulation.seed`` — common random numbers, so variants have the same
households, profiles, bids and trips and differ only by the swept parameters. That is
what a comparison across parameters wants. ``per_variant``: each variant's seed is
derived from the base seed and the variant's own parameter values (a SHA-256 of their
canonical JSON), so it does not depend on the variant's position in the sweep.
Sweeping ``simulation.seed`` itself (replicates) overrides both rules.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError
from scenarios.studies.sweep_keys import set_key
from scenarios.studies.sweep_parameters import Parameter, Value

SEED_KEY = "simulation.seed"
SEED_RULES = ("common", "per_variant")


@dataclass(frozen=True)
class Variant:
    """One point of the sweep: its parameter values, seed and scenario (or error)."""

    id: str
    parameters: dict[str, Value]
    seed: int
    data: dict[str, Any]
    """The variant's scenario as a plain dict (base, ``set``, parameters, seed)."""
    scenario: Scenario | None
    error: str | None = None
    """The scenario's validation error when a value is invalid (the variant is not run)."""


def derived_seed(base_seed: int, parameters: Mapping[str, Value]) -> int:
    """The ``per_variant`` seed: SHA-256 of the base seed and the parameters' canonical JSON."""
    text = json.dumps({"seed": base_seed, "parameters": dict(parameters)}, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str
    base: dict[str, Any]
    """The base scenario with ``set`` applied, as a plain dict."""
    parameters: tuple[Parameter, ...]
    seed_rule: Literal["common", "per_variant"] = "common"
    sample_n: int | None = None
    sample_seed: int | None = None
    source: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    """The ``set`` overrides, as dotted key paths."""

    @property
    def keys(self) -> list[str]:
        """The swept scenario keys, in file order."""
        return [p.key for p in self.parameters]

    @property
    def base_seed(self) -> int:
        return int(self.base.get("simulation", {}).get("seed", Scenario().simulation.seed))

    def points(self) -> list[dict[str, Value]]:
        """The parameter values of every variant, in variant order."""
        grid = [p for p in self.parameters if not p.random]
        randoms = [p for p in self.parameters if p.random]
        draws: list[dict[str, Value]] = [{}]
        if randoms:
            rng = np.random.default_rng(self.sample_seed)
            draws = [{p.key: p.draw(rng) for p in randoms} for _ in range(self.sample_n or 0)]
        out = []
        for combo in itertools.product(*(p.values for p in grid)):
            fixed = dict(zip((p.key for p in grid), combo, strict=True))
            for draw in draws:
                point = {**fixed, **draw}
                out.append({k: point[k] for k in self.keys})
        return out

    def variants(self) -> list[Variant]:
        """Every variant, validated one by one (invalid ones carry their error)."""
        points = self.points()
        width = max(4, len(str(len(points) - 1)))
        out = []
        for i, point in enumerate(points):
            vid = f"v{i:0{width}d}"
            data = json.loads(json.dumps(self.base))
            data["name"] = f"{self.name} {vid}"
            for key, value in point.items():
                set_key(data, key, list(value) if isinstance(value, tuple) else value)
            if SEED_KEY in point:
                seed = point[SEED_KEY]
            elif self.seed_rule == "per_variant":
                seed = derived_seed(self.base_seed, point)
            else:
                seed = self.base_seed
            if SEED_KEY not in point:
                set_key(data, SEED_KEY, seed)
            try:
                scenario, error = load_scenario(data), None
            except ScenarioError as exc:
                scenario, error = None, str(exc)
            out.append(Variant(vid, point, seed, data, scenario, error))  # type: ignore[arg-type]  # a swept seed is an int
        return out


def count_variants(parameters: Sequence[Parameter], sample_n: int | None) -> int:
    grid = math.prod(len(p.values) for p in parameters if not p.random)
    return grid * (sample_n or 1) if any(p.random for p in parameters) else grid
