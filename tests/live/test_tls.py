"""The live market over TLS: a Mosquitto whose only listener speaks TLS with a server
certificate from a throwaway CA and wants a username and password (``tls_broker``).

A short market with its agents runs over it and settles exactly what the batch engine
settles, in process and through ``p2pgrid live``; a client trusting another CA, a wrong
password or plain MQTT get a clear error in good time, not a hang or a traceback.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest

from live.bus import BrokerConfig, Bus
from live.fleet import AgentFleet
from live.market import MarketService
from live.paho_client import FastClient, client_class
from live.protocol import topics_for
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario

HOUSEHOLDS = 6
INTERVALS = 4

# the clock in Auckland, the panels at the default site (Berlin): the first intervals of
# the day are the panels' afternoon, so that a short run trades
TLS_TOML = f"""
name = "live-tls"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 11
timezone = "Pacific/Auckland"
[community]
households = {HOUSEHOLDS}
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
reconnect_grace_s = 1.0
"""


@pytest.fixture(autouse=True)
def _stock_client_leaks() -> Any:
    """paho's stock client leaves the socket of a failed TLS handshake open (FastClient
    closes it): with the stock fallback forced, the leaked sockets are collected here
    rather than warn in whichever test the collector happens to run next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_failed_handshake_closes_its_socket(tls_broker) -> None:
    """The optimised client closes the TLS socket of a handshake that fails: no socket
    is left for the collector to find (it would warn, an error in this suite)."""
    if not issubclass(client_class(), FastClient):
        pytest.skip("paho's stock client leaks the socket (the fallback is in use)")
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            bus = Bus(tls_broker.config_with(cafile=str(tls_broker.other_cafile)), "x", "p2pgrid/x")
            with pytest.raises(ConnectionError):
                bus.start(8)
        del bus
        gc.collect()
    assert not [w for w in caught if "SSLSocket" in str(w.message)]


CLI = [sys.executable, "-c", "from p2pgrid.cli import main; main()"]


@pytest.fixture(scope="module")
def tls_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario-tls") / "live-tls.toml"
    path.write_text(TLS_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tls_scenario(tls_file: Path) -> Scenario:
    return load_scenario(tls_file)


def run_cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "P2PGRID_MQTT_PASSWORD"}
    env["COLUMNS"] = "400"  # one error per line, whatever the terminal
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_live_market_over_tls_equals_batch(
    tls_broker, tls_scenario: Scenario, tmp_path: Path, equal_to_batch: Any
) -> None:
    config = tls_broker.config
    assert config.tls and config.url.startswith("mqtts://")
    topics = topics_for(tls_scenario)
    wire: dict[int, dict[str, Any]] = {}
    lock = threading.Lock()

    def on_result(topic: str, payload: bytes) -> None:
        data = orjson.loads(payload)
        with lock:
            wire[data["t"]] = data

    observer = Bus(config, "observer", topics.root)
    observer.subscribe(topics.result, on_result)
    observer.start(10)
    try:
        fleet = AgentFleet(tls_scenario, config).start(10)
        try:
            market = MarketService(
                tls_scenario, config, tmp_path / "state", speed=0, intervals=INTERVALS
            )
            stats = market.run()
            assert fleet.wait(20), "the agents never saw the end of the run"
        finally:
            fleet.stop()
        deadline = time.monotonic() + 10
        while len(wire) < INTERVALS and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        observer.stop()
    assert market.bus.connects == 1 and fleet.bus.connects == 1, "a TLS connection dropped"
    assert stats.intervals == INTERVALS
    assert sum(stats.rejected.values()) == 0, stats.rejected
    assert stats.readings == fleet.stats.readings_sent == HOUSEHOLDS * INTERVALS
    assert stats.order_messages == fleet.stats.order_messages_sent == HOUSEHOLDS * INTERVALS
    assert stats.orders == fleet.stats.orders_sent > 0
    assert fleet.stats.settlements == HOUSEHOLDS * INTERVALS
    assert fleet.stats.missing_settlements == 0
    for r in market.results:
        assert r["counts"]["missing_agents"] == 0
    results = [wire[t] for t in sorted(wire)]
    assert results == list(market.results), "the results seen over TLS differ from the market's"
    assert [r["t"] for r in results] == list(range(INTERVALS))
    assert sum(r["volume_kwh"] for r in results) > 0, "nothing traded: a weak test"
    equal_to_batch(results, tls_scenario, tmp_path / "batch", books=market.books)


