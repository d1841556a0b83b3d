"""OCMF meters (agents/meters/ocmf.py): records signed in the test with a P-256 key
(``cryptography`` directly, not the module's signer), checked against the field names of
S.A.F.E. e.V.'s "Open Charge Metering Format" revision 1.2 (SAFE-eV/OCMF-Open-Charge-
Metering-Format, OCMF-en.md: sections ``OCMF|payload|signature``; ``SA``, ``SE``, ``SM``,
``SD``; ``RD`` readings with ``TM``, ``RV``, ``RI``, ``RU``, ``ST``, ``EF``), and a meter
emulated over Mosquitto with its own key."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agents.meters.base import MeterSignatureError
from agents.meters.formats import MeterPayloadError, read_meter
from agents.meters.ocmf import verify
from live.contract import contract
from live.emulator import MeterEmulator
from live.fleet import AgentFleet
from live.ledger import read_ledger
from live.market import MarketService
from scenarios.config.loader import load_scenario
from scenarios.engine.runner import run as run_batch
from scenarios.errors import ScenarioError

TZ = ZoneInfo("Europe/Berlin")

# the spec's example layout: whitespace and line breaks inside the payload section,
# import in kWh, export in Wh (2.8.0), the second reading carrying TM, ST over
PAYLOAD = """{
    "FV": "1.0", "GI": "test gateway", "GS": "808829900001", "PG": "F17",
    "MV": "Phoenix Contact", "MM": "EEM-350-D-MCB", "MS": "BQ27400330016",
    "RD": [
        {"TM": "2026-06-01T00:15:00,000+0200 S", "RV": 2935.6, "RI": "1-b:1.8.0",
         "RU": "kWh", "RT": "AC", "EF": "", "ST": "G"},
        {"RV": 1250, "RI": "1-b:2.8.0", "RU": "Wh"},
        {"RV": 12.0, "RI": "1-b:1.8.1", "RU": "kWh"}
    ]
}"""
T_0015 = datetime(2026, 6, 1, 0, 15, tzinfo=TZ).timestamp()


def p256() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, der.hex()


def meter_key_dir(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    """``tmp_path/keys`` holding ``key`` as ``ocmf-1.pem`` (PKCS#8 PEM), for the emulator."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ocmf-1.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return keys


def record(key: Any, payload: str = PAYLOAD, **section: Any) -> str:
    """``OCMF|payload|signature``: ``SD`` the hex DER ECDSA-SHA256 signature of the
    payload section's bytes (``section`` overrides the signature section's fields)."""
    der = key.sign(payload.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    sig = {"SA": "ECDSA-secp256r1-SHA256", "SD": der.hex()} | section
    return f"OCMF|{payload}|{json.dumps(sig)}"


def test_a_signed_record_verifies_and_reads_its_registers() -> None:
    key, public = p256()
    text = record(key)
    verify("record", text.encode(), public)
    assert contract().check("p2pgrid/c/meters/ocmf/m1/record", text) == []
    s = read_meter("ocmf", "record", text.encode(), TZ)
    # 1.8.0 in kWh, 2.8.0 in Wh (1250 Wh = 1.25 kWh); the tariff register 1.8.1 ignored
    assert (s.time_s, s.import_kwh, s.export_kwh, s.power_kw) == (T_0015, 2935.6, 1.25, None)
    # SA defaults to ECDSA-secp256r1-SHA256, SE base64 is read as well as hex
    der = bytes.fromhex(json.loads(text.split("|")[2])["SD"])
    verify("record", text.rsplit("|", 1)[0] + "|" + json.dumps({"SD": der.hex()}), public)
    b64 = json.dumps({"SE": "base64", "SD": base64.b64encode(der).decode()})
    verify("record", text.rsplit("|", 1)[0] + "|" + b64, public)


def test_every_change_to_what_was_signed_is_refused() -> None:
    key, public = p256()
    other, other_public = p256()
    text = record(key)
    data, sig = text.split("|")[1:]
    reflowed = json.dumps(json.loads(data))  # same JSON, other whitespace: other bytes
    cases = {
        "does not verify": [
            text.replace("2935.6", "2935.7"),
            f"OCMF|{reflowed}|{sig}",
            record(other),  # signed by another key than the meter's
        ],
        "is on secp256r1, the record's SA is ECDSA-secp384r1": [
            record(key, SA="ECDSA-secp384r1-SHA256")
        ],
        "'ECDSA-secp192k1-SHA256' is not supported": [record(key, SA="ECDSA-secp192k1-SHA256")],
        "'RSA-2048' is not an OCMF signature algorithm": [record(key, SA="RSA-2048")],
        "only application/x-der": [record(key, SM="application/x-asn1")],
        "SD is not hex": [record(key, SD="zz")],
        "no SD": [record(key, SD="")],
        "not an OCMF record": [text.replace("OCMF|", "OCMX|", 1), text + "|{}"],
    }
    for words, texts in cases.items():
        for bad in texts:
            with pytest.raises(MeterPayloadError, match=words):
                verify("record", bad, public)
    verify("record", record(other), other_public)  # the other key's own record holds


def test_ocpp_signed_meter_value_carries_the_record_and_its_public_key_is_ignored() -> None:
    key, public = p256()
    attacker, attacker_public = p256()

    def smv(text: str, **extra: Any) -> bytes:
        data = base64.b64encode(text.encode()).decode()
        return json.dumps(
            {"signedMeterData": data, "encodingMethod": "OCMF", "signingMethod": "", **extra}
        ).encode()

    verify("signed_meter_value", smv(record(key)), public)
    assert contract().check("p2pgrid/c/meters/ocmf/m1/signed_meter_value", smv(record(key))) == []
    s = read_meter("ocmf", "signed_meter_value", smv(record(key)), TZ)
    assert (s.import_kwh, s.export_kwh) == (2935.6, 1.25)
    claimed = base64.b64encode(bytes.fromhex(attacker_public)).decode()
    forged = smv(record(attacker), publicKey=claimed)
    with pytest.raises(MeterSignatureError, match="does not verify"):
        verify("signed_meter_value", forged, public)
    with pytest.raises(MeterPayloadError, match="encodingMethod is 'EDL'"):
        read_meter("ocmf", "signed_meter_value", smv(record(key), encodingMethod="EDL"), TZ)


def test_readings_the_meter_flags_as_unusable_are_refused() -> None:
    def reading(**fields: Any) -> str:
        rd = {"TM": "2026-06-01T00:15:00,000+0200 S", "RV": 1.0, "RI": "1-0:1.8.0"}
        return "OCMF|" + json.dumps({"RD": [rd | {"RU": "kWh"} | fields]}) + "|{}"

    assert read_meter("ocmf", "record", reading(), TZ).import_kwh == 1.0
    with pytest.raises(MeterPayloadError, match="ST='F', not G"):
        read_meter("ocmf", "record", reading(ST="F"), TZ)
    with pytest.raises(MeterPayloadError, match="EF='Et'"):
        read_meter("ocmf", "record", reading(EF="Et"), TZ)
    with pytest.raises(MeterPayloadError, match="RU 'mOhm' is not an energy unit"):
        read_meter("ocmf", "record", reading(RU="mOhm"), TZ)
    with pytest.raises(MeterPayloadError, match="no total import"):
        read_meter("ocmf", "record", reading(RI="1-0:1.7.0"), TZ)
    # an unsynchronised clock (U): no trusted time, the market stamps it on arrival
    unsynced = read_meter("ocmf", "record", reading(TM="2026-06-01T00:15:00,000+0200 U"), TZ)
    assert unsynced.time_s is None and unsynced.import_kwh == 1.0
    # a record of two times: its sample is the last time's registers
    rd = [
        {"TM": "2026-06-01T00:00:00,000+0200 S", "RV": 1.0, "RI": "1.8.0", "RU": "kWh"},
        {"TM": "2026-06-01T00:15:00,000+0200 S", "RV": 1.5},
    ]
    s = read_meter("ocmf", "record", "OCMF|" + json.dumps({"RD": rd}) + "|{}", TZ)
    assert (s.time_s, s.import_kwh) == (T_0015, 1.5)


OCMF_SCENARIO = """
name = "live-ocmf"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 30
seed = 4
[community]
households = 3
[grid]
check = "off"
[live]
close_when_complete = true
complete_timeout_s = 20
[[live.meters]]
id = "ocmf-1"
format = "ocmf"
household = "h0003"
public_key = "{public}"
"""


def test_the_schema_wants_an_ocmf_meters_public_key_and_only_its(tmp_path: Path) -> None:
    _, public = p256()
    path = tmp_path / "ocmf.toml"
    cases = {
        "a ocmf meter signs its records itself, so it needs its public_key": "",
        "public_key is not the hex of a DER SubjectPublicKeyInfo": "00ff",
    }
    for words, value in cases.items():
        path.write_text(OCMF_SCENARIO.replace("{public}", value), encoding="utf-8")
        with pytest.raises(ScenarioError, match=words):
            load_scenario(path)
    tasmota = OCMF_SCENARIO.replace('format = "ocmf"', 'format = "tasmota"')
    path.write_text(tasmota.replace("{public}", public), encoding="utf-8")
    with pytest.raises(ScenarioError, match="public_key is for meters that sign natively"):
        load_scenario(path)


def test_the_market_takes_a_signed_record_and_rejects_a_forged_one(
    tmp_path: Path, ingest_harness: Any
) -> None:
    key, public = p256()
    path = tmp_path / "ocmf.toml"
    path.write_text(OCMF_SCENARIO.replace("{public}", public), encoding="utf-8")
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    h.ingest.open(0)
    h.raw("ocmf", "ocmf-1", "record", record(key).encode())
    assert h.market.stats.meter_samples == 1 and h.errors == []
    before = h.market.trackers["ocmf-1"].state()
    h.raw("ocmf", "ocmf-1", "record", record(key).replace("2935.6", "9935.6").encode())
    assert h.errors[-1]["reason"] == (
        "signature: ocmf: SD does not verify under the meter's public key"
    )
    assert h.market.trackers["ocmf-1"].state() == before
    assert h.market.stats.rejected["signature"] == 1
    # not a record at all: a meter rejection, not a signature one
    h.raw("ocmf", "ocmf-1", "record", b"hello")
    assert h.errors[-1]["reason"].startswith("meter: not an OCMF record")
    assert h.market.stats.rejected["meter"] == 1
    h.close()


def test_an_emulated_ocmf_meter_signs_and_is_settled_over_mosquitto(
    mosquitto: Any, live_clients: Any, market_thread: Any, tmp_path: Path
) -> None:
    key, public = p256()
    keys = meter_key_dir(tmp_path, key)
    path = tmp_path / "ocmf.toml"
    path.write_text(OCMF_SCENARIO.replace("{public}", public), encoding="utf-8")
    scenario = load_scenario(path)

    config = mosquitto.config
    market = MarketService(scenario, config, tmp_path / "state", speed=0, intervals=3)
    fleet = AgentFleet(scenario, config).start()
    meters = MeterEmulator(scenario, config, keys=keys).start()
    try:
        market_thread(market).finish(60)
    finally:
        fleet.stop()
        meters.stop()
    assert sum(market.stats.rejected.values()) == 0
    for r in market.results:
        assert r["counts"]["meter_readings"] == 1 and r["counts"]["meters_incomplete"] == 0
    run_batch(scenario, tmp_path / "batch")
    batch = pd.read_parquet(tmp_path / "batch" / "agents.parquet")
    batch["agent_id"] = batch["agent_id"].astype(str)
    for rec in (r for r in read_ledger(tmp_path / "state") if "settlements" in r):
        want = batch[(batch["t"] == rec["t"]) & (batch["agent_id"] == "h0003")].iloc[0]
        got = rec["settlements"]["h0003"]
        for field in ("demand_kwh", "generation_kwh", "cost"):
            assert got[field] == pytest.approx(want[field], abs=1e-6), (rec["t"], field)
