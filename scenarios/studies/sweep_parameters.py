"""The parameters of a sweep file: a list of values, an evenly spaced range or a
seeded random distribution per swept scenario key, validated with the key path of each
problem."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

MAX_VARIANTS = 100_000
_GRID_SPECS = ("start", "stop", "num", "step")
_RANDOM_SPECS = ("uniform", "integers", "choice")
_SPEC_KEYS = _GRID_SPECS + _RANDOM_SPECS

Scalar = bool | int | float | str
Value = Scalar | list[Scalar]


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
            low, high = float(self.bounds[0]), float(self.bounds[1])  # type: ignore[arg-type]  # numbers: _random_spec checks
            return float(rng.uniform(low, high))
        if self.distribution == "integers":
            low, high = int(self.bounds[0]), int(self.bounds[1])  # type: ignore[arg-type]  # numbers: _random_spec checks
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
        points: np.ndarray = np.linspace(float(start), float(stop), int(num))
    else:
        assert isinstance(step, int | float)
        count = math.floor((stop - start) / float(step) + 1e-9) + 1
        if count > MAX_VARIANTS:
            problems.append(f"{where}: {count} values is more than {MAX_VARIANTS}")
            return ()
        points = start + float(step) * np.arange(count)
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
    return Parameter(key, distribution=name, bounds=(low, high))  # type: ignore[arg-type]  # name is in _RANDOM_SPECS


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
