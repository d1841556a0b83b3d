"""An OCMF meter's signed records in the live market's audit ledger, over a real
Mosquitto (live/provenance.py, scenarios/audit/messages.py, scenarios/audit/registers.py).

The meter signs its records itself (ECDSA P-256, agents/meters/ocmf.py). Every record its
tracker took as energy is in ``private/`` exactly as the meter sent it, named in its
household's input leaf, checked in the market's process or in the verifier pool;
``p2pgrid ledger verify`` checks each one again with the scenario's ``public_key`` and
compares the registers read from them with the metered energy of the input leaves. One
byte changed in a kept record fails verify naming its interval; a record signed by
another key is rejected at the door and never kept; ``ledger dispute`` lists the
household's records with their registers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.meters.base import Sample
from agents.meters.formats import read_meter
from agents.meters.ocmf import verify as verify_record
from live.emulator import MeterEmulator
from live.fleet import AgentFleet
from live.market import MarketService
from live.protocol import topics_for
from scenarios.audit.keys import Registry, SignatureError
from scenarios.audit.ledger import read_chain
from scenarios.audit.messages import Messages
from scenarios.config.loader import load_scenario

from .test_ocmf import OCMF_SCENARIO, T_0015, meter_key_dir, p256, record

INTERVALS = 4
CLI = (sys.executable, "-c", "from p2pgrid.cli import main; main()")
TZ = ZoneInfo("Europe/Berlin")


def ledger_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ledger", *args], capture_output=True, text=True, timeout=300, check=False
    )


def ocmf_run(
    tmp_path: Path, workers: int, mosquitto: Any, market_thread: Any, mqtt_client: Any
) -> tuple[Path, str, MarketService, list[bytes]]:
    """A live run of :data:`INTERVALS` intervals with the OCMF meter of h0003 emulated with
    its own key (``[live] verify_workers = workers``), and two records signed by another
    key published on its topic while the gate of interval 0 is open. The ledger, the
    meter's public key, the market and the forged records."""
    key, public = p256()
    keys = meter_key_dir(tmp_path, key)
    text = OCMF_SCENARIO.replace("{public}", public).replace(
        "complete_timeout_s = 20", f"complete_timeout_s = 20\nverify_workers = {workers}"
    )
    path = tmp_path / "ocmf.toml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    state = tmp_path / "state"
    market = MarketService(scenario, mosquitto.config, state, speed=0, intervals=INTERVALS)
    other, _ = p256()
    forged = [record(other).encode(), record(other, SD="00").encode()]
    fleet = AgentFleet(scenario, mosquitto.config).start()
    meters = MeterEmulator(scenario, mosquitto.config, keys=keys).start()
    try:
        running = market_thread(market)
        running.wait_collecting(0)
        with mqtt_client(mosquitto.config, "forger") as client:
            for raw in forged:
                client.publish(f"{topics_for(scenario).root}/meters/ocmf/ocmf-1/record", raw, 1)
        running.finish(90)
    finally:
        fleet.stop()
        meters.stop()
    return state / "ledger", public, market, forged


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "verifier-pool"])
def test_ocmf_records_are_kept_and_verify_checks_them_again(
    workers: int, mosquitto: Any, market_thread: Any, mqtt_client: Any, tmp_path: Path
) -> None:
    ledger, public, market, forged = ocmf_run(
        tmp_path, workers, mosquitto, market_thread, mqtt_client
    )
    # the forged records were refused at the door, for their signature, and only them
    assert market.stats.rejected == {"signature": 2}, market.stats.rejected
    entries = [e for e in read_chain(ledger) if e["header"]["kind"] == "interval"]
    assert [e["header"]["t"] for e in entries] == list(range(INTERVALS))
    private = ledger / "private"
    names: list[list[str]] = []
    records: list[Sample] = []
    for e in entries:
        leaf = next(x for x in e["inputs"] if x["agent"] == "h0003")
        assert leaf["signed"] and not leaf["estimated"]
        names.append(leaf["signed"])
        for name in leaf["signed"]:
            raw = (private / f"{name}.json").read_bytes()
            assert hashlib.sha256(raw).hexdigest() == name and raw.startswith(b"OCMF|")
            verify_record("record", raw, public)  # the meter's own signature, as sent
            records.append(read_meter("ocmf", "record", raw, TZ))
    kept = {n for ns in names for n in ns}
    assert {p.stem for p in private.iterdir()} == kept
    assert not {hashlib.sha256(raw).hexdigest() for raw in forged} & kept
    # the invariant the register check rests on: the import the leaves bill over the
    # intervals the records span is the difference of the import register (and export)
    start = records[0].time_s
    assert start is not None and start <= market.stamps[0].timestamp()
    demand = sum(
        next(x for x in e["inputs"] if x["agent"] == "h0003")["reading"]["demand_kwh"]
        for e in entries
    )
    gen = sum(
        next(x for x in e["inputs"] if x["agent"] == "h0003")["reading"]["generation_kwh"]
        for e in entries
    )
    last = records[-1]
    assert last.time_s == market.stamps[0].timestamp() + INTERVALS * 1800.0
    assert last.import_kwh is not None and records[0].import_kwh is not None
    assert last.export_kwh is not None and records[0].export_kwh is not None
    assert demand == pytest.approx(last.import_kwh - records[0].import_kwh, abs=1e-6)
    assert gen == pytest.approx(last.export_kwh - records[0].export_kwh, abs=1e-6)

    ok = ledger_cli("verify", str(ledger))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{INTERVALS} intervals' meter registers compared" in " ".join(ok.stdout.split())

    # the dispute lists the household's records and the registers read from them
    said = ledger_cli("dispute", str(ledger), "--household", "h0003", "--interval", "2")
    assert said.returncode == 0, said.stdout + said.stderr
    for name in names[2]:
        assert f"signed {name}: signature ok (key ocmf-1)" in said.stdout
    assert said.stdout.count("meter record at ") == len(names[2])

    # one byte of a kept record of interval 2 changed: verify fails, naming interval 2
    target = private / f"{names[2][-1]}.json"
    kept_bytes = target.read_bytes()
    data = bytearray(kept_bytes)
    at = data.index(b'"RV":') + 5
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    target.write_bytes(bytes(data))
    bad = ledger_cli("verify", str(ledger))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.splitlines()[0] == (
        f"ledger: interval 2 (entry 3): h0003: private/{names[2][-1]}.json is not the "
        "message recorded"
    )
    target.write_bytes(kept_bytes)
    # the key is the scenario's, never the record's: under another public_key in
    # scenario.json every record fails its signature (and the genesis its digest)
    scenario_file = ledger / "scenario.json"
    _, stranger = p256()
    scenario_file.write_text(scenario_file.read_text().replace(public, stranger))
    bad = ledger_cli("verify", str(ledger))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    assert lines[0] == (
        "ledger: entry 0: genesis: scenario.json is not the scenario the run recorded"
    )
    for t, ns in enumerate(names):
        for name in ns:
            assert (
                f"ledger: interval {t} (entry {t + 1}): h0003: private/{name}.json: ocmf "
                "record of meter 'ocmf-1': SD does not verify under the meter's public key"
            ) in lines


