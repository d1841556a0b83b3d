"""``p2pgrid dashboard``: a finished run or a live market in the browser.

Registered on the main app by :func:`register`. A missing or unreadable run directory,
a bad broker URL or a wrong combination of options exits with code 2 and a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.console import console, fail


def dashboard(
    run: Annotated[
        Path | None,
        typer.Option("--run", help="A results directory written by `p2pgrid run --out DIR`."),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="Watch a live market: mqtt://[user:pass@]host:port."),
    ] = None,
    community: Annotated[
        str,
        typer.Option(help="Community name of the live market (topic root p2pgrid/<community>/)."),
    ] = "demo",
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario file of the live market, for its tariffs and voltage limits."),
    ] = None,
    replay_speed: Annotated[
        float | None,
        typer.Option(
            "--replay-speed",
            help="Replay the run at this many intervals per second "
            "(default: browse the whole run).",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8050,
    token: Annotated[
        str | None,
        typer.Option(
            help="Token every request must carry; generated when --host is not a loopback address."
        ),
    ] = None,
) -> None:
    """Serve the web dashboard of a finished run (--run) or a live market (--broker)."""
    from live.dashboard.rundata import RunDirError, read_run
    from live.dashboard.server import resolve_token, serve_dashboard
    from live.dashboard.sources import RunSource, Source

    if (run is None) == (broker is None):
        raise fail("give exactly one of --run DIR (a finished run) or --broker URL (a live market)")
    if replay_speed is not None and not replay_speed > 0:
        raise fail("--replay-speed must be positive (intervals per second)")
    if replay_speed is not None and run is None:
        raise fail("--replay-speed replays a finished run: use it with --run")
    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a TCP port")
    source: Source
    if run is not None:
        try:
            source = RunSource(read_run(run), replay_speed)
        except RunDirError as exc:
            raise fail(str(exc)) from None
    else:
        from live.dashboard.mqtt_source import MqttSource

        assert broker is not None
        market: dict[str, object] = {}
        minutes = 15
        households = None
        if scenario is not None:
            from scenarios.config.loader import load_scenario
            from scenarios.errors import ScenarioError
            from scenarios.results.households_table import scenario_households

            try:
                sc = load_scenario(scenario)
                households = scenario_households(sc)
            except ScenarioError as exc:
                raise fail(str(exc)) from None
            market = {
                **sc.market.model_dump(),
                "v_min_pu": sc.grid.v_min_pu,
                "v_max_pu": sc.grid.v_max_pu,
                "feeder": sc.grid.feeder if sc.grid.check != "off" else None,
            }
            minutes = sc.simulation.interval_minutes
        try:
            source = MqttSource(broker, community, market, minutes, households)
        except ValueError as exc:
            raise fail(str(exc)) from None
    token = resolve_token(host, token)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    console.print(f"dashboard: {url}", highlight=False, soft_wrap=True)
    if token:
        console.print("(bound beyond this machine: every request needs the token)")
    try:
        serve_dashboard(source, host, port, token)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add ``p2pgrid dashboard`` to the main command line."""
    app.command("dashboard")(dashboard)
