"""Errors raised by the grid room."""

from __future__ import annotations


class FeederError(ValueError):
    """A feeder name, file or network that cannot be used.

    The message lists every problem found, one per line, each naming where it is
    (file, key or row) and the offending value, in the style of the scenario errors.

    Parameters
    ----------
    problems : list of str
        One human-readable line per problem.
    source : str
        What was being loaded (a feeder spec or a file path).
    """

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid feeder {source!r}" if source else "invalid feeder"
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}: {n} problem{'s' if n != 1 else ''}\n{lines}")
