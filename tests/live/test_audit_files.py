"""The live audit ledger's files (live/audit.py): the market's key (generated once and
reused, or the scenario's key file, always under the id "market"), and the chain cut
back to what the state ledger committed (a torn last line included)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from live.audit import KEY_FILE, LiveAudit, cut_chain, market_key
from live.provenance import InputMessages
from scenarios.audit.keys import MARKET_KEY, KeyPair
from scenarios.audit.ledger import read_checkpoints
from scenarios.config.schema import Scenario


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_market_key_is_generated_once_or_read_from_the_scenarios_file(
    e2e_scenario: Scenario, tmp_path: Path
) -> None:
    first = market_key(e2e_scenario, tmp_path)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    again = market_key(e2e_scenario, tmp_path)
    assert first.id == MARKET_KEY and again.public_b64 == first.public_b64
    own = KeyPair.new("operator-2026")
    own.save(tmp_path / "own.key")
    scenario = e2e_scenario.model_copy(
        update={
            "live": e2e_scenario.live.model_copy(update={"market_key": str(tmp_path / "own.key")})
        }
    )
    chosen = market_key(scenario, tmp_path / "elsewhere")
    assert chosen.id == MARKET_KEY and chosen.public_b64 == own.public_b64
    assert not (tmp_path / "elsewhere").exists()


def test_the_chain_is_cut_back_to_the_committed_entry(tmp_path: Path) -> None:
    lines = [orjson.dumps({"hash": f"{i}", "header": {"seq": i}}) + b"\n" for i in range(5)]
    chain = tmp_path / "chain.jsonl"
    chain.write_bytes(b"".join(lines) + b'{"hash": "5", "hea')  # killed mid-line
    assert cut_chain(tmp_path, 2) == 2
    assert chain.read_bytes() == b"".join(lines[:3])
    assert cut_chain(tmp_path, 2) == 0 and chain.read_bytes() == b"".join(lines[:3])
    assert cut_chain(tmp_path, 0) == 2 and chain.read_bytes() == lines[0]


def test_signed_messages_are_stored_by_their_sha256_and_the_writer_keeps_fsyncing(
    e2e_scenario: Scenario, tmp_path: Path
) -> None:
    audit = LiveAudit(e2e_scenario, tmp_path, "c", "run-1", None)  # a new state ledger
    audit.open()
    raw = [b'{"v":1,"t":0,"sig":{}}', b'{"v": 1, "t": 0, "orders": [], "sig": {}}']
    audit.store(InputMessages({"h0001": [sha(r) for r in raw]}, {sha(r): r for r in raw}, {}))
    private = tmp_path / "ledger" / "private"
    assert {p.name: p.read_bytes() for p in private.iterdir()} == {f"{sha(r)}.json": r for r in raw}
    assert audit.writer.fsync
    audit.close({"audit_seq": 0})  # the state ledger committed the genesis
    assert [c["seq"] for c in read_checkpoints(tmp_path / "ledger")] == [0]
