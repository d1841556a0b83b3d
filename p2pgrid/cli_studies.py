"""Planner studies on the command line: ``p2pgrid sweep`` and ``p2pgrid hosting-capacity``.

Registered on the main app by :func:`register`. Mistakes in the files or options exit
with code 2 and the list of problems, without a traceback; a sweep with failed
variants still finishes, then exits with code 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from p2pgrid.console import console, err_console, error, fail
from scenarios.errors import ScenarioError
from scenarios.kpis.format import format_kpi

if TYPE_CHECKING:
    from scenarios.studies.hosting_probes import Probe

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key of the base scenario: --set simulation.days=1"),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-w", help="Workers of the local Dask cluster (default: cores)."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run on an existing Dask scheduler: tcp://host:8786."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _fmt(value: object) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def sweep(
    file: Annotated[Path, typer.Argument(help="Sweep file (TOML or YAML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results directory.")] = Path("sweep"),
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    set_: SetOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and list the variants; run nothing.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Run every variant of a sweep file on Dask; write the KPI table and sweep.html.

    Re-running into the same --out skips the variants already finished.
    """
    from scenarios.studies.sweep import KPI_TABLE, run_sweep
    from scenarios.studies.sweep_file import load_sweep

    try:
        spec = load_sweep(file, set_ or [])
    except ScenarioError as exc:
        raise fail(exc) from None
    if dry_run:
        table = Table(title=f"{spec.name}: variants (seed rule {spec.seed_rule})")
        for column in ("variant", *spec.keys, "seed", "valid"):
            table.add_column(column)
        for v in spec.variants():
            table.add_row(
                v.id,
                *(_fmt(v.parameters[k]) for k in spec.keys),
                str(v.seed),
                "yes" if v.error is None else v.error.replace("\n", " "),
            )
        console.print(table)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("variants · {task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    counts = {"ok": 0, "failed": 0, "reused": 0}
    with Progress(*columns, console=err_console, disable=quiet) as bar:
        task = bar.add_task(spec.name, total=len(spec.points()), status="starting")

        def progress(done: int, total: int, vid: str, status: str) -> None:
            counts[status] = counts.get(status, 0) + 1
            text = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
            bar.update(task, completed=done, status=text)

        try:
            result = run_sweep(spec, out, scheduler=scheduler, n_workers=workers, progress=progress)
        except ScenarioError as exc:
            raise fail(exc) from None
    table = Table(title=f"{spec.name}: {len(result.table)} variants")
    currency = spec.base.get("market", {}).get("currency", "EUR")
    shown = ("self_sufficiency", "community_savings", "violation_hours", "curtailed_kwh")
    table.add_column("variant")
    table.add_column("status")
    for column in (*(k.rsplit(".", 1)[-1] for k in spec.keys), *shown):
        table.add_column(column, justify="right")
    for _, row in result.table.head(40).iterrows():
        cells = [format_kpi(k, row.get(k), currency) for k in shown]
        table.add_row(
            str(row["variant"]), str(row["status"]), *(_fmt(row[k]) for k in spec.keys), *cells
        )
    console.print(table)
    if len(result.table) > 40:
        console.print(f"… {len(result.table) - 40} more in {out / KPI_TABLE}")
    console.print(f"ran {result.ran}, reused {result.reused}, failed {len(result.failed)}")
    console.print(f"KPIs:   {out / KPI_TABLE}  (scenarios.studies.sweep.open_kpis for DuckDB)")
    console.print(f"report: {result.report_path}")
    if result.failed:
        for vid, message in result.failed.items():
            error(message, prefix=f"failed {vid}")
        raise typer.Exit(code=1)


def hosting_capacity(
    file: Annotated[Path, typer.Argument(help="Scenario file (TOML or YAML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory of the probe runs.")] = Path(
        "hosting"
    ),
    over: Annotated[
        str,
        typer.Option(
            help="What to increase: pv_share (share of households with PV), pv_kwp (kWp "
            "per PV household) or heat_pump_share (share of households with a heat pump: "
            "with and without §14a dimming, with and without the market)."
        ),
    ] = "pv_share",
    low: Annotated[
        float | None, typer.Option("--min", help="Lower end of the search (shares 0, pv_kwp 1).")
    ] = None,
    high: Annotated[
        float | None, typer.Option("--max", help="Upper end of the search (shares 1, pv_kwp 30).")
    ] = None,
    tol: Annotated[float, typer.Option(help="Resolution of a pv_kwp search [kWp].")] = 0.5,
    days: Annotated[int | None, typer.Option(help="Override simulation.days.")] = None,
    set_: SetOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            help="Run both cases' probes in parallel on a local Dask cluster "
            "of this many workers (default: one after the other, in this process).",
        ),
    ] = None,
    scheduler: SchedulerOption = None,
    quiet: QuietOption = False,
) -> None:
    """Largest PV penetration the feeder hosts without a PV violation, with and without
    batteries/V2G, or the largest heat-pump share, with and without §14a dimming and the
    market, and the bus or line that binds (bisection with the grid check)."""
    from scenarios.config.loader import load_scenario
    from scenarios.studies.hosting import hosting_capacity as search

    sets = list(set_ or [])
    if days is not None:
        sets.append(f"simulation.days={days}")
    try:
        scenario = load_scenario(file, sets)
    except ScenarioError as exc:
        raise fail(exc) from None
    client = None
    if scheduler or workers:
        from scenarios.studies.dask_cluster import connect_client

        try:
            client = connect_client(scheduler, workers)
        except ScenarioError as exc:
            raise fail(exc) from None
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err_console, disable=quiet) as bar:
            task = bar.add_task(f"{scenario.name}: probes", last="")

            def progress(case: str, value: float, passed: bool) -> None:
                verdict = "[green]hosted[/]" if passed else "[red]violation[/]"
                bar.update(task, last=f"{case} {over}={value:.4g} {verdict}")

            report = search(scenario, out, over, low, high, tol, client=client, progress=progress)
    except ScenarioError as exc:
        raise fail(exc) from None
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    unit = " kWp" if over == "pv_kwp" else ""
    what = "heat-pump" if over == "heat_pump_share" else "PV"
    table = Table(
        title=f"{scenario.name} on {scenario.grid.feeder}: {what} hosting capacity "
        f"({over}, {scenario.simulation.days} day(s) from {scenario.simulation.start})"
    )
    heat = over == "heat_pump_share"
    headers = ["case", "hosting capacity", "first violation at", "binding element", "probes"]
    for column in headers + ["dimmed / unmet heat at capacity [kWh]"] * heat:
        table.add_column(column)
    for case, r in report.cases.items():
        cap = "below the range" if r.capacity is None else f"{r.capacity:.4g}{unit}"
        if r.first_failing is None:
            cap = f"≥ {cap} (no violation up to --max)"
        first = "—" if r.first_failing is None else f"{r.first_failing:.4g}{unit}"
        row = [case, cap, first, r.binding.describe() if r.binding else "—", str(len(r.probes))]
        if heat:
            row.append(_dimmed_and_unmet(r.probes, r.capacity))
        table.add_row(*row)
    console.print(table)
    console.print(f"probes: {out / 'probes.parquet'}   summary: {out / 'hosting.json'}")


def _dimmed_and_unmet(probes: Sequence[Probe], capacity: float | None) -> str:
    """``dimmed / unmet heat`` [kWh] of the probe at the capacity (the baseline records
    no unmet heat: —)."""
    at = next((p.assessment for p in probes if p.value == capacity), None)
    if at is None:
        return "—"
    unmet = "—" if math.isnan(at.unmet_heat_kwh) else f"{at.unmet_heat_kwh:.0f}"
    return f"{at.dimmed_kwh:.0f} / {unmet}"


def register(app: typer.Typer) -> None:
    """Add the study commands to the ``p2pgrid`` app."""
    app.command("sweep")(sweep)
    app.command("hosting-capacity")(hosting_capacity)
