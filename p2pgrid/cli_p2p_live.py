"""``p2pgrid live FILE --decentralised``: the decentralised p2p market's clock, recorder
and peers (:mod:`live.p2p_run`, :mod:`live.p2p_peers`)."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.text import Text

from live.bus import BrokerConfig
from p2pgrid.console import console, err_console, fail
from scenarios.config.schema import Scenario
from scenarios.errors import ScenarioError
from scenarios.results.out_dir import make_out_dir


class _Warnings(logging.Handler):
    """A warning of the peers as one ``warning: message`` line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(
            Text.assemble(("warning: ", "bold yellow"), record.getMessage()),
            soft_wrap=not err_console.is_terminal,
        )


def show_peer_warnings() -> None:
    """Show the decentralised peers' warnings (logger ``live.p2p``: the stopping rule
    they use instead of the scenario's) on stderr, once each (they still reach any
    handler the root logger has)."""
    logger = logging.getLogger("live.p2p")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))


def live_decentralised(
    scenario: Scenario,
    cfg: BrokerConfig | None,
    state: Path,
    speed: float,
    intervals: int | None,
    peers: bool,
    keys: Path | None,
) -> None:
    """The clock and the recorder (and, with ``peers``, the households) until the end."""
    from contextlib import ExitStack

    from live.broker import BrokerStartError, EmbeddedBroker
    from live.p2p_run import run_decentralised
    from scenarios.audit.keys import KeyError_

    if scenario.market.mechanism != "p2p":
        raise fail(
            f'--decentralised needs market.mechanism = "p2p", not {scenario.market.mechanism!r}'
        )
    if speed <= 0:
        raise fail("--decentralised needs --speed > 0 (the clock paces the gates)")
    show_peer_warnings()
    try:
        make_out_dir(state, "--state")
    except ScenarioError as exc:
        raise fail(exc) from None
    with ExitStack() as stack:
        if cfg is None:
            try:
                embedded = EmbeddedBroker().start()
            except BrokerStartError as exc:
                raise fail(exc) from None
            stack.callback(embedded.stop)
            cfg = BrokerConfig(embedded.host, embedded.port)
        try:
            run = run_decentralised(
                scenario, cfg, state, speed, intervals, peers=peers, keys=keys,
                log=lambda msg: console.print(msg, highlight=False, soft_wrap=True),
            )  # fmt: skip
        except KeyError_ as exc:
            raise fail(f"--keys: {exc}") from None
        except ConnectionError as exc:
            raise fail(f"{exc}", code=1) from None
    p, r = run.peers, run.recorder
    if p is not None:
        console.print(
            f"{p.intervals} intervals · {p.sent} peer messages sent · iterations "
            f"{p.iterations} · not converged {p.not_converged} · {p.dropped} partners dropped"
        )
    if r is not None:
        console.print(
            f"recorded {r.records} signed pair records · {r.trades} trades · "
            f"{r.unverified} unverified · {run.trades_file}",
            highlight=False,
            soft_wrap=True,
        )
