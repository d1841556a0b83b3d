"""Sweep files: a base scenario plus the parameters to vary, validated strictly.

A sweep file (TOML, or YAML of the same shape) names a base scenario, fixed overrides
and the scenario keys to vary::

    name = "pv-and-storage"
    base = "../demo.toml"           # scenario file, relative to this file (optional)
    seed_rule = "common"            # common | per_variant

    [set]                           # fixed overrides of the base, for every variant
    "simulation.days" = 1

    [parameters]                    # scenario key paths to vary
    "community.pv_share" = [0.2, 0.5, 0.8]                            # a list of values
    "community.battery_share" = { start = 0.0, stop = 0.6, num = 4 }  # evenly spaced, ends included
    "market.grid_fee_per_kwh" = { start = 0.0, stop = 0.04, step = 0.02 }
    "market.retail_price_per_kwh" = { uniform = [0.28, 0.40] }        # seeded random samples
    "market.mechanism" = { choice = ["uniform", "mcafee"] }

    [sample]                        # needed by random parameters
    n = 8
    seed = 7

Keys may be written dotted and quoted (``"community.pv_share"``) or as nested tables
(``[parameters.community] pv_share = [...]``); every key must be a scenario key
(:class:`scenarios.config.schema.Scenario`).

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

Validation. Everything wrong with the file — unknown keys, keys that are not scenario
keys, malformed value specs, a base scenario that does not load — is collected into
one :class:`~scenarios.errors.ScenarioError` with the key path of each problem. A value
that is well-formed but invalid for the scenario (``community.pv_share = 1.5``) is not
a file error: that variant is reported as failed with the scenario's own error
(:func:`scenarios.config.loader.load_scenario`) and the others run.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from scenarios.config.loader import apply_overrides, load_scenario, read_scenario_file
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError

SEED_KEY = "simulation.seed"
SEED_RULES = ("common", "per_variant")
MAX_VARIANTS = 100_000
_TOP_KEYS = ("name", "base", "seed_rule", "set", "parameters", "sample")
_SAMPLE_KEYS = ("n", "seed")
_GRID_SPECS = ("start", "stop", "num", "step")
_RANDOM_SPECS = ("uniform", "integers", "choice")
_SPEC_KEYS = _GRID_SPECS + _RANDOM_SPECS

Scalar = bool | int | float | str
Value = Scalar | list[Scalar]


# --------------------------------------------------------------------- scenario keys


def _field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The section model of field ``name``, or None when it is a leaf."""
    annotation = model.model_fields[name].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def scenario_key_kind(path: str) -> tuple[Literal["leaf", "section"] | None, str | None]:
    """Whether ``path`` is a leaf key, a section of the scenario, or neither.

    Returns ``(kind, hint)``: ``kind`` is None for an unknown key, and ``hint`` then
    names the closest known key at the first unknown part.
    """
    model: type[BaseModel] = Scenario
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if part not in model.model_fields:
            close = difflib.get_close_matches(part, list(model.model_fields), n=1)
            prefix = ".".join(parts[:depth])
            hint = f"{prefix}.{close[0]}" if prefix and close else (close[0] if close else None)
            return None, hint
        section = _field_model(model, part)
        if section is None:
            return ("leaf", None) if depth == len(parts) - 1 else (None, None)
        model = section
    return "section", None


