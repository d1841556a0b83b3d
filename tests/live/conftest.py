"""Fixtures of the live tests: a real Mosquitto on a free port, the e2e scenario."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
import pytest

from live.acl import mosquitto_hash
from live.broker import free_port
from live.bus import BrokerConfig
from live.emulator import MeterEmulator
from live.fleet import AgentFleet
from live.market import MarketService
from live.payloads import RESULT_FIELDS
from live.protocol import topics_for
from p2pgrid.cli_keys import key_ids
from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.runner import run as run_batch

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)

E2E_TOML = """
name = "live-e2e"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 7
[community]
households = 25
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
reconnect_grace_s = 1.0
[[live.meters]]
id = "tas-1"
format = "tasmota"
household = "h0021"
[[live.meters]]
id = "shelly-1"
format = "shelly"
household = "h0022"
[[live.meters]]
id = "dsmr-1"
format = "dsmr"
household = "h0023"
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0024"
[[live.meters]]
id = "gen-power"
format = "generic"
household = "h0025"
"""


@dataclass
class Mosquitto:
    """A Mosquitto process the test controls."""

    port: int
    conf: Path
    proc: subprocess.Popen | None = None

    @property
    def config(self) -> BrokerConfig:
        return BrokerConfig("127.0.0.1", self.port)

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None
                err = self.proc.stderr.read().decode()
                self.proc.stderr.close()
                raise RuntimeError(f"mosquitto exited: {err}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen in 10 s")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


def start_mosquitto(tmp: Path, extra: str = "") -> Mosquitto:
    if MOSQUITTO is None:
        pytest.fail(
            "Mosquitto is not installed: the live tests need a real broker. Install it with "
            "`apt-get install -y mosquitto` (Debian/Ubuntu; .ci/run does this in CI).",
            pytrace=False,
        )
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"persistence true\npersistence_location {tmp}/\nautosave_interval 1\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
        # as root, Mosquitto drops to user "mosquitto", who cannot read the 0600 passwd
        + ("user root\n" if os.geteuid() == 0 else "")
        + (extra or "allow_anonymous true\n"),
        encoding="utf-8",
    )
    broker = Mosquitto(port, conf)
    broker.start()
    return broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = start_mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")


def start_live(
    file: Path, port: int, state: Path, intervals: int, *extra: str, **popen: Any
) -> subprocess.Popen:
    """``p2pgrid live FILE`` on the Mosquitto at ``port``, ``--speed 0``, as a process
    (stdout discarded and stderr piped unless ``popen`` says otherwise)."""
    return subprocess.Popen(
        [
            *CLI,
            "live",
            str(file),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--speed",
            "0",
            "--intervals",
            str(intervals),
            "--state",
            str(state),
            *extra,
        ],
        **{"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, **popen},
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def live_cli() -> Callable[..., subprocess.Popen]:
    """:func:`start_live`: the market as its own process, to kill or to read from."""
    return start_live


@contextmanager
def households_and_meters(
    scenario: Scenario, config: BrokerConfig
) -> Iterator[tuple[AgentFleet, MeterEmulator]]:
    """The scenario's simulated households and emulated meters (``gen-power``, if the
    scenario has it, reports power only), stopped on leaving."""
    fleet = AgentFleet(scenario, config).start()
    meters = MeterEmulator(scenario, config, power_only=("gen-power",)).start()
    try:
        yield fleet, meters
    finally:
        fleet.stop()
        meters.stop()


@pytest.fixture
def live_clients() -> Callable[..., Any]:
    """:func:`households_and_meters`, as a context manager."""
    return households_and_meters


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` every 10 ms; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def waiting() -> Callable[..., None]:
    """:func:`wait_until`."""
    return wait_until


@dataclass
class MarketThread:
    """A :class:`MarketService` running in a thread of the test."""

    market: MarketService
    thread: threading.Thread

    def wait_collecting(self, t: int, timeout: float = 30.0) -> None:
        """Until the gate of interval ``t`` is open; fails if the market ended before."""
        wait_until(
            lambda: self.market.collecting(t) or not self.thread.is_alive(),
            f"the market's gate of t={t}",
            timeout,
        )
        assert self.thread.is_alive(), f"the market ended before the gate of t={t}"

    def finish(self, timeout: float, what: str = "the market did not settle every interval"):
        """Until the market has run its intervals; else stop it and fail with ``what``."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.market.stop()
            self.thread.join(10)
            pytest.fail(what)


