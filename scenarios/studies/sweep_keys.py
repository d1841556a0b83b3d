"""Scenario key paths of a sweep file: which dotted paths are keys of
:class:`scenarios.config.schema.Scenario`, flattening nested tables into dotted paths,
and setting a path in a nested scenario dict."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from scenarios.config.renamed_keys import old_names, renamed_key
from scenarios.config.schema import Scenario


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


def flatten_keys(
    table: Mapping[str, Any], where: str, problems: list[str], prefix: str = ""
) -> dict[str, Any]:
    """Dotted scenario key paths → values, from dotted keys and/or nested tables.

    A key's old name (:data:`scenarios.config.renamed_keys.RENAMED_KEYS`) counts as its new name,
    with a warning; the two names of one key given together are a problem naming both.
    """
    out: dict[str, Any] = {}
    _flatten_into(out, {}, table, where, problems, prefix)
    return out


def _flatten_into(
    out: dict[str, Any],
    spelled: dict[str, str],
    table: Mapping[str, Any],
    where: str,
    problems: list[str],
    prefix: str,
) -> None:
    for key, value in table.items():
        written = f"{prefix}.{key}" if prefix else str(key)
        path = renamed_key(written)
        kind, hint = scenario_key_kind(path)
        if kind == "section" and isinstance(value, Mapping):
            _flatten_into(out, spelled, value, where, problems, path)
        elif kind == "leaf":
            if path in out:
                names = {spelled[path], written} - {path}
                problems.append(
                    f"{where}.{names.pop()}: the old name of {path}, which is also given "
                    f"(keep only {path})"
                    if names
                    else f"{where}.{path}: given twice (keep one)"
                )
            out[path] = value
            spelled[path] = written
        elif kind == "section":
            problems.append(f"{where}.{path}: is a section of the scenario, not a key")
        else:
            suggestion = f" (did you mean {hint!r}?)" if hint else ""
            problems.append(f"{where}.{path}: not a scenario key{suggestion}")


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
    for old in old_names(path):  # replaces the key however the base spells it
        node.pop(old.rpartition(".")[2], None)
    node[parts[-1]] = value
