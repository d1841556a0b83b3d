"""``p2pgrid export``: a run's per-member energy as files for the market roles
(:mod:`scenarios.exports`). Registered on the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.console import console, fail

FORMATS = ("csv",)
"""Export formats. The Austrian EDA layout is not among them: its published column
definitions (ebUtilities' CR_MSG meter codes) could not be checked."""


def export(
    run_dir: Annotated[
        Path, typer.Argument(help="Results directory of a run (p2pgrid run --out).")
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="csv: one file per member and month plus a community file, the layout "
            "described in the export's layout.json and the README.",
        ),
    ] = "csv",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Export directory (default: RUN_DIR/export)."),
    ] = None,
) -> None:
    """Write each member's allocated energy, residual supply and feed-in per interval."""
    from scenarios.exports.meter_csv import export_csv
    from scenarios.results.files import ResultsFileError

    if format_ not in FORMATS:
        raise fail(
            f"--format: {format_!r} is not one of {', '.join(FORMATS)} (the EDA layout is "
            "not implemented: its published column definitions could not be checked)"
        )
    target = out if out is not None else run_dir / "export"
    try:
        result = export_csv(run_dir, target)
    except ResultsFileError as exc:
        raise fail(exc) from None
    console.print(
        f"{len(result.member_files)} member file(s), one per member and month "
        f"({result.timezone}, {result.interval_minutes}-min rows), and the community file"
    )
    console.print(f"export: {result.out_dir}")
    console.print(f"layout: {result.layout_file}")


def register(app: typer.Typer) -> None:
    """Add ``p2pgrid export`` to the app."""
    app.command("export")(export)
