"""The command line's two terminals, and how it reports a mistake.

Markup is off on both: text that comes from files, scenarios, exceptions and data (a
message naming ``pip install "p2pgrid[simbench]"``, a header with ``[p.u.]``, a scenario
name) prints exactly as written. Styles are given with ``style=`` or
:class:`rich.text.Text`, never as markup inside a string.
"""

from __future__ import annotations

import warnings
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from scenarios.errors import RenamedKeyWarning

console = Console(markup=False)
err_console = Console(stderr=True, markup=False, highlight=False)


def error(message: object, prefix: str = "error") -> None:
    """``error: message`` on stderr, the prefix in bold red; wrapped to a terminal's
    width, but never into a log or a pipe (a path stays whole for grep and for tools)."""
    err_console.print(
        Text.assemble((f"{prefix}: ", "bold red"), str(message)),
        soft_wrap=not err_console.is_terminal,
    )


def fail(message: object, code: int = 2) -> typer.Exit:
    """Report ``message`` and return the exit to raise (code 2: the user's mistake)."""
    error(message)
    return typer.Exit(code=code)


def show_scenario_warnings() -> None:
    """Print a scenario's warnings (an old key name, :class:`RenamedKeyWarning`) as
    ``warning: message`` lines on stderr instead of Python's ``file:line`` reports."""
    python_way = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *where: Any, **kw: Any) -> None:
        if issubclass(category, RenamedKeyWarning):
            err_console.print(Text.assemble(("warning: ", "bold yellow"), str(message)))
        else:
            python_way(message, category, *where, **kw)

    warnings.showwarning = show
