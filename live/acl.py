"""Mosquitto access control for a community (``p2pgrid acl``): an ACL file and a
password file (mosquitto_passwd's PBKDF2-SHA512 ``$7$`` format) so that each household
or meter writes only its own topics.

Accounts: ``market`` (everything under the community's root), ``fleet`` (the simulated
households' gateway: their readings and orders, their settlements), one account per
household (username = agent id) and one per meter (username = meter id). Pattern rules
with ``%u`` tie each account to its own topics; every account may read the clock and the
results and write its own retained status (``status/%c``, the client id).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from live.market import topics_for
from scenarios.schema import Scenario
from scenarios.schema_live import household_ids

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
    root = topics_for(scenario).root
    meters = scenario.live.meters
    lines = [
        f"# p2pgrid ACL for {root}/ (written by p2pgrid acl)",
        "",
        "# the market",
        "user market",
        f"topic readwrite {root}/#",
        "",
        "# the simulated households' gateway (p2pgrid agents)",
        "user fleet",
        f"topic write {root}/agents/+/reading",
        f"topic write {root}/agents/+/orders",
        f"topic read {root}/agents/+/settlement",
        "",
        "# meter emulator (p2pgrid meters emulate)",
        "user meters",
        *(f"topic write {root}/meters/{m.format}/{m.id}/#" for m in meters),
        "",
        "# every account: its own topics only",
        f"pattern write {root}/agents/%u/reading",
        f"pattern write {root}/agents/%u/orders",
        f"pattern read {root}/agents/%u/settlement",
        f"pattern write {root}/meters/+/%u/#",
        f"pattern readwrite {root}/status/%c",
        f"pattern read {root}/clock",
        f"pattern read {root}/market/result",
        f"pattern read {root}/errors",
        "",
    ]
    return "\n".join(lines)


def write_acl(scenario: Scenario, out_dir: Path) -> dict[str, Path]:
    """Write ``acl``, ``passwd`` and ``credentials.json`` (mode 0600) to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    users = [
        "market",
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
    }
    paths["acl"].write_text(acl_text(scenario), encoding="utf-8")
    paths["passwd"].write_text(
        "".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in creds.items()), encoding="utf-8"
    )
    paths["credentials"].write_text(json.dumps(creds, indent=1), encoding="utf-8")
    for p in (paths["passwd"], paths["credentials"]):
        p.chmod(0o600)
    return paths
