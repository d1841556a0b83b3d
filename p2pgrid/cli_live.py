"""``p2pgrid live | agents | broker | acl | meters emulate``: the live market over MQTT."""

from __future__ import annotations

import ipaddress
import re
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.broker_options import BROKER_GROUP, BrokerOptions, broker_options
from p2pgrid.console import console, fail
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


DASHBOARD_DEFAULT = "127.0.0.1:8050"

KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        metavar="DIR",
        help="Sign every message with the private keys in DIR (`p2pgrid keys new`; "
        "default: the keys beside the scenario's [live] keys).",
    ),
]


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``PORT`` → (host, port), defaults filled."""
    default_host, default_port = DASHBOARD_DEFAULT.split(":")
    value = value.strip()
    if value.isdigit():
        host, port_text = default_host, value
    elif value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else default_port
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, default_port
    if not host:
        host = default_host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number in 0…65535")
    return host, int(port_text)


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)(:\d{1,5})?$|^\d{1,5}$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def optional_dashboard_value(argv: list[str]) -> list[str]:
    """``--dashboard`` takes an optional ``HOST:PORT``: give it the default when the next
    word is not an address (another option, the scenario file, or nothing)."""
    out = list(argv)
    i = 0
    while i < len(out):
        if out[i] == "--dashboard":
            nxt = out[i + 1] if i + 1 < len(out) else None
            is_address = nxt is not None and (
                nxt.isdigit()
                or nxt == "localhost"
                or _is_ip(nxt)
                or (":" in nxt and not nxt.startswith("-") and bool(_HOST_PORT.match(nxt)))
            )
            if not is_address:
                out.insert(i + 1, DASHBOARD_DEFAULT)
            i += 1
        i += 1
    return out


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
        set_: SetOption = None,
    ) -> None:
        """Run the live market (and the scenario's simulated agents) over MQTT.

        With --dashboard the web dashboard serves the market from this process; it keeps
        serving after the last interval until Ctrl-C.
        """
        from live.broker import BrokerStartError
        from live.bus import BrokerConfig
        from live.ledger import LedgerError
        from live.runner import DashboardOptions, run_live
        from scenarios.audit.keys import KeyError_

        scenario = _load(file, set_)
        cfg: BrokerConfig | None = broker.config()
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
        set_: SetOption = None,
    ) -> None:
        """Run the scenario's simulated households against a live market."""
        from live.fleet import AgentFleet
        from scenarios.audit.keys import KeyError_

        scenario = _load(file, set_)
        cfg = broker.config()
        if cfg is None:
            raise fail("--broker is required")
        try:
            fleet = AgentFleet(scenario, cfg, run=run_id, keys=keys).start()
        except KeyError_ as exc:
            raise fail(f"--keys: {exc}") from None
        except ConnectionError as exc:
            raise fail(f"{exc}", code=1) from None
        _wait(fleet.done)
        fleet.stop()
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
