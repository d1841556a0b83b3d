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
(:class:`scenarios.config.schema.Scenario`, :mod:`scenarios.studies.sweep_keys`). The value
specs are :mod:`scenarios.studies.sweep_parameters`; how they expand into variants and
which seed each variant runs with is :mod:`scenarios.studies.sweep_variants`.

Validation. Everything wrong with the file — unknown keys, keys that are not scenario
keys, malformed value specs, a base scenario that does not load — is collected into
one :class:`~scenarios.errors.ScenarioError` with the key path of each problem. A value
that is well-formed but invalid for the scenario (``community.pv_share = 1.5``) is not
a file error: that variant is reported as failed with the scenario's own error
(:func:`scenarios.config.loader.load_scenario`) and the others run.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scenarios.config.loader import apply_overrides, load_scenario, read_scenario_file
from scenarios.errors import ScenarioError
from scenarios.studies.sweep_keys import flatten_keys, set_key
from scenarios.studies.sweep_parameters import MAX_VARIANTS, Parameter, parse_parameter
from scenarios.studies.sweep_variants import SEED_KEY, SEED_RULES, SweepSpec, count_variants

_TOP_KEYS = ("name", "base", "seed_rule", "set", "parameters", "sample")
_SAMPLE_KEYS = ("n", "seed")


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
        fixed = flatten_keys(raw_set, "set", problems)

    parameters: list[Parameter] = []
    raw_params = data.get("parameters")
    if raw_params is None or (isinstance(raw_params, Mapping) and not raw_params):
        problems.append("parameters: give at least one scenario key to vary")
    elif not isinstance(raw_params, Mapping):
        problems.append("parameters: must be a table of scenario keys and value specs")
    else:
        for key, spec in flatten_keys(raw_params, "parameters", problems).items():
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