def test_the_ledger_checks_a_kept_record_with_the_scenarios_key_as_the_door_does(
    tmp_path: Path,
) -> None:
    key, public = p256()
    attacker, attacker_public = p256()
    path = tmp_path / "ocmf.toml"
    path.write_text(OCMF_SCENARIO.replace("{public}", public), encoding="utf-8")
    messages = Messages(load_scenario(path), Registry())
    text = record(key)
    # the spec example's registers: 1.8.0 2935.6 kWh, 2.8.0 1250 Wh, at 00:15 local time
    checked = messages.check("h0003", text.encode())
    assert checked.key == "ocmf-1"
    assert checked.sample == Sample(T_0015, 2935.6, 1.25)

    def smv(text: str, **extra: Any) -> bytes:
        data = base64.b64encode(text.encode()).decode()
        return json.dumps({"signedMeterData": data, "encodingMethod": "OCMF", **extra}).encode()

    assert messages.check("h0003", smv(text)).sample == Sample(T_0015, 2935.6, 1.25)
    # the key a SignedMeterValue carries is ignored: the attacker's record fails
    claimed = base64.b64encode(bytes.fromhex(attacker_public)).decode()
    for forged in (smv(record(attacker), publicKey=claimed), record(attacker).encode()):
        with pytest.raises(SignatureError, match="SD does not verify under the meter's"):
            messages.check("h0003", forged)
    # one byte of the payload section changed (2935.6 -> 2935.7)
    with pytest.raises(SignatureError, match=r"^ocmf record of meter 'ocmf-1': SD does not"):
        messages.check("h0003", text.replace("2935.6", "2935.7", 1).encode())
    # a household without a natively signing meter: only a "sig" is read
    with pytest.raises(SignatureError, match="not a JSON payload"):
        messages.check("h0001", text.encode())


def test_a_late_ocmf_meters_records_give_the_energy_of_its_corrections(
    mosquitto: Any, tmp_path: Path
) -> None:
    """A meter on its own clock (a record every 6 simulated minutes) leaves every gate
    short of the interval's end: version 1 is an estimate, and verify compares the
    correction of each interval (its last version) with the energy its records give.
    (The emulator's energy is linear within an interval, so here the estimate equals it
    too; tests/scenarios/audit/test_registers.py has an estimate that does not.)"""
    key, public = p256()
    keys = meter_key_dir(tmp_path, key)
    text = OCMF_SCENARIO.replace("{public}", public)
    path = tmp_path / "ocmf.toml"
    path.write_text(text.replace("interval_minutes = 30", "interval_minutes = 60"), "utf-8")
    scenario = load_scenario(path)
    state = tmp_path / "state"
    market = MarketService(scenario, mosquitto.config, state, speed=3600.0, intervals=8)
    meters = MeterEmulator(
        scenario, mosquitto.config, own_clock_s=360.0, speed=3600.0, keys=keys
    ).start()
    try:
        market.run()
    finally:
        meters.stop()
    assert market.stats.corrections > 0
    chain = read_chain(state / "ledger")
    corrected = {e["header"]["t"] for e in chain if e["header"]["kind"] == "correction"}
    ok = ledger_cli("verify", str(state / "ledger"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # every interval was an estimate, then corrected: each correction was compared
    assert corrected == set(range(8))
    assert "8 intervals' meter registers compared" in " ".join(ok.stdout.split())
