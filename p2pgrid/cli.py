"""The ``p2pgrid`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from p2pgrid.console import console, err_console, fail, show_scenario_warnings
from p2pgrid.options import ScenarioArg, SetOption, overrides
from scenarios.errors import ScenarioError
from scenarios.kpis.format import format_kpi

if TYPE_CHECKING:
    from rich.progress import Progress

app = typer.Typer(
    help="p2pgrid: peer-to-peer energy trading on a distribution feeder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def progress_bar(unit: str, quiet: bool) -> Progress:
    """A progress bar on stderr (none if ``quiet``) counting ``unit``; each task's
    description (a scenario name) printed as is. rich.progress is imported here, by the
    commands that show one (``p2pgrid validate`` and ``--help`` do without)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err_console, disable=quiet, transient=False)


@app.command()
def validate(file: ScenarioArg, set_: SetOption = None) -> None:
    """Check a scenario file and print the scenario as it would run."""
    from scenarios.config.loader import load_scenario
    from scenarios.config.preflight import check_runnable

    try:
        scenario = load_scenario(file, overrides(set_))
        check_runnable(scenario, source=str(file))
    except ScenarioError as exc:
        raise fail(exc) from None
    console.print(
        Text.assemble(("ok", "green"), f": {file} is a valid scenario ({scenario.name!r})")
    )
    console.print_json(scenario.model_dump_json())


_LEVEL_KPIS = (
    "feeder_p2p_kwh", "feeder_grid_fee_cost", "district_kwh", "district_mean_price_per_kwh",
    "district_grid_fee_cost", "utility_import_kwh", "utility_export_kwh", "self_sufficiency",
    "community_savings", "lv_violation_intervals", "mv_violation_intervals",
    "mv_max_line_loading_frac", "mv_v_min_pu", "mv_v_max_pu",
)  # fmt: skip


def _run_district(scenario: Any, out: Path, workers: int | None, scheduler: str | None) -> None:
    """A district run (:func:`scenarios.engine.district.run_district`) and its KPIs per
    level (feeder markets, district market, utility, MV grid)."""
    from scenarios.engine.district import run_district

    try:
        result = run_district(scenario, out, workers=workers, scheduler=scheduler)
    except ScenarioError as exc:
        raise fail(exc) from None
    table = Table(title=f"{scenario.name}: KPIs per level", show_header=False)
    for key in _LEVEL_KPIS:
        if key in result.kpis:
            table.add_row(key, format_kpi(key, result.kpis[key], scenario.market.currency))
    console.print(table)
    console.print(f"results: {result.out_dir} (feeder=<id>/, district/)")
    console.print(f"report:  {result.report_path}")