def test_cli_live_over_tls(tls_broker, tls_file: Path, tmp_path: Path) -> None:
    out = run_cli(
        [
            "live",
            str(tls_file),
            "--broker",
            tls_broker.url,
            "--cafile",
            str(tls_broker.cafile),
            "--intervals",
            "3",
            "--speed",
            "0",
            "--state",
            str(tmp_path / "state"),
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "settled 3 intervals" in out.stdout, out.stdout
    assert "· 0 rejected" in out.stdout, out.stdout


def test_untrusted_ca_fails_at_once_naming_the_certificate(tls_broker) -> None:
    bus = Bus(tls_broker.config_with(cafile=str(tls_broker.other_cafile)), "x", "p2pgrid/x")
    began = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        bus.start(8)
    assert time.monotonic() - began < 5, "waited out the timeout for a certificate error"
    message = str(caught.value)
    assert "TLS certificate verification failed" in message
    assert f"mqtts://127.0.0.1:{tls_broker.port}" in message
    assert str(tls_broker.other_cafile) in message
    assert bus.client._thread is None, "the client is still retrying in the background"
    assert not bus.connected.is_set()


def test_certificate_for_another_host_fails_at_once(start_tls_broker_for) -> None:
    # signed by the trusted CA, but for another name: the host name is checked too
    other = start_tls_broker_for(("broker.invalid",))
    bus = Bus(other.config, "x", "p2pgrid/x")
    with pytest.raises(ConnectionError) as caught:
        bus.start(8)
    message = str(caught.value)
    assert "TLS certificate verification failed" in message
    assert "mismatch" in message, message
    assert bus.client._thread is None


def test_insecure_skips_the_verification(tls_broker) -> None:
    config = tls_broker.config_with(cafile=str(tls_broker.other_cafile), insecure=True)
    bus = Bus(config, "x", "p2pgrid/x").start(8)
    try:
        assert bus.connected.is_set() and bus.connects == 1
    finally:
        bus.stop()
    assert bus.client._thread is None


def test_wrong_password_is_refused_at_once(tls_broker) -> None:
    bus = Bus(tls_broker.config_with(password="wrong"), "x", "p2pgrid/x")
    began = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        bus.start(8)
    assert time.monotonic() - began < 5, "waited out the timeout for refused credentials"
    message = str(caught.value)
    assert "refused the connection: Not authorized" in message
    assert "wrong username or password" in message
    assert bus.client._thread is None


def test_plain_mqtt_to_the_tls_listener_times_out_with_a_hint(tls_broker) -> None:
    plain = BrokerConfig("127.0.0.1", tls_broker.port, tls_broker.username, tls_broker.password)
    bus = Bus(plain, "x", "p2pgrid/x")
    began = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        bus.start(1)
    assert time.monotonic() - began < 4
    message = str(caught.value)
    assert message.startswith(f"no connection to mqtt://127.0.0.1:{tls_broker.port} in 1 s")
    assert "closed the connection before accepting it; does it want TLS (mqtts://)?" in message
    assert bus.client._thread is None


def test_unreadable_cafile_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    config = BrokerConfig.from_url("mqtts://127.0.0.1:1", cafile=str(missing))
    with pytest.raises(ConnectionError, match=r"TLS for mqtts://127\.0\.0\.1:1: cannot load"):
        Bus(config, "x", "p2pgrid/x")
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n", encoding="utf-8")
    config = BrokerConfig.from_url("mqtts://127.0.0.1:1", cafile=str(not_pem))
    with pytest.raises(ConnectionError, match=rf"cannot load --cafile {not_pem}"):
        Bus(config, "x", "p2pgrid/x")


@pytest.mark.parametrize(
    ("command", "problem", "expected"),
    [
        ("live", "other-ca", "TLS certificate verification failed"),
        ("live", "password", "refused the connection: Not authorized"),
        ("agents", "other-ca", "TLS certificate verification failed"),
    ],
    ids=["live-untrusted-ca", "live-wrong-password", "agents-untrusted-ca"],
)
def test_cli_names_the_broker_problem(
    tls_broker, tls_file: Path, tmp_path: Path, command: str, problem: str, expected: str
) -> None:
    if problem == "other-ca":
        url, cafile = tls_broker.url, tls_broker.other_cafile
    else:
        url = f"mqtts://{tls_broker.username}:wrong@127.0.0.1:{tls_broker.port}"
        cafile = tls_broker.cafile
    args = [command, str(tls_file), "--broker", url, "--cafile", str(cafile)]
    if command == "live":  # the feeder model is no part of this: spare its setup
        args += ["--intervals", "2", "--speed", "0", "--state", str(tmp_path / "state")]
        args += ["--set", "grid.check=off"]
    began = time.monotonic()
    out = run_cli(args, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert time.monotonic() - began < 20, "the command waited out its connect timeout"
    assert "Traceback" not in out.stderr, out.stderr
    assert expected in out.stderr, out.stderr
    assert f"mqtts://127.0.0.1:{tls_broker.port}" in out.stderr, out.stderr
    if problem == "password":
        assert "wrong username or password" in out.stderr, out.stderr
        assert ":wrong@" not in out.stdout + out.stderr, "the password was printed"
