"""Reading scenario files and ``--set`` overrides into a validated :class:`Scenario`."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from scenarios.config.renamed_keys import old_names, renamed_key
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML (or YAML) scenario file into a plain dict, without validating it
    (the relative paths of :data:`PATH_KEYS` made absolute against the file's folder).

    Raises
    ------
    ScenarioError
        The file is missing or is not valid TOML/YAML; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError([f"no scenario file at {str(path)!r}"], source=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml  # PyYAML only for a YAML file

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ScenarioError([f"not valid YAML: {exc}"], source=str(path)) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError([f"not valid TOML: {exc}"], source=str(path)) from None
    if not isinstance(data, dict):
        raise ScenarioError(["the top level must be a table of keys"], source=str(path))
    return resolve_paths(data, path.parent)


def _parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value (number, bool, string, array), else the bare text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.path=value`` overrides applied.

    Raises
    ------
    ScenarioError
        An override is not of the form ``key.path=value`` or walks through a key that is
        not a table.
    """
    result = _deep_copy(data)
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected key.path=value")
            continue
        key = renamed_key(key)
        parts = key.split(".")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                problems.append(f"--set {item!r}: {where} is a value, not a table")
                break
            node = child
        else:
            for old in old_names(key):  # the override replaces the key however it is spelt
                node.pop(old.rpartition(".")[2], None)
            node[parts[-1]] = _parse_value(raw.strip())
    if problems:
        raise ScenarioError(problems, source="command line")
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Scenario
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


def _describe(error: Any) -> str:
    loc = tuple(p for p in error["loc"] if not isinstance(p, int)) or error["loc"]
    path = ".".join(str(p) for p in loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{path}: unknown key{suggestion}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f"{path}: {value!r} is not one of {expected}"
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        return f"{path}: {message}" if path else message
    if kind == "assertion_error":
        return f"{path}: {error['msg']}"
    message = error["msg"][0].lower() + error["msg"][1:]
    return f"{path}: {message} (got {value!r})"


def _section_problems(error: Any) -> list[str]:
    """Split a model validator's '; '-joined problems onto their own key paths."""
    if error["type"] != "value_error":
        return [_describe(error)]
    prefix = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
    parts = [p.strip() for p in str(error["ctx"]["error"]).split("; ") if p.strip()]
    out = []
    for part in parts:
        if not prefix:
            out.append(part)
        elif re.match(r"^[a-z_]+: ", part):
            out.append(f"{prefix}.{part}")
        else:
            out.append(f"{prefix}: {part}")
    return out


def validate_scenario(data: Mapping[str, Any], source: str | None = None) -> Scenario:
    """Validate a plain dict into a :class:`Scenario`, reporting every problem at once."""
    try:
        return Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            problems.extend(_section_problems(error))
        raise ScenarioError(problems, source=source) from None


PATH_KEYS = (("live", "keys"), ("live", "market_key"))
"""Keys that name a file: a relative path in a scenario file is relative to the file's
folder (a ``--set`` value, or a dict's, stays as given: relative to the working
directory)."""


def resolve_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` with every :data:`PATH_KEYS` value that is a relative path made absolute
    against ``folder``."""
    for section, key in PATH_KEYS:
        table = data.get(section)
        if not isinstance(table, dict):
            continue
        value = table.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data = {**data, section: {**table, key: str((folder / value).resolve())}}
    return data


def load_scenario(
    source: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()
) -> Scenario:
    """Load, override and validate a scenario.

    Parameters
    ----------
    source
        Path to a TOML/YAML file, or a dict of the same shape.
    overrides
        ``key.path=value`` strings, as ``p2pgrid run FILE --set key.path=value``.

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    if isinstance(source, Mapping):
        data, where = dict(source), None
    else:
        data, where = read_scenario_file(source), str(source)
    data = apply_overrides(data, overrides)
    return validate_scenario(data, source=where)