def start_market(market: MarketService) -> MarketThread:
    """``market.run()`` in a daemon thread (:meth:`MarketThread.finish` joins it)."""
    thread = threading.Thread(target=market.run, daemon=True)
    thread.start()
    return MarketThread(market, thread)


@pytest.fixture
def market_thread() -> Callable[[MarketService], MarketThread]:
    """:func:`start_market`."""
    return start_market


@contextmanager
def paho_client(
    config: BrokerConfig,
    client_id: str,
    subscribe: list[tuple[str, int]] | None = None,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
) -> Iterator[mqtt.Client]:
    """A plain paho client on the test's broker (a real device, a recorder), connected
    and, with ``subscribe``, subscribed (the broker has acknowledged) before it is
    yielded; disconnected on leaving."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    ready = threading.Event()
    if on_message is not None:
        client.on_message = on_message
    if subscribe:
        client.on_subscribe = lambda *_: ready.set()
        client.on_connect = lambda c, *_: c.subscribe(subscribe)
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        assert not subscribe or ready.wait(10), f"{client_id} not subscribed in 10 s"
        yield client
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def mqtt_client() -> Callable[..., Any]:
    """:func:`paho_client`, as a context manager."""
    return paho_client


@dataclass
class OneInterval:
    """What a household client saw of a one-interval live market (:func:`one_interval`)."""

    market: MarketService
    results: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    settlements: dict[str, dict[str, Any]]


def one_interval(
    scenario: Scenario,
    config: BrokerConfig,
    state: Path,
    sent: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]] | None]],
    client_id: str,
) -> OneInterval:
    """Run a live market for interval 0 while one plain paho client plays the households:
    on the clock's t = 0 it publishes each household's ``(reading, orders)`` of ``sent``
    (None: that message not sent), and it records every result, error and settlement."""
    topics = topics_for(scenario)
    market = MarketService(scenario, config, state, speed=0, intervals=1)
    seen = OneInterval(market, [], [], {})
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        with lock:
            if msg.topic == topics.clock:
                if data.get("t") == 0 and not data.get("done"):
                    for agent, (reading, orders) in sent.items():
                        if reading is not None:
                            body = {"v": 1, "t": 0, **reading}
                            client.publish(topics.reading(agent), json.dumps(body), qos=1)
                        if orders is not None:
                            body = {"v": 1, "t": 0, "orders": orders}
                            client.publish(topics.orders(agent), json.dumps(body), qos=1)
            elif msg.topic == topics.result:
                seen.results.append(data)
            elif msg.topic == topics.errors:
                seen.errors.append(data)
            else:
                seen.settlements[msg.topic.split("/")[-2]] = data

    subscribe = [
        (topics.clock, 1),
        (topics.result, 1),
        (topics.errors, 1),
        (f"{topics.root}/agents/+/settlement", 1),
    ]
    with paho_client(config, client_id, subscribe, on_message):
        market.run()
    return seen


TWO_METERS = """
name = "live-two-meters"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 5
[community]
households = 2
[grid]
check = "off"
[live]
close_when_complete = true
complete_timeout_s = {timeout}
[[live.meters]]
id = "tas-1"
format = "tasmota"
household = "h0001"
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0002"
"""


@pytest.fixture
def two_meters(tmp_path: Path) -> Callable[[float], Path]:
    """``two_meters(complete_timeout_s)``: the file of a scenario whose two households
    are backed by a Tasmota (``tas-1``, h0001) and a generic meter (``gen-1``, h0002),
    for the tests that keep one of them silent or offline."""

    def write(complete_timeout_s: float) -> Path:
        path = tmp_path / "two-meters.toml"
        path.write_text(TWO_METERS.format(timeout=complete_timeout_s), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def e2e_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "live-e2e.toml"
    path.write_text(E2E_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def e2e_scenario(e2e_file: Path) -> Scenario:
    return load_scenario(e2e_file)


_BATCH: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}


def batch_tables(scenario: Scenario, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """intervals and trades of a batch run of the scenario (cached per scenario)."""
    key = scenario.model_dump_json()
    if key not in _BATCH:
        run_batch(scenario, out)
        _BATCH[key] = (
            pd.read_parquet(out / "intervals.parquet"),
            pd.read_parquet(out / "trades.parquet"),
        )
    return _BATCH[key]


def assert_equal_to_batch(
    results: list[dict[str, Any]],
    scenario: Scenario,
    out: Path,
    tol: float = 1e-6,
    *,
    books: Any,
) -> None:
    """Every live interval's ``market/result`` field from the results schema (price,
    volume, utility flows, money, welfare, voltages, violations)
    and trades (``books``: the ``market/book`` payloads of the same intervals) equal the
    batch engine's for the same interval."""
    intervals, trades = batch_tables(scenario, out)
    assert results, "no results on the wire"
    book_of = {b["t"]: b for b in books}
    assert set(book_of) >= {r["t"] for r in results}, "a result without its market/book"
    ts = [r["t"] for r in results]
    assert ts == list(range(ts[0], ts[0] + len(ts))), f"intervals not consecutive: {ts}"
    for r in results:
        t = r["t"]
        row = intervals.loc[intervals["t"] == t].iloc[0]
        where = f"t={t}"
        # every field the results schema publishes (live name) equals its batch column
        for c in RESULT_FIELDS:
            nested = c.live.startswith("grid.")
            if nested and r["grid"] is None:  # no feeder check: no grid object
                assert scenario.grid.check == "off", f"{where}: grid is null"
                continue
            got = (r["grid"] if nested else r)[c.live.removeprefix("grid.")]
            want, what = row[c.name], f"{where} {c.live}: {got} live, {row[c.name]} batch"
            if c.dtype == "float64" and math.isnan(want):
                assert got is None, what
            elif c.dtype == "float64":
                assert got is not None and abs(got - want) < tol, what
            else:
                assert got == want, what
        # two trades of one pair (a net and a device order of the same buyer) by energy
        batch = trades.loc[trades["t"] == t].sort_values(
            ["buyer_id", "seller_id", "energy_kwh", "price_per_kwh"]
        )
        live = sorted(
            (x["buyer"], x["seller"], x["energy_kwh"], x["price_per_kwh"])
            for x in book_of[t]["trades"]
        )
        assert len(live) == len(batch), f"{where}: {len(live)} trades vs {len(batch)}"
        if live:
            got = np.array([[e, p] for _, _, e, p in live])
            want = batch[["energy_kwh", "price_per_kwh"]].to_numpy()
            assert [(b, s) for b, s, _, _ in live] == list(
                zip(batch["buyer_id"].astype(str), batch["seller_id"].astype(str), strict=True)
            ), where
            np.testing.assert_allclose(got, want, atol=tol, err_msg=where)


