"""Putting the pieces together for the command line: broker, market, agents, meters."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from live.broker import EmbeddedBroker
from live.bus import BrokerConfig
from live.emulator import MeterEmulator
from live.fleet import AgentFleet, FleetStats
from live.market import MarketService
from live.stats import MarketStats
from scenarios.config.schema import Scenario


@dataclass
class LiveRun:
    market: MarketStats
    fleet: FleetStats | None
    meter_samples: int
    broker: str
    dashboard: Any = None  # the DashboardServer, still serving, when one was asked for


@dataclass(frozen=True)
class DashboardOptions:
    """Serve the web dashboard of the running market (``p2pgrid live … --dashboard``)."""

    host: str = "127.0.0.1"
    port: int = 8050
    token: str | None = None


def attach_dashboard(
    market: MarketService, scenario: Scenario, options: DashboardOptions, state_dir: Path
) -> Any:
    """Start the dashboard fed in-process by ``market`` (every interval already in the
    ledger first, so a restarted market's page shows the whole run); returns the
    :class:`live.dashboard.server.DashboardServer`."""
    from live.dashboard.market_source import MarketSource
    from live.dashboard.server import start_dashboard
    from live.ledger import has_ledger, read_ledger
    from scenarios.results.households_table import scenario_households

    source = MarketSource(
        market.topics.community,
        market.bus.config.url,
        {
            **scenario.market.model_dump(),
            "v_min_pu": scenario.grid.v_min_pu,
            "v_max_pu": scenario.grid.v_max_pu,
            "feeder": scenario.grid.feeder if scenario.grid.check != "off" else None,
        },
        scenario.simulation.interval_minutes,
        scenario_households(scenario),
    )
    if has_ledger(state_dir):
        intervals = [r for r in read_ledger(state_dir) if "corrects_after" not in r]
        for record in intervals[:-1]:  # the last one is re-published
            source.interval(record["result"], record["settlements"], {}, record.get("book"))
    market.listeners.append(source)
    return start_dashboard(source, options.host, options.port, options.token)


def run_live(
    scenario: Scenario,
    broker: BrokerConfig | None,
    state_dir: Path,
    speed: float = 900.0,
    intervals: int | None = None,
    agents: bool = True,
    emulate_meters: bool = False,
    log: Callable[[str], None] | None = None,
    dashboard: DashboardOptions | None = None,
    keep_dashboard: bool = False,
    keys: Path | None = None,
) -> LiveRun:
    """The market (in this thread) plus the simulated agents and emulated meters; with
    ``broker`` None an embedded broker is started first.

    With ``dashboard``, the web dashboard serves the market from this process (its URL
    is logged); with ``keep_dashboard`` it is left running and returned in
    :attr:`LiveRun.dashboard` (the caller stops it), else it stops with the market.
    ``keys``: the folder of the households' and meters' private keys the simulated
    agents and emulated meters sign with (default: beside the scenario's ``[live] keys``).
    """
    log = log or (lambda _m: None)
    with ExitStack() as stack:
        if broker is None:
            embedded = EmbeddedBroker().start()
            stack.callback(embedded.stop)
            broker = BrokerConfig(embedded.host, embedded.port)
            log(f"embedded broker on {embedded.url}")
        market = MarketService(scenario, broker, state_dir, speed, intervals, log=log)
        log(
            f"live market {market.topics.root}/ · run {market.run_id} · speed {speed:g} · "
            f"ledger {state_dir}"
            + (f" (resuming at interval {market.ledger.next_t})" if market.ledger.next_t else "")
        )
        server = None
        if dashboard is not None:
            server = attach_dashboard(market, scenario, dashboard, state_dir)
            if not keep_dashboard:
                stack.callback(server.stop)
            log(f"dashboard: {server.url}")
            if server.token:
                log("(bound beyond this machine: every request needs the token)")
        fleet = None
        if agents:
            # through the market's own connection: a broker that binds client ids to
            # accounts (p2pgrid acl) would let a second connection of the market's
            # account take over the first
            fleet = AgentFleet(
                scenario, broker, run=market.run_id, bus=market.bus, keys=keys
            ).start()
            stack.callback(fleet.stop)
        meters = None
        if emulate_meters and scenario.live.meters:
            meters = MeterEmulator(
                scenario, broker, run=market.run_id, bus=market.bus, keys=keys
            ).start()
            stack.callback(meters.stop)
        stats = market.run()
        return LiveRun(
            stats,
            fleet.stats if fleet else None,
            meters.published if meters else 0,
            broker.url,
            server if keep_dashboard else None,
        )
