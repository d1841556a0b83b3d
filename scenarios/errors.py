"""Errors a scenario's author sees."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario (file, overrides or combination of keys) that cannot be run.

    Parameters
    ----------
    problems
        Every problem found, each starting with the key path it concerns
        (``market.mechanism: 'uniformm' is not one of uniform, ...``).
    source
        Where the scenario came from (a file path), for the headline.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}{where}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class RenamedKeyWarning(FutureWarning):
    """A scenario (or sweep file) uses a key's old name: it still works, under the new name
    the warning gives (:data:`scenarios.config.renamed_keys.RENAMED_KEYS`)."""
