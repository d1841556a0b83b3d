"""``p2pgrid live | agents | broker | acl | meters emulate``: the live market over MQTT."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.broker_options import BROKER_GROUP, BrokerOptions, broker_options
from p2pgrid.console import console, fail
from p2pgrid.host_port import DASHBOARD_DEFAULT, parse_host_port
from p2pgrid.host_port import optional_dashboard_value as optional_dashboard_value
from p2pgrid.options import ScenarioArg, SetOption, overrides
from scenarios.errors import ScenarioError
from scenarios.results.out_dir import make_out_dir

SpeedOpt = Annotated[
    float,
    typer.Option(
        "--speed",
        min=0.0,
        help="Simulated seconds per wall second (900: a 15-min interval per "
        "second; 0: as fast as every household is complete).",
    ),
]


def _load(file: Path, sets: list[str] | None):
    from scenarios.config.loader import load_scenario

    try:
        return load_scenario(file, overrides(sets))
    except ScenarioError as exc:
        raise fail(exc) from None


KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        metavar="DIR",
        help="Sign every message with the private keys in DIR (`p2pgrid keys new`; "
        "default: the keys beside the scenario's [live] keys).",
    ),
]


DecentralisedOpt = Annotated[
    bool,
    typer.Option(
        "--decentralised",
        help="No market: the households negotiate bilateral trades on their peer topics "
        '(market.mechanism = "p2p").',
    ),
]


def register(app: typer.Typer) -> None:
    """Add the live commands to the main app."""
    meters_app = typer.Typer(help="Smart meters: emulators.", no_args_is_help=True)
    app.add_typer(meters_app, name="meters")

    @app.command()
    @broker_options
    def live(
        file: ScenarioArg,
        broker: BrokerOptions = BROKER_GROUP,
        speed: SpeedOpt = 900.0,
        intervals: Annotated[int | None, typer.Option(help="Intervals to run.")] = None,
        state: Annotated[Path, typer.Option(help="Ledger directory.")] = Path("live-state"),
        no_agents: Annotated[
            bool, typer.Option("--no-agents", help="Market only (agents run as `p2pgrid agents`).")
        ] = False,
        emulate_meters: Annotated[
            bool, typer.Option("--emulate-meters", help="Also emulate the scenario's meters.")
        ] = False,
        dashboard: Annotated[
            str | None,
            typer.Option(
                "--dashboard",
                metavar="[HOST:PORT]",
                help="Serve the web dashboard of this market (default "
                f"{DASHBOARD_DEFAULT}); beyond the loopback every request needs a token.",
            ),
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(help="Dashboard token (generated when bound beyond the loopback)."),
        ] = None,
        keys: KeysOpt = None,
        decentralised: DecentralisedOpt = False,
        set_: SetOption = None,
    ) -> None:
        """Run the live market (and the scenario's simulated agents) over MQTT.

        With --dashboard the web dashboard serves the market from this process; it keeps
        serving after the last interval until Ctrl-C. With --decentralised there is no
        market: the households negotiate bilateral trades over their peer topics
        (market.mechanism = "p2p"); this process runs the clock, the recorder of the
        signed trades (STATE/trades.parquet) and, unless --no-agents, the households.
        """
        from live.broker import BrokerStartError
        from live.bus import BrokerConfig
        from live.ledger import LedgerError
        from live.runner import DashboardOptions, run_live
        from scenarios.audit.keys import KeyError_

        scenario = _load(file, set_)
        cfg: BrokerConfig | None = broker.config()
        if decentralised:
            from p2pgrid.cli_p2p_live import live_decentralised

            return live_decentralised(scenario, cfg, state, speed, intervals, not no_agents, keys)
        board = None
        if dashboard is not None:
            try:
                host, port = parse_host_port(dashboard)
            except ValueError as exc:
                raise fail(f"--dashboard: {exc}") from None
            board = DashboardOptions(host, port, token)
        elif token is not None:
            raise fail("--token needs --dashboard")
        try:
            make_out_dir(state, "--state")
        except ScenarioError as exc:
            raise fail(exc) from None
        try:
            run = run_live(
                scenario,
                cfg,
                state,
                speed,
                intervals,
                agents=not no_agents,
                emulate_meters=emulate_meters,
                log=lambda msg: console.print(msg, highlight=False, soft_wrap=True),
                dashboard=board,
                keep_dashboard=True,
                keys=keys,
            )
        except KeyError_ as exc:
            raise fail(f"--keys: {exc}") from None
        except ConnectionError as exc:
            raise fail(f"{exc}", code=1) from None
        except BrokerStartError as exc:
            raise fail(exc) from None
        except LedgerError as exc:  # --state holds another run
            raise fail(f"--state: {exc}") from None
        except OSError as exc:  # the dashboard's address is in use or not ours
            raise fail(f"--dashboard: {exc}") from None
        m = run.market
        console.print(
            f"settled {m.intervals} intervals · {m.readings} readings · "
            f"{m.orders} orders · {m.meter_samples} meter samples · "
            f"{m.corrections} corrected settlements · "
            f"{sum(m.rejected.values())} rejected · behind the clock {m.behind}×"
        )
        if m.intervals and m.unattended == m.intervals:
            if run.dashboard is not None:
                run.dashboard.stop()
            raise fail(
                f"no household or meter took part in any of the {m.intervals} intervals: "
                "are the agents running (on this broker, this community), and not following "
                "another run's clock?",
                code=1,
            )
        if run.dashboard is not None:
            console.print(
                f"market done; dashboard still at {run.dashboard.url} (Ctrl-C stops it)",
                highlight=False,
                soft_wrap=True,
            )
            _wait(threading.Event())
            run.dashboard.stop()

    @app.command()
    @broker_options
    def agents(
        file: ScenarioArg,
        broker: BrokerOptions = BROKER_GROUP,
        run_id: Annotated[
            str | None,
            typer.Option(
                "--run",
                help="Follow only this run of the market (its id is printed when it "
                "starts); default: the first run whose clock is live.",
            ),
        ] = None,
        keys: KeysOpt = None,
        decentralised: DecentralisedOpt = False,
        set_: SetOption = None,
    ) -> None:
        """Run the scenario's simulated households against a live market (with
        --decentralised: as peers negotiating among themselves, following the clock)."""
        from live.fleet import AgentFleet
        from scenarios.audit.keys import KeyError_

        scenario = _load(file, set_)
        cfg = broker.config()
        if cfg is None:
            raise fail("--broker is required")
        from live.p2p_peers import PeerFleet  # --decentralised: peers, not market agents
        from p2pgrid.cli_p2p_live import show_peer_warnings

        if decentralised:
            show_peer_warnings()
        try:
            fleet_class = PeerFleet if decentralised else AgentFleet
            fleet = fleet_class(scenario, cfg, run=run_id, keys=keys).start()
        except KeyError_ as exc:
            raise fail(f"--keys: {exc}") from None
        except ValueError as exc:  # not market.mechanism = "p2p"
            raise fail(exc) from None
        except ConnectionError as exc:
            raise fail(f"{exc}", code=1) from None
        _wait(fleet.done)
        fleet.stop()
        if isinstance(fleet, PeerFleet):
            p = fleet.stats
            console.print(f"{p.intervals} intervals · {p.sent} peer messages · {p.agreed} agreed")
            return
        s = fleet.stats
        console.print(
            f"{s.intervals} intervals · {s.readings_sent} readings · {s.orders_sent} orders sent"
        )

    @app.command()
    def broker(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 1883,
    ) -> None:
        """Run the embedded MQTT broker (amqtt) alone."""
        from live.broker import BrokerStartError, EmbeddedBroker

        try:
            b = EmbeddedBroker(host, port).start()
        except BrokerStartError as exc:
            raise fail(exc) from None
        console.print(f"embedded broker on {b.url} (Ctrl-C stops it)")
        _wait(threading.Event())
        b.stop()

    @app.command()
    def acl(
        file: ScenarioArg,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
            "mqtt-acl"
        ),
        listen: Annotated[
            str,
            typer.Option(
                "--listen",
                metavar="[HOST:]PORT",
                help="The listener of the generated mosquitto.conf (default: port 1883 on "
                "every interface).",
            ),
        ] = "1883",
        set_: SetOption = None,
    ) -> None:
        """Write a Mosquitto ACL file, password file, credentials and a mosquitto.conf that
        enforces them (client ids bound to accounts) for the scenario."""
        from live.acl import write_acl

        try:
            host, port = parse_host_port(listen)
        except ValueError as exc:
            raise fail(f"--listen: {exc}") from None
        bare_port = listen.strip().isdigit()
        scenario = _load(file, set_)
        try:
            make_out_dir(out)
        except ScenarioError as exc:
            raise fail(exc) from None
        paths = write_acl(scenario, out, ("" if bare_port else host, port))
        for name, path in paths.items():
            console.print(f"{name:12s} {path}")

    @meters_app.command("emulate")
    @broker_options
    def emulate(
        file: Annotated[Path | None, typer.Argument(help="Scenario file (optional).")] = None,
        fmt: Annotated[
            str | None,
            typer.Option(
                "--format",
                help="A registered meter format: tasmota, shelly, … (an unknown one is "
                "answered with the list; default: every meter FILE declares, else generic).",
            ),
        ] = None,
        count: Annotated[int, typer.Option(help="Meters, when the scenario maps none.")] = 1,
        broker: BrokerOptions = BROKER_GROUP,
        speed: SpeedOpt = 900.0,
        clock: Annotated[
            bool,
            typer.Option(
                "--own-clock/--market-clock",
                help="Publish on its own clock (a sample every --every simulated seconds "
                "at --speed, from the first market clock seen) instead of answering each "
                "market clock.",
            ),
        ] = False,
        every: Annotated[
            float | None,
            typer.Option(
                "--every", min=0.001, help="Own clock: simulated seconds between samples."
            ),
        ] = None,
        samples: Annotated[int, typer.Option(help="Samples per interval.")] = 3,
        keys: KeysOpt = None,
        set_: SetOption = None,
    ) -> None:
        """Emulate smart meters publishing native payloads from the profile generators."""

        from agents.meters.formats import format_names
        from live.emulator import MeterEmulator, emulated_scenario
        from scenarios.audit.keys import KeyError_
        from scenarios.config.schema import Scenario

        if fmt is not None and fmt not in format_names():
            raise fail(f"--format: {fmt!r} is not one of {', '.join(format_names())}")
        if clock and speed <= 0:
            raise fail("--own-clock needs --speed > 0")
        scenario = _load(file, set_) if file is not None else Scenario()
        formats = None  # the meters the file declares
        if fmt is not None or not scenario.live.meters:
            formats = (fmt or "generic",)
            try:
                scenario = emulated_scenario(scenario, formats[0], count)
            except ValueError as exc:
                raise fail(f"{exc}") from None
        cfg = broker.config()
        if cfg is None:
            raise fail("--broker is required")
        interval_s = scenario.simulation.interval_minutes * 60.0
        try:
            em = MeterEmulator(
                scenario,
                cfg,
                formats=formats,
                samples_per_interval=samples,
                own_clock_s=(every or interval_s / samples) if clock else None,
                speed=speed if clock else 900.0,
                keys=keys,
            )
            kinds = sorted({m.format for m in em.meters})
            console.print(
                f"{len(em.meters)} meter(s) ({', '.join(kinds)}) on {em.topics.root}/meters/"
            )
            em.start()
        except KeyError_ as exc:
            raise fail(f"--keys: {exc}") from None
        except ConnectionError as exc:
            raise fail(f"{exc}", code=1) from None
        _wait(em.done)
        em.stop()
        console.print(f"{em.published} payloads published")


_stopping = threading.Event()


def _wait(done: threading.Event) -> None:
    """Block until ``done`` or Ctrl-C / SIGTERM."""

    def handler(signum: int, frame: object) -> None:
        _stopping.set()

    signal.signal(signal.SIGTERM, handler)
    try:
        while not done.wait(0.2) and not _stopping.is_set():
            pass
    except KeyboardInterrupt:
        pass
