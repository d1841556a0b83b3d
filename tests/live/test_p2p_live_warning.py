"""The decentralised peers stop by the pairwise rule whatever ``[market.p2p] stopping``
says (no peer can compute the root-mean-square residuals over all pairs): when the
scenario says ``"rms"`` (set, or by default) ``p2pgrid live FILE --decentralised`` and
``p2pgrid agents FILE --decentralised`` say so at start-up, once, in a ``warning:`` line
that names the setting a batch run to compare against needs; the warning is logged on
``live.p2p`` too. With ``stopping = "pairwise"`` nothing is said.

Over a real Mosquitto, one interval each, as a person runs the commands."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from live.protocol import topics_for
from p2pgrid.cli import app
from scenarios.config.loader import load_scenario

from .conftest import CLI
from .test_p2p_live import SPEED, TOML

WARNING = (
    'warning: [market.p2p] stopping = "rms" ({how}), but the decentralised peers stop by '
    "the pairwise rule (no peer can compute the root-mean-square residuals over all pairs; "
    "each pair tests its own): a batch run to compare against must set [market.p2p] "
    'stopping = "pairwise"'
)


@pytest.fixture
def rms_file(tmp_path: Path) -> Path:
    """The decentralised scenario of test_p2p_live without its ``stopping`` line: the
    default, ``"rms"``."""
    path = tmp_path / "p2p-rms.toml"
    assert 'stopping = "pairwise"\n' in TOML
    path.write_text(TOML.replace('stopping = "pairwise"\n', ""), encoding="utf-8")
    return path


def live(file: Path, port: int, state: Path, *extra: str) -> Any:
    """``p2pgrid live FILE --decentralised`` for one interval, in this process."""
    args = ["live", str(file), "--decentralised", "--broker", f"mqtt://127.0.0.1:{port}"]
    args += ["--speed", str(SPEED), "--intervals", "1", "--state", str(state), *extra]
    return CliRunner().invoke(app, args)


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:")]


def test_live_decentralised_warns_once_of_the_default_rms_rule_and_logs_it(
    rms_file: Path, mosquitto: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="live.p2p"):
        got = live(rms_file, mosquitto.port, tmp_path / "state")
    assert got.exit_code == 0, got.output
    assert warnings_in(got.output) == [WARNING.format(how="the default")]
    logged = [r for r in caplog.records if r.name == "live.p2p"]
    assert [(r.levelno, "warning: " + r.getMessage()) for r in logged] == [
        (logging.WARNING, WARNING.format(how="the default"))
    ]
    assert "1 intervals" in got.output  # and the peers ran their interval


def test_live_decentralised_says_nothing_when_the_scenario_says_pairwise(
    rms_file: Path, mosquitto: Any, tmp_path: Path
) -> None:
    got = live(
        rms_file, mosquitto.port, tmp_path / "state", "--set", "market.p2p.stopping=pairwise"
    )
    assert got.exit_code == 0, got.output
    assert warnings_in(got.output) == [] and "pairwise" not in got.output
    assert "1 intervals" in got.output


def test_agents_decentralised_warns_of_an_rms_rule_the_scenario_sets(
    rms_file: Path, mosquitto: Any, mqtt_client: Any, tmp_path: Path
) -> None:
    """The peers as their own process (``p2pgrid agents``), the clock and the recorder
    as another (``p2pgrid live --no-agents``, which runs no peer and says nothing),
    started once the peers' connection is up (its retained ``online`` status, on
    ``status/p2pgrid-peers-…``)."""
    rms = ("--set", "market.p2p.stopping=rms")
    broker = ("--broker", f"mqtt://127.0.0.1:{mosquitto.port}")
    status = f"{topics_for(load_scenario(rms_file)).root}/status/+"
    online = threading.Event()

    def on_status(client: Any, userdata: Any, msg: Any) -> None:
        peers_bus = msg.topic.rsplit("/", 1)[-1].startswith("p2pgrid-peers-")
        if peers_bus and json.loads(msg.payload).get("status") == "online":
            online.set()

    with mqtt_client(mosquitto.config, "watcher", [(status, 1)], on_status):
        peers = subprocess.Popen(
            [*CLI, "agents", str(rms_file), "--decentralised", *broker, *rms],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "400"},
        )
        try:
            assert online.wait(60), "the peers did not connect in 60 s"
            clock = live(rms_file, mosquitto.port, tmp_path / "state", "--no-agents", *rms)
            out, err = peers.communicate(timeout=60)
        finally:
            if peers.poll() is None:
                peers.kill()
                peers.communicate()
    assert clock.exit_code == 0, clock.output
    assert warnings_in(clock.output) == []
    assert peers.returncode == 0, out + err
    assert warnings_in(err) == [WARNING.format(how="as the scenario sets it")]
    assert out.startswith("1 intervals"), out