@pytest.fixture
def equal_to_batch():
    """``assert_equal_to_batch(results, scenario, out_dir)``."""
    return assert_equal_to_batch


@pytest.fixture
def acl_broker(tmp_path: Path):
    """``start(acl_dir)``: a Mosquitto enforcing that directory's acl and passwd files."""
    started: list[Mosquitto] = []

    def start(acl_dir: Path) -> Mosquitto:
        broker = start_mosquitto(
            tmp_path / "mosquitto-acl",
            f"allow_anonymous false\npassword_file {acl_dir / 'passwd'}\n"
            f"acl_file {acl_dir / 'acl'}\n",
        )
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@dataclass
class AclBroker:
    """A Mosquitto enforcing the ACL ``p2pgrid acl`` wrote into ``folder``; the
    passwords of its accounts (``credentials.json``) by account."""

    broker: Mosquitto
    creds: dict[str, str]
    folder: Path

    @property
    def port(self) -> int:
        return self.broker.port


@pytest.fixture
def e2e_acl(e2e_file: Path, tmp_path: Path, acl_broker: Any) -> AclBroker:
    """``p2pgrid acl`` on the e2e scenario (into ``tmp_path/acl``), its credentials
    loaded and a Mosquitto enforcing it started (stopped after the test)."""
    from typer.testing import CliRunner

    from p2pgrid.cli import app

    out = tmp_path / "acl"
    result = CliRunner().invoke(app, ["acl", str(e2e_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    creds = json.loads((out / "credentials.json").read_text())
    return AclBroker(acl_broker(out), creds, out)


# --- signed communities: key pairs and a scenario that requires signatures -----------

SIGNED_TOML = """
name = "{name}"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 3
[community]
households = {households}
[grid]
check = "off"
[live]
close_when_complete = true
complete_timeout_s = 20
keys = "keys/keys.json"
require_signatures = {required}
"""


def make_keys(directory: Path, key_ids: Iterable[str]) -> dict[str, KeyPair]:
    """What ``p2pgrid keys new`` writes into ``directory``: a key file for every id of
    ``key_ids`` and keys.json registering their public keys; the key pairs, by id."""
    directory.mkdir(parents=True, exist_ok=True)
    pairs = {i: KeyPair.new(i) for i in key_ids}
    registry = Registry()
    for key_id, pair in pairs.items():
        pair.save(directory / f"{key_id}.key")
        registry.add(key_id, pair.public_b64)
    registry.save(directory / "keys.json")
    return pairs


def write_signed(
    folder: Path,
    name: str,
    households: int,
    key_ids: Iterable[str],
    live: str = "",
    required: bool = True,
) -> tuple[Path, dict[str, KeyPair]]:
    """``folder/signed.toml``: a one-day half-hourly community of ``households`` (seed 3,
    no grid check) whose ``[live]`` names ``keys/keys.json`` and requires signatures (or
    not), followed by ``live`` (more ``[live]`` keys, ``[[live.meters]]``); and
    ``folder/keys`` made by :func:`make_keys` for ``key_ids``. The file and the pairs."""
    pairs = make_keys(folder / "keys", key_ids)
    path = folder / "signed.toml"
    head = SIGNED_TOML.format(name=name, households=households, required=str(required).lower())
    path.write_text(head + live, encoding="utf-8")
    return path, pairs


# --- TLS: a throwaway CA, a server certificate for 127.0.0.1 and a Mosquitto TLS listener


def signed_file(
    folder: Path, name: str, workers: int | str, n: int = 4, extra: str = ""
) -> tuple[Path, dict[str, KeyPair]]:
    """A signed scenario with ``[live] verify_workers``, its keys (as ``p2pgrid keys new``
    makes them) and its key pairs."""
    w = f'"{workers}"' if isinstance(workers, str) else workers
    return write_signed(folder, name, n, key_ids(n, []), f"verify_workers = {w}\n{extra}\n")


def _write_key(key: Any, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_ca(name: str, out: Path) -> tuple[Any, Any]:
    """A self-signed CA (EC P-256, valid a day either side of now); writes ``out``.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_server_cert(
    ca: tuple[Any, Any],
    cert_out: Path,
    key_out: Path,
    names: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> None:
    """A server certificate signed by ``ca`` for ``names`` (IP addresses and DNS names,
    all in the SAN)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def san(name: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            return x509.DNSName(name)

    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_out)


def write_passwd(path: Path, username: str, password: str) -> None:
    """A Mosquitto password file: ``mosquitto_passwd -b -c`` when installed, else the
    same ``$7$`` hash written by :func:`live.acl.mosquitto_hash`."""
    tool = shutil.which("mosquitto_passwd")
    if tool is not None:
        subprocess.run(
            [tool, "-b", "-c", str(path), username, password],
            check=True,
            capture_output=True,
            timeout=10,
        )
    else:
        path.write_text(f"{username}:{mosquitto_hash(password)}\n", encoding="utf-8")
    path.chmod(0o600)


@dataclass
class TlsBroker:
    """A Mosquitto with only a TLS listener and password authentication."""

    broker: Mosquitto
    cafile: Path  # the CA that signed the server's certificate
    other_cafile: Path  # an unrelated CA
    username: str
    password: str

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def url(self) -> str:
        return f"mqtts://{self.username}:{self.password}@127.0.0.1:{self.port}"

    @property
    def config(self) -> BrokerConfig:
        """Trusting the right CA, with the right credentials."""
        return BrokerConfig(
            "127.0.0.1",
            self.port,
            username=self.username,
            password=self.password,
            tls=True,
            cafile=str(self.cafile),
        )

    def config_with(self, **changes: Any) -> BrokerConfig:
        return replace(self.config, **changes)


def start_tls_broker(
    tmp: Path, server_names: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> TlsBroker:
    """A Mosquitto whose one listener speaks TLS (a server certificate for
    ``server_names`` from a throwaway CA) and wants a username and password."""
    pki = tmp / "pki"
    pki.mkdir(parents=True)
    ca = make_ca("p2pgrid test CA", pki / "ca.pem")
    make_ca("unrelated test CA", pki / "other-ca.pem")
    make_server_cert(ca, pki / "server.pem", pki / "server.key", server_names)
    username, password = "grid", "s3cret-pass"
    write_passwd(pki / "passwd", username, password)
    broker = start_mosquitto(
        tmp / "mosquitto",
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\n"
        f"keyfile {pki / 'server.key'}\n"
        f"allow_anonymous false\npassword_file {pki / 'passwd'}\n",
    )
    return TlsBroker(broker, pki / "ca.pem", pki / "other-ca.pem", username, password)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """A Mosquitto with a TLS listener for 127.0.0.1 and password authentication (see
    :func:`start_tls_broker`)."""
    broker = start_tls_broker(tmp_path / "tls")
    yield broker
    broker.broker.stop()


@pytest.fixture
def start_tls_broker_for(tmp_path: Path):
    """``start(server_names)``: a TLS broker like ``tls_broker`` whose certificate is
    issued for ``server_names`` instead (stopped after the test)."""
    started: list[TlsBroker] = []

    def start(server_names: tuple[str, ...]) -> TlsBroker:
        broker = start_tls_broker(tmp_path / f"tls-{len(started)}", server_names)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.broker.stop()


# --- the market's ingest without a broker ----------------------------------------------


class Harness:
    """The market's ingest without a broker: messages in, the reports it would publish
    on ``errors`` recorded."""

    def __init__(self, scenario: Scenario, state: Path) -> None:
        self.market = MarketService(scenario, BrokerConfig(port=1), state, speed=0)
        self.ingest = self.market.ingest
        self.errors: list[dict[str, Any]] = []
        self.ingest.report = lambda topic, reason, **extra: self.errors.append(  # type: ignore[method-assign]
            {"topic": topic, "reason": reason, **extra}
        )
        self.root = self.market.topics.root

    def agent(self, agent: str, what: str, payload: dict[str, Any] | bytes) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.ingest.on_agent(f"{self.root}/agents/{agent}/{what}", body)
        self.ingest.settle()  # the verifier pool's check has been applied

    def meter(self, fmt: str, meter_id: str, suffix: str, payload: dict[str, Any]) -> None:
        self.raw(fmt, meter_id, suffix, json.dumps(payload).encode())

    def raw(self, fmt: str, meter_id: str, suffix: str, body: bytes) -> None:
        self.ingest.on_meter(f"{self.root}/meters/{fmt}/{meter_id}/{suffix}", body)
        self.ingest.settle()  # the verifier pool's check has been applied

    def close(self) -> None:
        self.ingest.close()
        self.market.ledger.close()


@pytest.fixture
def ingest_harness() -> type[Harness]:
    """``Harness(scenario, state_dir)``: the market's ingest without a broker (call
    ``close()`` at the end)."""
    return Harness
