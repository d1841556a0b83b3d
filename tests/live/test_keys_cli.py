"""``p2pgrid keys new | show`` and ``--keys`` as a user runs them."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scenarios.audit.keys import KeyPair, Registry
from scenarios.config.loader import load_scenario

CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")

SCENARIO = """
name = "keys-cli"
[community]
households = 3
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0003"
"""


def p2pgrid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_keys_new_writes_every_key_and_the_registry(tmp_path: Path) -> None:
    file = tmp_path / "keys-cli.toml"
    file.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "keys"
    proc = p2pgrid("keys", "new", str(file), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "5 key pairs (3 households, 1 meters, market)" in proc.stdout
    ids = ["h0001", "h0002", "h0003", "gen-1", "market"]
    registry = Registry.load(out / "keys.json")
    assert sorted(registry.ids()) == sorted(ids)
    for key_id in ids:
        path = out / f"{key_id}.key"
        assert path.stat().st_mode & 0o777 == 0o600
        pair = KeyPair.load(path)
        assert pair.id == key_id and registry.public_b64(key_id) == pair.public_b64
        registry.verify(pair.sign({"t": 0}), key_id)
    # show: one line per id with the SHA-256 fingerprint of its public key
    shown = p2pgrid("keys", "show", str(out))
    assert shown.returncode == 0, shown.stderr
    lines = dict(line.split(None, 1) for line in shown.stdout.splitlines()[:-1])
    raw = base64.b64decode(registry.public_b64("h0002"))
    assert lines["h0002"].split()[0] == hashlib.sha256(raw).hexdigest()[:16]
    assert "private key" in lines["market"]
    # DIR holding keys is not overwritten by mistake
    again = p2pgrid("keys", "new", "--households", "2", "--out", str(out))
    assert again.returncode == 2 and "already holds keys" in again.stderr
    assert Registry.load(out / "keys.json").public_b64("h0001") == registry.public_b64("h0001")
    # a scenario beside the keys names them relative to its own folder
    signed = tmp_path / "signed.toml"
    signed.write_text(
        SCENARIO.replace("[[live.meters]]", '[live]\nkeys = "keys/keys.json"\n[[live.meters]]')
    )
    assert load_scenario(signed).live.keys == str((out / "keys.json").resolve())


def test_keys_new_refuses_a_meter_named_as_a_household(tmp_path: Path) -> None:
    file = tmp_path / "clash.toml"
    file.write_text(SCENARIO.replace('id = "gen-1"', 'id = "h0001"'), encoding="utf-8")
    proc = p2pgrid("keys", "new", str(file), "--out", str(tmp_path / "k"))
    assert proc.returncode == 2 and "meter id 'h0001' is also a household's" in proc.stderr
    neither = p2pgrid("keys", "new", "--out", str(tmp_path / "k"))
    assert neither.returncode == 2 and "give a scenario FILE or --households N" in neither.stderr


def test_agents_with_keys_missing_fail_naming_them(tmp_path: Path) -> None:
    file = tmp_path / "keys-cli.toml"
    file.write_text(SCENARIO, encoding="utf-8")
    keys = tmp_path / "keys"
    assert p2pgrid("keys", "new", "--households", "1", "--out", str(keys)).returncode == 0
    proc = p2pgrid("agents", str(file), "--broker", "mqtt://127.0.0.1:1", "--keys", str(keys))
    assert proc.returncode == 2
    assert "--keys" in proc.stderr and "no key file for h0002" in proc.stderr
    json.loads((keys / "keys.json").read_text())  # untouched


def test_live_signs_with_keys_and_requires_signatures(
    mosquitto: Any, live_cli: Any, tmp_path: Path
) -> None:
    """``p2pgrid live FILE --keys DIR`` with ``require_signatures``: the simulated
    households and emulated meter sign, nothing is rejected, every interval settles."""
    keys = tmp_path / "private"
    file = tmp_path / "keys-cli.toml"
    file.write_text(SCENARIO, encoding="utf-8")
    assert p2pgrid("keys", "new", str(file), "--out", str(keys)).returncode == 0
    # the scenario names only the public registry, elsewhere: the keys come from --keys
    public = tmp_path / "public"
    public.mkdir()
    (public / "keys.json").write_bytes((keys / "keys.json").read_bytes())
    signed = SCENARIO.replace(
        "[[live.meters]]",
        '[live]\nkeys = "public/keys.json"\nrequire_signatures = true\n'
        "close_when_complete = true\ncomplete_timeout_s = 3\n[[live.meters]]",
    ).replace("[community]", '[grid]\ncheck = "off"\n[community]')
    file.write_text(signed, encoding="utf-8")
    proc = live_cli(
        file,
        mosquitto.port,
        tmp_path / "state",
        3,
        "--emulate-meters",
        "--keys",
        str(keys),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "settled 3 intervals · 6 readings" in out and "· 0 rejected" in out, out
    # without --keys the simulated households have no keys beside public/keys.json:
    # their 2 readings and 2 orders messages are rejected, and nobody took part (exit 1)
    proc = live_cli(file, mosquitto.port, tmp_path / "state2", 1, stdout=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "settled 1 intervals · 0 readings" in out and "· 4 rejected" in out, out
