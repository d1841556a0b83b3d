"""Scenario keys that were renamed: the old name still works, with a warning naming the
new one, in scenario files, ``--set`` overrides and sweep files; a scenario giving both
names of one key is an error naming both."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from scenarios.errors import RenamedKeyWarning

RENAMED_KEYS = {
    "community.battery_kwh": "community.battery_capacity_kwh",
    "community.ev_kwh": "community.ev_capacity_kwh",
}
"""Old key paths -> their names now, accepted with a :class:`RenamedKeyWarning` (issue 13:
``battery_kwh`` and ``ev_kwh`` in agents.parquet are energies per interval, the scenario
keys are capacity ranges)."""


def renamed_key(path: str) -> str:
    """The current name of key ``path`` (dotted); warns when ``path`` is an old name."""
    new = RENAMED_KEYS.get(path)
    if new is None:
        return path
    warnings.warn(
        f"{path} is renamed {new}: write {new} (the old name still works for now)",
        RenamedKeyWarning,
        stacklevel=3,
    )
    return new


def old_names(path: str) -> list[str]:
    """The old names of key ``path`` (dotted), for a setter that replaces the key whatever
    its spelling in the file."""
    return [old for old, new in RENAMED_KEYS.items() if new == path]


def renamed_in_section(section: str, data: object) -> object:
    """``data`` of a section with its old key names replaced (a warning each); an old name
    given beside its new name is an error naming both."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    problems = []
    for key in list(out):
        path = f"{section}.{key}"
        if path not in RENAMED_KEYS:
            continue
        new = RENAMED_KEYS[path].partition(".")[2]
        if new in out:
            problems.append(
                f"{key}: the old name of {section}.{new}, which is also given "
                f"(keep only {section}.{new})"
            )
            continue
        out[renamed_key(path).partition(".")[2]] = out.pop(key)
    if problems:
        raise ValueError("; ".join(problems))
    return out