@app.command()
def run(
    file: ScenarioArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results directory.")] = Path("results"),
    days: Annotated[int | None, typer.Option(help="Override simulation.days.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override simulation.seed.")] = None,
    set_: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ledger: Annotated[
        bool,
        typer.Option(
            "--ledger",
            help="Also write the audit ledger OUT/ledger/ (p2pgrid ledger verify OUT checks it).",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", help="A district run: its LV feeders on a local Dask cluster."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="A district run on a Dask scheduler: tcp://host:8786."),
    ] = None,
) -> None:
    """Run a scenario and write its results files, KPIs and HTML report (a district,
    ``grid.feeder = "district:<N>x<H>"``: one partition per LV feeder and KPIs per level)."""
    from scenarios.config.loader import load_scenario
    from scenarios.engine.runner import run as run_scenario

    try:
        scenario = load_scenario(file, overrides(set_, days, seed))
    except ScenarioError as exc:
        raise fail(exc) from None
    from grid.district_networks import is_district

    if is_district(scenario.grid.feeder):
        if ledger:
            raise fail(ScenarioError(["--ledger: a district run writes no audit ledger"]))
        _run_district(scenario, out, workers, scheduler)
        return
    with progress_bar("intervals", quiet) as bar:
        task = bar.add_task(scenario.name, total=scenario.simulation.n_intervals)
        try:
            result = run_scenario(
                scenario,
                out,
                progress=lambda done, total: bar.update(task, completed=done),
                ledger=ledger,
            )
        except ScenarioError as exc:
            raise fail(exc) from None
    table = Table(title=f"{scenario.name}: KPIs", show_header=False)
    for key in (
        "self_sufficiency",
        "self_consumption",
        "p2p_share",
        "p2p_kwh",
        "community_savings",
        "mean_price_per_kwh",
        "peak_import_kw",
        "violation_hours",
        "curtailed_kwh",
        "recleared_intervals",
    ):
        table.add_row(key, format_kpi(key, result.kpis.get(key), scenario.market.currency))
    console.print(table)
    console.print(f"results: {result.out_dir}")
    console.print(f"report:  {result.report_path}")
    if ledger:
        console.print(
            f"ledger:  {result.out_dir / 'ledger'} (market.key is the operator's private key)"
        )


@app.command()
def compare(
    file: ScenarioArg,
    mechanisms: Annotated[
        str, typer.Option(help="Comma-separated market mechanisms to compare.")
    ] = "uniform,pay_as_bid,mcafee,cda",
    out: Annotated[Path, typer.Option("--out", "-o", help="Results directory.")] = Path("compare"),
    days: Annotated[int | None, typer.Option(help="Override simulation.days.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override simulation.seed.")] = None,
    set_: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario once per market mechanism and compare them side by side."""
    from scenarios.config.loader import load_scenario
    from scenarios.studies.compare import compare as compare_runs
    from scenarios.studies.compare import parse_mechanisms

    try:
        names = parse_mechanisms(mechanisms)
        scenario = load_scenario(file, overrides(set_, days, seed))
    except ScenarioError as exc:
        raise fail(exc) from None
    total = scenario.simulation.n_intervals
    with progress_bar("intervals", quiet) as bar:
        tasks = {name: bar.add_task(f"{scenario.name} · {name}", total=total) for name in names}
        try:
            result = compare_runs(
                scenario,
                names,
                out,
                progress=lambda name, done, _total: bar.update(tasks[name], completed=done),
            )
        except ScenarioError as exc:
            raise fail(exc) from None
    table = Table(title=f"{scenario.name}: market mechanisms")
    table.add_column("KPI")
    for name in names:
        table.add_column(name, justify="right")
    for key in (
        "efficiency",
        "p2p_kwh",
        "p2p_share",
        "mean_price_per_kwh",
        "mean_seller_price_per_kwh",
        "market_surplus",
        "community_savings",
        "savings_gini",
        "welfare",
        "price_dispersion_per_kwh",
        "messages_per_interval",
        "admm_iterations_mean",
        "admm_converged_frac",
        "central_welfare",
        "central_efficiency",
        "preferred_partner_households",
        "dso_revenue",
        "dso_outer_iterations_mean",
        "dso_outer_iterations_max",
        "dso_fallback_intervals",
    ):
        cells = [format_kpi(key, v, scenario.market.currency) for v in result.table[key]]
        table.add_row(key, *cells)
    console.print(table)
    console.print(f"comparison: {result.out_dir / 'comparison.parquet'}")
    console.print(f"report:     {result.report_path}")


@app.command("validate-grid")
def validate_grid(
    feeder: Annotated[
        str, typer.Argument(help="ieee33 | radial:<households> | simbench:<code> | feeder file.")
    ],
    households: Annotated[
        int, typer.Option(help="Community size, for feeders sized by it (radial).")
    ] = 40,
    buses: Annotated[bool, typer.Option("--buses", help="Also print every bus.")] = False,
) -> None:
    """Compare the linear feeder model with pandapower's AC power flow at several loads."""

    from grid import FeederError, load_feeder, validate_feeder

    try:
        net = load_feeder(feeder, households=households)
    except FeederError as exc:
        raise fail(exc) from None
    result = validate_feeder(net)
    cases = result.cases.set_index("case")
    table = Table(title=f"{net.name}: linear model vs AC (pandapower)")
    table.add_column("quantity")
    for case in cases.index:
        table.add_column(case, justify="right")
    for column, label, fmt in _VALIDATION_ROWS:
        table.add_row(label, *(format(x, fmt) for x in cases[column]))
    console.print(table)
    console.print(
        "loads: the feeder's base case (its own loads at their peak) scaled, or on a feeder "
        "without background 3 kW : 1 kvar per household bus sized to load the most loaded "
        "branch to its rating; pv: half the load with PV producing the full load. Loading is "
        "current over rated current. The linearisation point is the base case (ieee33: "
        "load x1.0) or zero injection (LV feeders)."
    )
    if buses:
        per_bus = Table(title="per bus")
        for column in ("case", "bus", "v model [p.u.]", "v AC [p.u.]", "error [p.u.]"):
            per_bus.add_column(column, justify="right")
        for row in result.buses.itertuples(index=False):
            per_bus.add_row(
                row.case,
                str(row.bus),
                f"{row.v_model_pu:.5f}",
                f"{row.v_ac_pu:.5f}",
                f"{row.v_error_pu:+.5f}",
            )
        console.print(per_bus)


#: Rows of the validate-grid table: column of FeederValidation.cases, label, format.
_VALIDATION_ROWS = (
    ("v_min_model_pu", "v min model [p.u.]", ".5f"),
    ("v_min_ac_pu", "v min AC [p.u.]", ".5f"),
    ("max_abs_v_error_pu", "max |v error| [p.u.]", ".5f"),
    ("max_loading_model_frac", "max loading model", ".4f"),
    ("max_loading_ac_frac", "max loading AC", ".4f"),
    ("max_abs_loading_error_frac", "max |loading error|", ".4f"),
    ("losses_model_kw", "losses model [kW]", ".3f"),
    ("losses_ac_kw", "losses AC [kW]", ".3f"),
    ("import_model_kw", "import model [kW]", ".1f"),
    ("import_ac_kw", "import AC [kW]", ".1f"),
)


from p2pgrid.cli_studies import register as _register_studies  # noqa: E402

_register_studies(app)  # p2pgrid sweep, p2pgrid hosting-capacity

from p2pgrid.cli_dashboard import register as _register_dashboard  # noqa: E402

_register_dashboard(app)  # p2pgrid dashboard


from p2pgrid.cli_live import register as _register_live  # noqa: E402

_register_live(app)

from p2pgrid.cli_ledger import register as _register_ledger  # noqa: E402

_register_ledger(app)  # p2pgrid ledger verify | bill | dispute

from p2pgrid.cli_exports import register as _register_exports  # noqa: E402

_register_exports(app)  # p2pgrid export

from p2pgrid.cli_keys import register as _register_keys  # noqa: E402

_register_keys(app)  # p2pgrid keys new | show


def main() -> None:
    """Console-script entry point."""
    import sys

    from p2pgrid.cli_live import optional_dashboard_value
    from scenarios.engine.malloc import steady_malloc

    steady_malloc()  # the command owns its process (scenarios/engine/malloc.py)
    show_scenario_warnings()
    app(args=optional_dashboard_value(sys.argv[1:]), prog_name="p2pgrid")


if __name__ == "__main__":
    main()
