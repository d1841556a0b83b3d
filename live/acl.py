"""Mosquitto access control for a community (``p2pgrid acl``): an ACL file and a
password file (mosquitto_passwd's PBKDF2-SHA512 ``$7$`` format) so that each household
or meter writes only its own topics.

Accounts: ``market`` (everything under the community's root; the decentralised p2p
market's clock and recorder run as it), ``operator`` (reads everything, ``market/book``
included: the dashboard's account), ``fleet`` (the simulated households' gateway: their
readings and orders, their settlements, and every household's peer topics
``peers/+/+`` when it runs them as decentralised peers), one account
per household (username = agent id) and one per meter (username = meter id). Pattern
rules with ``%u`` tie each account to its own topics; every account may read the clock,
the anonymous ``market/result``, ``errors`` and the audit ledger's signed
``ledger/checkpoint``, and write its own retained status (``status/%u``); a household
reads only its own ``settlement`` and ``bill``. Only ``market`` and ``operator`` read
``market/book`` (every order and trade with household ids).

``mosquitto.conf`` enforces it: no anonymous clients, the password and ACL files, and
``use_username_as_clientid true``, so that the broker names every client after its
account: a household that connects asking for the market's client id is still only
``h0001`` to the broker, and cannot take over (disconnect) the market's session. One
connection per account: a second connection of the same account replaces the first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from live.p2p_topics import peers_topic
from live.protocol import topics_for
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids

PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A mosquitto_passwd ``$7$`` hash (PBKDF2-HMAC-SHA512, 101 iterations)."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}$"
        f"{base64.b64encode(digest).decode()}"
    )


def acl_text(scenario: Scenario) -> str:
    topics = topics_for(scenario)
    root = topics.root
    meters = scenario.live.meters
    lines = [
        f"# p2pgrid ACL for {root}/ (written by p2pgrid acl)",
        "",
        "# the market",
        "user market",
        f"topic readwrite {root}/#",
        "",
        "# the operator (dashboard): reads everything, the full order book included",
        "user operator",
        f"topic read {root}/#",
        "",
        "# the simulated households' gateway (p2pgrid agents)",
        "user fleet",
        f"topic write {topics.reading('+')}",
        f"topic write {topics.orders('+')}",
        f"topic read {topics.settlement('+')}",
        f"topic read {topics.bill('+')}",
        "# … and their peers in the decentralised p2p market (p2pgrid live --decentralised)",
        f"topic readwrite {peers_topic(topics, '+', '+')}",
        "",
        "# meter emulator (p2pgrid meters emulate)",
        "user meters",
        *(f"topic write {topics.meter(m.format, m.id, '#')}" for m in meters),
        "",
        "# every account: its own topics only",
        f"pattern write {topics.reading('%u')}",
        f"pattern write {topics.orders('%u')}",
        f"pattern read {topics.settlement('%u')}",
        f"pattern read {topics.bill('%u')}",
        f"pattern write {topics.meter('+', '%u', '#')}",
        f"pattern readwrite {topics.status('%u')}",
        "# decentralised p2p: a household proposes as itself, reads what it is sent",
        f"pattern write {peers_topic(topics, '%u', '+')}",
        f"pattern read {peers_topic(topics, '+', '%u')}",
        f"pattern read {topics.clock}",
        f"pattern read {topics.result}",
        f"pattern read {topics.errors}",
        f"pattern read {topics.checkpoint}",
        "",
    ]
    return "\n".join(lines)


def mosquitto_conf(root: str, listen: tuple[str, int], acl: Path, passwd: Path) -> str:
    """A Mosquitto 2 configuration that enforces the ACL (see the module docstring)."""
    host, port = listen
    return "\n".join(
        [
            f"# Mosquitto configuration for {root}/ (written by p2pgrid acl)",
            "# run: mosquitto -c mosquitto.conf   (add TLS before opening it beyond a LAN)",
            "per_listener_settings false",
            f"listener {port}{f' {host}' if host else ''}",
            "allow_anonymous false",
            f"password_file {passwd.resolve()}",
            f"acl_file {acl.resolve()}",
            "# the broker names each client after its account: nobody takes another's id",
            "use_username_as_clientid true",
            "",
        ]
    )


def write_acl(
    scenario: Scenario, out_dir: Path, listen: tuple[str, int] = ("", 1883)
) -> dict[str, Path]:
    """Write ``acl``, ``passwd``, ``credentials.json`` (both mode 0600) and
    ``mosquitto.conf`` (listening on ``listen``: host, "" for every interface, and
    port) to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    users = [
        "market",
        "operator",
        "fleet",
        "meters",
        *(h for h in household_ids(scenario.community.households)),
        *(m.id for m in scenario.live.meters),
    ]
    creds = {u: secrets.token_urlsafe(18) for u in users}
    paths = {
        "acl": out_dir / "acl",
        "passwd": out_dir / "passwd",
        "credentials": out_dir / "credentials.json",
        "conf": out_dir / "mosquitto.conf",
    }
    paths["acl"].write_text(acl_text(scenario), encoding="utf-8")
    paths["passwd"].write_text(
        "".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in creds.items()), encoding="utf-8"
    )
    paths["credentials"].write_text(json.dumps(creds, indent=1), encoding="utf-8")
    paths["conf"].write_text(
        mosquitto_conf(topics_for(scenario).root, listen, paths["acl"], paths["passwd"]),
        encoding="utf-8",
    )
    for p in (paths["passwd"], paths["credentials"]):
        p.chmod(0o600)
    return paths
