"""``p2pgrid ledger verify``: an untouched ledger verifies; one byte changed anywhere
fails naming that interval; a forger who re-hashes and re-signs everything is caught by
the replay; signed messages, erasure, corrections and restarts."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios.audit.keys import KeyPair, Registry, SignatureError
from scenarios.audit.ledger import (
    CHAIN_FILE,
    CHECKPOINTS_FILE,
    PRIVATE_DIR,
    AuditWriter,
    LedgerFormatError,
    read_chain,
    read_checkpoints,
)
from scenarios.audit.messages import check_raw
from scenarios.audit.verify import verify
from scenarios.config.schema import Scenario
from scenarios.results.schema import QUANTUM

from .conftest import (
    CORRECTED_AT,
    ESTIMATED_T,
    LATE_IMPORT_KWH,
    RESTART_AT,
    SIGNED_EVERY,
    copy_ledger,
    entry_line,
    flip_byte,
    lines,
    reforge,
)

runner = CliRunner()
T = 130
"""The interval tampered with (on the second day: the second checkpoint)."""


def ledger_verify(path: Path) -> tuple[int, list[str]]:
    res = runner.invoke(app, ["ledger", "verify", str(path)], env={"COLUMNS": "400"})
    return res.exit_code, res.output.splitlines()


def test_untouched_batch_ledger_verifies(small_run) -> None:
    code, out = ledger_verify(small_run["out"])
    assert code == 0, out
    assert out[0].startswith(
        "ledger: ok: 193 entries (192 intervals, 0 corrections), 2 checkpoints"
    )
    cps = read_checkpoints(small_run["out"] / "ledger")
    # one checkpoint per day: the genesis and day 1, then day 2
    assert [(c["first_entry"], c["last_entry"], c["first_t"], c["last_t"]) for c in cps] == [
        (0, 96, 0, 95),
        (97, 192, 96, 191),
    ]
    assert cps[1]["prev"] is not None and cps[0]["prev"] is None


def test_ledger_holds_the_runs_settlements(small_run) -> None:
    """The ledger's settlements are the run's agents.parquet, to the cent."""
    agents = small_run["agents"].set_index(["t", "agent_id"])
    n = 0
    for e in read_chain(small_run["out"] / "ledger"):
        for leaf in e["settlements"]:
            row = agents.loc[(leaf["t"], leaf["agent"])]
            s = leaf["settlement"]
            assert s["cost"] == pytest.approx(row.cost, abs=0.005)
            # agents.parquet's energies: in steps of QUANTUM, the ledger's unrounded
            assert s["grid_import_kwh"] == pytest.approx(row.grid_import_kwh, abs=QUANTUM)
            assert s["bought_kwh"] == pytest.approx(row.bought_p2p_kwh, abs=QUANTUM)
            n += 1
    assert n == 192 * 12


def _input_value(d: Path) -> int:
    i = entry_line(d, T)
    flip_byte(d / CHAIN_FILE, i, b'"inputs":[', b'"demand_kwh":')
    return i


def _clearing_price(d: Path) -> int:
    i = entry_line(d, T)
    flip_byte(d / CHAIN_FILE, i, b'"clearing":{', b'"price_per_kwh":')
    return i


def _settlement_cost(d: Path) -> int:
    i = entry_line(d, T)
    flip_byte(d / CHAIN_FILE, i, b'"settlements":[', b'"cost":')
    return i


def _prev_link(d: Path) -> int:
    i = entry_line(d, T)
    flip_byte(d / CHAIN_FILE, i, b'"prev":"')
    return i


def _checkpoint_root(d: Path) -> int:
    flip_byte(d / CHECKPOINTS_FILE, 1, b'"root":"')
    return entry_line(d, 96)  # the checkpoint's first interval


@pytest.mark.parametrize(
    "tamper", [_input_value, _clearing_price, _settlement_cost, _prev_link, _checkpoint_root]
)
def test_one_byte_changed_fails_naming_the_interval(small_run, tmp_path, tamper) -> None:
    d = copy_ledger(small_run["out"] / "ledger", tmp_path / "ledger")
    before = (d / CHAIN_FILE).read_bytes() + (d / CHECKPOINTS_FILE).read_bytes()
    seq = tamper(d)
    after = (d / CHAIN_FILE).read_bytes() + (d / CHECKPOINTS_FILE).read_bytes()
    assert (
        len(before) == len(after) and sum(a != b for a, b in zip(before, after, strict=True)) == 1
    )
    t = orjson.loads(lines(d / CHAIN_FILE)[seq])["header"]["t"]
    code, out = ledger_verify(d)
    assert code == 1
    assert out[0].startswith(f"ledger: interval {t} (entry {seq}): "), out[:3]


def test_a_forger_with_the_market_key_is_caught_by_the_replay(small_run, tmp_path) -> None:
    """Every hash, root and signature recomputed after a household's demand is raised:
    only re-running the market tells."""
    d = copy_ledger(small_run["out"] / "ledger", tmp_path / "ledger")

    def more_demand(e: dict) -> None:
        if e["header"].get("t") == T and e["header"]["kind"] == "interval":
            e["inputs"][3]["reading"]["demand_kwh"] += 1.0

    reforge(d, more_demand)
    code, out = ledger_verify(d)
    assert code == 1
    assert out[0].startswith(f"ledger: interval {T} (entry {T + 1}): ")
    assert "replayed" in out[0]


def test_a_changed_rng_state_changes_the_replayed_clearing(signed_ledger, tmp_path) -> None:
    """The continuous double auction's arrival order comes from the recorded state: with
    another state, the replay of some interval with trades clears differently."""
    d = copy_ledger(signed_ledger["dir"], tmp_path / "ledger")
    changed = []

    def other_state(e: dict) -> None:
        h = e["header"]
        if h["kind"] == "interval" and e["clearing"]["volume_kwh"] > 0:
            h["rng"]["state"]["state"] = str((int(h["rng"]["state"]["state"]) * 7 + 12345) % 2**128)
            changed.append(h["t"])

    reforge(d, other_state, signed_ledger["market"])
    report = verify(d)
    assert changed and not report.ok
    assert report.problems[0].t in changed and "replayed" in report.problems[0].what


def test_signed_ledger_with_a_correction_and_a_restart_verifies(signed_ledger) -> None:
    d = signed_ledger["dir"]
    report = verify(d)
    assert report.ok, [p.line() for p in report.problems[:5]]
    n = len(signed_ledger["ids"])
    assert report.intervals == 96 and report.corrections == 1
    assert report.signatures == 96 * n + 1 and not report.erased
    entries = list(read_chain(d))
    assert [e["header"]["seq"] for e in entries] == list(range(len(entries)))
    sessions = [e["header"].get("session") for e in entries if e["header"]["kind"] == "interval"]
    assert sessions == [0] * RESTART_AT + [1] * (96 - RESTART_AT)
    assert (d / CHAIN_FILE).read_bytes().endswith(b"}\n")  # the torn line was dropped
    # every SIGNED_EVERY intervals, and the rest at close
    cps = read_checkpoints(d)
    assert [c["last_t"] for c in cps] == [31, 63, 95]
    assert all(
        sum(
            1
            for e in entries[c["first_entry"] : c["last_entry"] + 1]
            if e["header"]["kind"] == "interval"
        )
        == SIGNED_EVERY
        for c in cps
    )
    fix = next(e for e in entries if e["header"]["kind"] == "correction")
    assert fix["header"]["t"] == ESTIMATED_T and fix["header"]["seq"] == CORRECTED_AT + 2
    v1, v2 = signed_ledger["held"], fix["settlements"][0]["settlement"]
    assert v1["estimated"] and not v2["estimated"] and v2["version"] == 2
    # the trades stand; the late import is imbalance, bought at the retail price
    assert v2["demand_kwh"] == pytest.approx(v1["demand_kwh"] + LATE_IMPORT_KWH, abs=1e-12)
    assert v2["paid"] == v1["paid"] and v2["received"] == v1["received"]
    assert v2["imbalance_kwh"] - v1["imbalance_kwh"] == pytest.approx(-LATE_IMPORT_KWH, abs=1e-9)


def test_a_changed_private_message_fails_an_erased_one_does_not(signed_ledger, tmp_path) -> None:
    d = copy_ledger(signed_ledger["dir"], tmp_path / "ledger")
    t = 57
    first, second = signed_ledger["raw_of"][t][:2]
    path = d / PRIVATE_DIR / f"{first}.json"
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"demand_kwh":') + len(b'"demand_kwh":')
    raw[at] = ord("9") if raw[at] != ord("9") else ord("8")
    path.write_bytes(bytes(raw))
    (d / PRIVATE_DIR / f"{second}.json").unlink()  # erased (GDPR): not a failure
    code, out = ledger_verify(d)
    assert code == 1
    assert out[0].startswith(f"ledger: interval {t} (entry {t + 1 + (t >= CORRECTED_AT)}): ")
    assert "private/" in out[0]
    path.write_bytes(b"")  # emptied is not erased: still not the message recorded
    code, out = ledger_verify(d)
    assert code == 1 and "private/" in out[0]
    path.unlink()  # the changed one erased too: the ledger verifies again
    report = verify(d)
    assert report.ok and sorted(report.erased) == sorted([first, second])


def test_a_message_signed_by_another_household_is_not_accepted(signed_ledger) -> None:
    """A raw message counts for a household only under its own key (or its meters')."""
    d = signed_ledger["dir"]
    ids, keys = signed_ledger["ids"], signed_ledger["keys"]
    registry = Registry.load(d / "keys.json")
    reading = {"v": 1, "t": 20, "generation_kwh": 0.0, "demand_kwh": 9.0}
    assert check_raw(orjson.dumps(keys[ids[0]].sign(reading)), {ids[0]}, registry) == ids[0]
    with pytest.raises(SignatureError, match="signed by 'h0002'"):
        check_raw(orjson.dumps(keys[ids[1]].sign(reading)), {ids[0]}, registry)
    forged = {**keys[ids[0]].sign(reading), "demand_kwh": 0.5}
    with pytest.raises(SignatureError, match="does not verify"):
        check_raw(orjson.dumps(forged), {ids[0]}, registry)


def test_verify_names_a_missing_ledger(tmp_path) -> None:
    res = runner.invoke(app, ["ledger", "verify", str(tmp_path)])
    assert res.exit_code == 2 and "no chain.jsonl" in res.output


@pytest.mark.parametrize("name", ["scenario.json", "keys.json"])
def test_a_changed_scenario_or_key_file_fails_at_the_genesis(small_run, tmp_path, name) -> None:
    d = copy_ledger(small_run["out"] / "ledger", tmp_path / "ledger")
    data = json.loads((d / name).read_text())
    if name == "keys.json":
        data["keys"]["h0001"] = KeyPair.new("h0001").public_b64
    else:
        data["market"]["retail_price_per_kwh"] = 0.5
    (d / name).write_text(json.dumps(data))
    code, out = ledger_verify(d)
    assert code == 1 and out[0] == f"ledger: entry 0: genesis: {name} is not the " + (
        "key registry the run recorded" if name == "keys.json" else "scenario the run recorded"
    )


def test_no_replay_checks_the_hashes_only(small_run, tmp_path) -> None:
    d = copy_ledger(small_run["out"] / "ledger", tmp_path / "ledger")
    reforge(d, lambda e: e["inputs"][:1] and e["inputs"][0]["reading"].update(demand_kwh=9.0))
    assert verify(d, replay=False).ok  # consistent hashes and signatures...
    res = runner.invoke(app, ["ledger", "verify", str(d), "--no-replay"])
    assert res.exit_code == 0 and "not replayed" in res.output
    assert not verify(d).ok  # ...but not the market's results


def test_a_ledger_is_never_overwritten_and_resumes_only_with_its_key(signed_ledger) -> None:
    scenario = Scenario.model_validate_json((signed_ledger["dir"] / "scenario.json").read_text())
    with pytest.raises(LedgerFormatError, match="already here"):
        AuditWriter(signed_ledger["dir"], scenario, Registry(), signed_ledger["market"], "x")
    with pytest.raises(LedgerFormatError, match="not the genesis's"):
        AuditWriter.open(signed_ledger["dir"], KeyPair.new("market"))
