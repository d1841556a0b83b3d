"""Signed messages in the live market's audit ledger, over a real Mosquitto.

With ``[live] require_signatures``, the simulated households and the emulated meters sign
every reading, orders message and meter sample (live/signatures.py). Every household's
input leaf names the SHA-256 of each signed message its inputs came from (its reading and
orders, its meter's samples), each is in ``private/`` exactly as received, and
``p2pgrid ledger verify`` re-checks their signatures: it passes on the untouched ledger
and with a private file erased, and fails, naming the interval, when one is altered.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from live.market import MarketService
from scenarios.audit.keys import Registry
from scenarios.audit.ledger import read_chain
from scenarios.config.loader import load_scenario

from .conftest import write_signed

INTERVALS = 4
LIVE = """checkpoint_every = 2
[[live.meters]]
id = "tas-1"
format = "tasmota"
household = "h0005"
"""
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


def verify(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ledger", "verify", str(state)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_signed_messages_are_in_the_ledger_and_verify_checks_them_again(
    mosquitto: Any, live_clients: Any, market_thread: Any, tmp_path: Path
) -> None:
    ids = ("h0001", "h0002", "h0003", "h0004", "tas-1", "market")
    path, _ = write_signed(tmp_path / "scenario", "live-audit-signed", 5, ids, LIVE)
    scenario = load_scenario(path)
    state = tmp_path / "state"
    market = MarketService(scenario, mosquitto.config, state, speed=0, intervals=INTERVALS)
    with live_clients(scenario, mosquitto.config) as (fleet, meters):
        assert set(fleet.signers) == {"h0001", "h0002", "h0003", "h0004"}
        assert set(meters.signers) == {"tas-1"}
        market_thread(market).finish(90)
        assert fleet.wait(20)
    assert sum(market.stats.rejected.values()) == 0

    ledger = state / "ledger"
    private = ledger / "private"
    entries = [e for e in read_chain(ledger) if e["header"]["kind"] == "interval"]
    assert [e["header"]["t"] for e in entries] == list(range(INTERVALS))
    named: list[str] = []
    for e in entries:
        leaves = {leaf["agent"]: leaf for leaf in e["inputs"]}
        assert set(leaves) == {f"h000{i}" for i in range(1, 6)}
        for agent, leaf in leaves.items():
            # a simulated household: its reading and its orders; the meter's: its samples
            assert len(leaf["signed"]) == 2 if agent != "h0005" else len(leaf["signed"]) >= 1
            named.extend(leaf["signed"])
    # every named message is in private/ exactly as received (named by its SHA-256)
    for h in named:
        raw = (private / f"{h}.json").read_bytes()
        assert hashlib.sha256(raw).hexdigest() == h and b'"sig"' in raw
    assert {p.stem for p in private.iterdir()} == set(named)
    # keys.json holds the scenario's keys and the market's (the one that signs checkpoints)
    keys = Registry.load(ledger / "keys.json")
    assert set(keys.ids()) == {"h0001", "h0002", "h0003", "h0004", "tas-1", "market"}

    ok = verify(state)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # erasable: a deleted private file is reported, not a failure
    erased = private / f"{named[0]}.json"
    erased.unlink()
    still = verify(state)
    assert still.returncode == 0, still.stdout + still.stderr
    # altered: one byte of a signed message (its name kept) fails, naming its interval
    last = {leaf["agent"]: leaf for leaf in entries[-1]["inputs"]}
    altered = private / f"{last['h0001']['signed'][0]}.json"  # its reading
    data = bytearray(altered.read_bytes())
    data[data.index(b'"t"') + 1] = ord("T")
    altered.write_bytes(bytes(data))
    bad = verify(state)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"interval {INTERVALS - 1}" in (bad.stdout + bad.stderr).splitlines()[0]
