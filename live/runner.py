"""Putting the pieces together for the command line: broker, market, agents, meters."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from live.broker import EmbeddedBroker
from live.bus import BrokerConfig
from live.emulator import MeterEmulator
from live.fleet import AgentFleet, FleetStats
from live.market import MarketService, MarketStats
from scenarios.schema import Scenario


@dataclass
class LiveRun:
    market: MarketStats
    fleet: FleetStats | None
    meter_samples: int
    broker: str


def run_live(
    scenario: Scenario,
    broker: BrokerConfig | None,
    state_dir: Path,
    speed: float = 900.0,
    intervals: int | None = None,
    agents: bool = True,
    emulate_meters: bool = False,
    log: Callable[[str], None] | None = None,
) -> LiveRun:
    """The market (in this thread) plus the simulated agents and emulated meters; with
    ``broker`` None an embedded broker is started first."""
    log = log or (lambda _m: None)
    with ExitStack() as stack:
        if broker is None:
            embedded = EmbeddedBroker().start()
            stack.callback(embedded.stop)
            broker = BrokerConfig(embedded.host, embedded.port)
            log(f"embedded broker on {embedded.url}")
        market = MarketService(scenario, broker, state_dir, speed, intervals, log=log)
        fleet = None
        if agents:
            fleet = AgentFleet(scenario, broker).start()
            stack.callback(fleet.stop)
        meters = None
        if emulate_meters and scenario.live.meters:
            meters = MeterEmulator(scenario, broker).start()
            stack.callback(meters.stop)
        stats = market.run()
        return LiveRun(
            stats, fleet.stats if fleet else None, meters.published if meters else 0, broker.url
        )
