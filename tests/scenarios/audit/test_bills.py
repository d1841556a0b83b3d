"""A bill verifies from its proofs and its checkpoint alone; another household's bill, a
changed bill and a bill re-signed with another key do not; a dispute prints the
household's numbers."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios.audit.bills import bills_of, verify_bill
from scenarios.audit.dispute import dispute
from scenarios.audit.keys import KeyPair, fingerprint
from scenarios.audit.ledger import read_checkpoints

from .conftest import CORRECTED_AT, ESTIMATED_T, LATE_IMPORT_KWH, copy_ledger, reforge

runner = CliRunner()
AGENT = "h0007"


def cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args), env={"COLUMNS": "400"})
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def bill_file(small_run, tmp_path_factory) -> Path:
    """h0007's bill of the second day, alone in a folder of its own."""
    out = tmp_path_factory.mktemp("bill") / "bill.json"
    code, text = cli(
        "ledger", "bill", str(small_run["out"]), "--household", AGENT, "--checkpoint", "1",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    return out


def test_a_bill_verifies_from_its_proofs_alone(small_run, bill_file, tmp_path) -> None:
    alone = tmp_path / "alone.json"
    shutil.copy(bill_file, alone)
    code, text = cli("ledger", "verify", "--bill", str(alone))
    assert code == 0, text
    bill = json.loads(alone.read_text())
    # the second day: intervals 96-191, and its total is what agents.parquet says
    a = small_run["agents"]
    mine = a[(a.agent_id == AGENT) & (a.t >= 96)]
    assert [it["settlement"]["t"] for it in bill["items"]] == list(range(96, 192))
    assert bill["total_cost"] == pytest.approx(mine.cost.sum(), abs=0.005)
    assert f"total_cost {bill['total_cost']:.6f}" in text
    key = bill["checkpoint"]["market_key"]
    assert fingerprint(key) in text and "trust that key" in text
    # against the trusted checkpoint and the trusted key
    cp = tmp_path / "cp.json"
    cp.write_text(json.dumps(read_checkpoints(small_run["out"] / "ledger")[1]))
    assert cli("ledger", "verify", "--bill", str(alone), "--checkpoint", str(cp))[0] == 0
    assert cli("ledger", "verify", "--bill", str(alone), "--market-key", key)[0] == 0
    cp.write_text(json.dumps(read_checkpoints(small_run["out"] / "ledger")[0]))
    code, text = cli("ledger", "verify", "--bill", str(alone), "--checkpoint", str(cp))
    assert code == 1 and "not the trusted checkpoint" in text


def test_another_households_bill_does_not_verify(bill_file) -> None:
    bill = json.loads(bill_file.read_text())
    renamed = {**bill, "agent": "h0003"}
    check = verify_bill(renamed)
    assert not check.ok and "names 'h0007', not 'h0003'" in check.problems[0]
    # renamed throughout: the leaves no longer fold to the roots
    everywhere = copy.deepcopy(renamed)
    for it in everywhere["items"]:
        it["settlement"]["agent"] = "h0003"
        if it["inputs"] is not None:
            it["inputs"]["agent"] = "h0003"
    check = verify_bill(everywhere)
    assert not check.ok and "does not fold to settlements_root" in check.problems[0]


def test_a_changed_bill_does_not_verify(bill_file) -> None:
    bill = json.loads(bill_file.read_text())
    forged = copy.deepcopy(bill)
    forged["items"][5]["settlement"]["settlement"]["cost"] -= 0.10
    forged["total_cost"] -= 0.10
    check = verify_bill(forged)
    assert not check.ok
    assert check.problems == [
        "interval 101 (entry 102): the settlement does not fold to settlements_root"
    ]
    # a total that is not the items' sum
    check = verify_bill({**bill, "total_cost": bill["total_cost"] - 0.01})
    assert not check.ok and "not the sum of the last versions" in check.problems[0]


def test_a_bill_resigned_with_another_key_fails_against_the_market_key(
    small_run, bill_file, tmp_path
) -> None:
    """A forger who rewrote the whole ledger and signed it with a key of their own makes
    a bill that holds together, but not under the market's key."""
    d = copy_ledger(small_run["out"] / "ledger", tmp_path / "ledger")

    def cheaper(e: dict) -> None:
        for leaf in e["settlements"]:
            if leaf["agent"] == AGENT:
                leaf["settlement"]["cost"] -= 0.05

    reforge(d, cheaper, KeyPair.new("market"))
    forged = bills_of(d, read_checkpoints(d)[1])[AGENT]
    genuine = json.loads(bill_file.read_text())
    assert forged["total_cost"] == pytest.approx(genuine["total_cost"] - 96 * 0.05)
    assert verify_bill(forged).ok  # consistent in itself...
    check = verify_bill(forged, market_key=genuine["checkpoint"]["market_key"])
    assert check.problems == ["the checkpoint's market key is not the trusted market key"]
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    key = genuine["checkpoint"]["market_key"]
    code, text = cli("ledger", "verify", "--bill", str(path), "--market-key", key)
    assert code == 1 and "not the trusted market key" in text
    # ... and a key swapped into a genuine checkpoint breaks its signature
    swapped = copy.deepcopy(genuine)
    swapped["checkpoint"]["market_key"] = KeyPair.new("market").public_b64
    assert "signature does not verify" in verify_bill(swapped).problems[0]


def test_dispute_prints_the_households_numbers(small_run) -> None:
    t = 130
    a = small_run["agents"]
    row = a[(a.agent_id == AGENT) & (a.t == t)].iloc[0]
    code, text = cli("ledger", "dispute", str(small_run["out"]), "--household", AGENT,
                     "--interval", str(t))  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith(f"dispute: {AGENT}, interval {t} (")
    assert f"generation_kwh={row.generation_kwh:.6f}" in lines[1]
    assert f"demand_kwh={row.demand_kwh:.6f}" in lines[1]
    version = next(x for x in lines if x.startswith("version 1 "))
    assert f"cost={row.cost:.6f}" in version
    assert f"grid_import_kwh={row.grid_import_kwh:.6f}" in version
    assert f"bought_kwh={row.bought_p2p_kwh:.6f}" in version
    trades = small_run["trades"]
    mine = trades[(trades.t == t) & ((trades.buyer_id == AGENT) | (trades.seller_id == AGENT))]
    assert sum(x.startswith("trade: ") for x in lines) == len(mine)
    assert "checks: ledger verifies" in lines
    assert any(x.startswith("bill under checkpoint 1: verifies") for x in lines)


def test_dispute_shows_versions_signed_inputs_and_the_meter(signed_ledger) -> None:
    agent = signed_ledger["ids"][0]
    found = dispute(signed_ledger["dir"], agent, ESTIMATED_T)
    assert [v["version"] for v in found.versions] == [1, 2]
    assert [v["entry"] for v in found.versions] == [ESTIMATED_T + 1, CORRECTED_AT + 2]
    v1, v2 = (v["settlement"] for v in found.versions)
    assert v1["estimated"] and not v2["estimated"]
    assert found.versions[1]["reason"] == "late meter data"
    meter = found.versions[1]["metered"]
    assert meter["demand_kwh"] == pytest.approx(v1["demand_kwh"] + LATE_IMPORT_KWH)
    assert [s["status"] for s in found.signed] == ["signature ok"]
    assert found.ledger_ok and found.bill["ok"] and not found.problems
    text = "\n".join(found.lines())
    assert "version 2 (entry 14, correction: late meter data): estimated=no" in text
    assert f"meter: import {meter['demand_kwh']:.6f} kWh" in text
    assert f"cost={v2['cost']:.6f}" in text
    # the bill counts the last version
    bill = bills_of(signed_ledger["dir"], read_checkpoints(signed_ledger["dir"])[0])[agent]
    v = {
        it["settlement"]["version"]: it
        for it in bill["items"]
        if it["settlement"]["t"] == ESTIMATED_T
    }
    assert sorted(v) == [1, 2]
    others = sum(it["settlement"]["settlement"]["cost"] for it in bill["items"]
                 if it["settlement"]["t"] != ESTIMATED_T)  # fmt: skip
    assert bill["total_cost"] == pytest.approx(others + v2["cost"], abs=1e-9)
    assert verify_bill(bill).ok


def test_run_with_ledger_from_the_command_line(tmp_path) -> None:
    demo = Path(__file__).resolve().parents[3] / "scenarios" / "library" / "demo.toml"
    out = tmp_path / "demo"
    code, text = cli("run", str(demo), "--out", str(out), "--days", "1", "--quiet",
                     "--set", "community.households=8", "--ledger")  # fmt: skip
    assert code == 0, text
    assert (out / "ledger" / "market.key").exists() and (out / "ledger" / "chain.jsonl").exists()
    assert "operator's private key" in text
    code, text = cli("ledger", "verify", str(out / "ledger"))
    assert code == 0 and text.startswith("ledger: ok: 97 entries (96 intervals")


def test_the_writers_bills_are_the_ledgers(signed_ledger) -> None:
    """The bills the live market publishes after a checkpoint (from the hashes it kept)
    are the ones anyone cuts from the ledger."""
    d = signed_ledger["dir"]
    cps = read_checkpoints(d)
    # the first checkpoint came before the restart; the others from the resumed writer
    assert sorted(signed_ledger["bills"]) == [0, 1, 2]
    for k, bills in signed_ledger["bills"].items():
        assert bills == bills_of(d, cps[k])
        assert all(verify_bill(b).ok for b in bills.values())