def _flatten(
    table: Mapping[str, Any], where: str, problems: list[str], prefix: str = ""
) -> dict[str, Any]:
    """Dotted scenario key paths → values, from dotted keys and/or nested tables."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        kind, hint = scenario_key_kind(path)
        if kind == "section" and isinstance(value, Mapping):
            out.update(_flatten(value, where, problems, path))
        elif kind == "leaf":
            out[path] = value
        elif kind == "section":
            problems.append(f"{where}.{path}: is a section of the scenario, not a key")
        else:
            suggestion = f" (did you mean {hint!r}?)" if hint else ""
            problems.append(f"{where}.{path}: not a scenario key{suggestion}")
    return out


def set_key(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted key path in a nested scenario dict (creating sections)."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


# ------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Parameter:
    """One swept scenario key: either a grid of values or a random distribution."""

    key: str
    values: tuple[Value, ...] = ()
    """The values of a list or range parameter (empty for random ones)."""
    distribution: Literal["uniform", "integers", "choice"] | None = None
    bounds: tuple[Value, ...] = ()
    """``uniform``/``integers``: (low, high), both included for integers; ``choice``: options."""

    @property
    def random(self) -> bool:
        return self.distribution is not None

    def draw(self, rng: np.random.Generator) -> Value:
        """One random value (random parameters only)."""
        if self.distribution == "uniform":
            low, high = float(self.bounds[0]), float(self.bounds[1])  # type: ignore[arg-type]
            return float(rng.uniform(low, high))
        if self.distribution == "integers":
            low, high = int(self.bounds[0]), int(self.bounds[1])  # type: ignore[arg-type]
            return int(rng.integers(low, high + 1))
        if self.distribution == "choice":
            return self.bounds[int(rng.integers(len(self.bounds)))]
        raise ValueError(f"{self.key} is not a random parameter")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def _is_value(value: Any) -> bool:
    """A scenario value: a scalar or a flat list of scalars (range keys like pv_kwp)."""
    if isinstance(value, list | tuple):
        return len(value) > 0 and all(_is_scalar(v) for v in value)
    return _is_scalar(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _tidy(x: float) -> float:
    """Round away binary noise of evenly spaced values (0.30000000000000004 → 0.3)."""
    return float(f"{x:.12g}")


def _range_values(where: str, spec: Mapping[str, Any], problems: list[str]) -> tuple[Value, ...]:
    start, stop = spec.get("start"), spec.get("stop")
    num, step = spec.get("num"), spec.get("step")
    found = len(problems)
    for name, value in (("start", start), ("stop", stop)):
        if value is None:
            problems.append(f"{where}.{name}: missing (a range needs start and stop)")
        elif not _is_number(value):
            problems.append(f"{where}.{name}: must be a number (got {value!r})")
    if (num is None) == (step is None):
        problems.append(f"{where}: give exactly one of num or step")
    if num is not None and not (isinstance(num, int) and not isinstance(num, bool) and num >= 1):
        problems.append(f"{where}.num: must be a whole number ≥ 1 (got {num!r})")
    if step is not None and not (_is_number(step) and step > 0):
        problems.append(f"{where}.step: must be a number > 0 (got {step!r})")
    if len(problems) > found:
        return ()
    assert isinstance(start, int | float) and isinstance(stop, int | float)
    if stop < start:
        problems.append(f"{where}: stop ({stop}) is below start ({start})")
        return ()
    integral = all(isinstance(v, int) for v in (start, stop, num if step is None else step))
    if num is not None:
        if num == 1:
            return (start,)
        points = np.linspace(float(start), float(stop), int(num))
    else:
        count = math.floor((stop - start) / float(step) + 1e-9) + 1  # type: ignore[arg-type]
        if count > MAX_VARIANTS:
            problems.append(f"{where}: {count} values is more than {MAX_VARIANTS}")
            return ()
        points = start + float(step) * np.arange(count)  # type: ignore[arg-type]
    if integral and np.allclose(points, np.round(points)):
        return tuple(int(np.rint(p)) for p in points)
    return tuple(_tidy(p) for p in points)


def _random_spec(
    where: str, key: str, name: str, arg: Any, problems: list[str]
) -> Parameter | None:
    if name == "choice":
        if not isinstance(arg, list) or not arg:
            problems.append(f"{where}.choice: must be a non-empty list of values")
            return None
        bad = [v for v in arg if not _is_value(v)]
        if bad:
            problems.append(f"{where}.choice: {bad[0]!r} is not a scenario value")
            return None
        return Parameter(key, distribution="choice", bounds=tuple(arg))
    if not (isinstance(arg, list) and len(arg) == 2 and all(_is_number(v) for v in arg)):
        problems.append(f"{where}.{name}: must be [low, high] (got {arg!r})")
        return None
    low, high = arg
    if high < low:
        problems.append(f"{where}.{name}: high ({high}) is below low ({low})")
        return None
    if name == "integers" and not all(isinstance(v, int) for v in arg):
        problems.append(f"{where}.integers: bounds must be whole numbers (got {arg!r})")
        return None
    return Parameter(key, distribution=name, bounds=(low, high))  # type: ignore[arg-type]


def parse_parameter(key: str, spec: Any, problems: list[str]) -> Parameter | None:
    """A parameter from its spec in the file: a list, a range table or a random table."""
    where = f"parameters.{key}"
    if isinstance(spec, list):
        if not spec:
            problems.append(f"{where}: the list of values is empty")
            return None
        bad = [v for v in spec if not _is_value(v)]
        if bad:
            problems.append(
                f"{where}: {bad[0]!r} is not a scenario value (a number, bool, string or "
                "list of those)"
            )
            return None
        return Parameter(key, values=tuple(spec))
    if isinstance(spec, Mapping):
        unknown = [k for k in spec if k not in _SPEC_KEYS]
        for k in unknown:
            hint = difflib.get_close_matches(str(k), _SPEC_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(f"{where}.{k}: unknown key{suggestion}")
        if unknown:
            return None
        randoms = [k for k in spec if k in _RANDOM_SPECS]
        if randoms:
            if len(spec) != 1:
                problems.append(
                    f"{where}: a random parameter has exactly one of {', '.join(_RANDOM_SPECS)}"
                )
                return None
            return _random_spec(where, key, randoms[0], spec[randoms[0]], problems)
        values = _range_values(where, spec, problems)
        return Parameter(key, values=values) if values else None
    problems.append(
        f"{where}: expected a list of values, a range {{start, stop, num|step}} or a random "
        f"spec {{uniform|integers|choice}} (got {spec!r})"
    )
    return None


# -------------------------------------------------------------------------- variants


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
            out.append(Variant(vid, point, seed, data, scenario, error))  # type: ignore[arg-type]
        return out


def count_variants(parameters: Sequence[Parameter], sample_n: int | None) -> int:
    grid = math.prod(len(p.values) for p in parameters if not p.random)
    return grid * (sample_n or 1) if any(p.random for p in parameters) else grid


# --------------------------------------------------------------------------- loading


def _load_base(
    base: Any, relative_to: Path | None, problems: list[str]
) -> tuple[dict[str, Any], str | None]:
    if base is None:
        return {}, None
    if isinstance(base, Mapping):
        return dict(base), None
    if not isinstance(base, str) or not base:
        problems.append(f"base: must be the path of a scenario file (got {base!r})")
        return {}, None
    path = Path(base)
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    try:
        return read_scenario_file(path), str(path)
    except ScenarioError as exc:
        problems.extend(f"base: {p}" for p in exc.problems)
        return {}, str(path)


def validate_sweep(
    data: Mapping[str, Any],
    source: str | None = None,
    relative_to: Path | None = None,
    overrides: Iterable[str] = (),
) -> SweepSpec:
    """Validate a sweep file's contents (a plain dict) into a :class:`SweepSpec`.

    Parameters
    ----------
    data
        The parsed file.
    source
        Where it came from, for the error's headline.
    relative_to
        Directory that a relative ``base`` path is resolved against.
    overrides
        ``key.path=value`` strings applied to the base on top of ``set``
        (``p2pgrid sweep FILE --set ...``).

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            hint = difflib.get_close_matches(str(key), _TOP_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(f"{key}: unknown key{suggestion}")

    name = data.get("name", Path(source).stem if source else "sweep")
    if not isinstance(name, str) or not name.strip() or len(name) > 150:
        problems.append(
            f"name: must be a non-empty string of at most 150 characters (got {name!r})"
        )
        name = "sweep"

    seed_rule = data.get("seed_rule", "common")
    if seed_rule not in SEED_RULES:
        problems.append(f"seed_rule: {seed_rule!r} is not one of {', '.join(SEED_RULES)}")
        seed_rule = "common"

    base, _ = _load_base(data.get("base"), relative_to, problems)

    fixed: dict[str, Any] = {}
    raw_set = data.get("set", {})
    if not isinstance(raw_set, Mapping):
        problems.append("set: must be a table of scenario keys and values")
    else:
        fixed = _flatten(raw_set, "set", problems)

    parameters: list[Parameter] = []
    raw_params = data.get("parameters")
    if raw_params is None or (isinstance(raw_params, Mapping) and not raw_params):
        problems.append("parameters: give at least one scenario key to vary")
    elif not isinstance(raw_params, Mapping):
        problems.append("parameters: must be a table of scenario keys and value specs")
    else:
        for key, spec in _flatten(raw_params, "parameters", problems).items():
            if key in fixed:
                problems.append(f"parameters.{key}: also fixed in [set]; keep one of the two")
            param = parse_parameter(key, spec, problems)
            if param is not None:
                parameters.append(param)

    sample_n: int | None = None
    sample_seed: int | None = None
    raw_sample = data.get("sample")
    has_random = any(p.random for p in parameters)
    if raw_sample is not None:
        if not isinstance(raw_sample, Mapping):
            problems.append("sample: must be a table with n and seed")
        else:
            for key in raw_sample:
                if key not in _SAMPLE_KEYS:
                    problems.append(f"sample.{key}: unknown key (sample has n and seed)")
            sample_n, sample_seed = raw_sample.get("n"), raw_sample.get("seed")
            if not (isinstance(sample_n, int) and not isinstance(sample_n, bool) and sample_n >= 1):
                problems.append(f"sample.n: must be a whole number ≥ 1 (got {sample_n!r})")
                sample_n = None
            if not (
                isinstance(sample_seed, int)
                and not isinstance(sample_seed, bool)
                and 0 <= sample_seed < 2**63
            ):
                problems.append(f"sample.seed: must be a whole number ≥ 0 (got {sample_seed!r})")
                sample_seed = None
        if not has_random and isinstance(raw_sample, Mapping):
            problems.append(
                "sample: only random parameters (uniform, integers, choice) are sampled; "
                "there are none"
            )
    elif has_random:
        randoms = ", ".join(p.key for p in parameters if p.random)
        problems.append(f"sample: random parameters ({randoms}) need [sample] with n and seed")

    if seed_rule == "per_variant" and SEED_KEY in {p.key for p in parameters}:
        problems.append(
            "seed_rule: 'per_variant' derives the seeds, but simulation.seed is swept; "
            "drop one of the two"
        )

    merged: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in fixed.items():
        set_key(merged, key, value)
    try:
        merged = apply_overrides(merged, overrides)
    except ScenarioError as exc:
        problems.extend(exc.problems)
    try:
        load_scenario(merged)
    except ScenarioError as exc:
        problems.extend(f"base scenario (base + set): {p}" for p in exc.problems)

    if not problems:
        total = count_variants(parameters, sample_n)
        if total > MAX_VARIANTS:
            problems.append(f"parameters: {total} variants is more than {MAX_VARIANTS}")
    if problems:
        raise ScenarioError(problems, source=source)
    return SweepSpec(
        name=name.strip(),
        base=merged,
        parameters=tuple(parameters),
        seed_rule=seed_rule,
        sample_n=sample_n if has_random else None,
        sample_seed=sample_seed if has_random else None,
        source=source,
        fixed=fixed,
    )


def load_sweep(source: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()) -> SweepSpec:
    """Load and validate a sweep file (TOML/YAML path) or a dict of the same shape.

    ``overrides`` are ``key.path=value`` strings applied to the base scenario.

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    if isinstance(source, Mapping):
        return validate_sweep(source, overrides=overrides)
    path = Path(source)
    data = read_scenario_file(path)
    return validate_sweep(data, source=str(path), relative_to=path.parent, overrides=overrides)
