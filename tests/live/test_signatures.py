"""Signed readings, orders and meter samples (issue 15, item 1): the market accepts a
message only under the key of the identity its topic names, rejects the rest with a
reason, and a rejected message never changes anybody's book.

The last test is a signed live run over a real Mosquitto: the simulated households and
emulated meters sign everything, the market requires signatures, and an attacker on the
same broker publishes unsigned and wrongly signed messages on h0002's and tas-1's topics
every interval. Everyone is settled, every attack is rejected and reported on ``errors``
with its reason, and every household's settlement equals the batch engine's for the
same scenario (nothing the attacker sent moved anybody's position)."""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pandas as pd
import pytest

from agents.meters.formats import Sample, meter_format
from live.bus import BrokerConfig
from live.contract import contract
from live.fleet import AgentFleet
from live.ledger import read_ledger
from live.market import MarketService
from live.protocol import Reading, read_reading
from live.signatures import SignatureRejected, Signatures, load_signers
from p2pgrid.cli_keys import key_ids
from scenarios.audit.canonical import canonical
from scenarios.audit.keys import KeyError_, KeyPair, Registry
from scenarios.config.loader import load_scenario
from scenarios.config.schema_live import Meter
from scenarios.engine.runner import run as run_batch
from scenarios.errors import ScenarioError

from .conftest import make_keys, write_signed

METERS = """
[[live.meters]]
id = "tas-1"
format = "tasmota"
household = "h0005"
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0006"
"""


def signed_scenario(tmp_path: Path, required: bool = True) -> tuple[Path, dict[str, KeyPair]]:
    """The scenario file (its keys relative to its folder) and its key pairs."""
    ids = key_ids(6, ["tas-1", "gen-1"])
    return write_signed(tmp_path / "scenario", "live-signed", 6, ids, METERS, required)


def reading(t: int, generation: float, demand: float) -> dict[str, Any]:
    return {"v": 1, "t": t, "generation_kwh": generation, "demand_kwh": demand}


def test_the_scenario_names_its_keys_relative_to_its_file(tmp_path: Path) -> None:
    path, _ = signed_scenario(tmp_path)
    scenario = load_scenario(path)
    assert scenario.live.keys == str((path.parent / "keys" / "keys.json").resolve())
    assert scenario.live.require_signatures
    # a missing registry, a file that is not one, signatures required without keys, and
    # a household the registry has no key for: each named with its key
    (path.parent / "junk.json").write_text('{"keys": 3}', encoding="utf-8")
    cases = {
        "live.keys: no file at": "live.keys = 'nowhere.json'",
        "live.keys: .*junk.json: not a public key registry": "live.keys = 'junk.json'",
        "live.require_signatures: true needs the public keys": "live.keys = ''",
        "live.require_signatures: h0007 have no public key": "community.households = 7",
    }
    for words, change in cases.items():
        key, value = change.split(" = ")
        text = path.read_text(encoding="utf-8")
        broken = path.parent / "broken.toml"
        if key == "community.households":
            broken.write_text(text.replace("households = 6", f"households = {value}"))
        else:
            broken.write_text(text.replace('keys = "keys/keys.json"', f"keys = {value}"))
        with pytest.raises(ScenarioError, match=words):
            load_scenario(broken)


def test_the_codec_accepts_sig_and_still_refuses_other_unknown_keys() -> None:
    pair = KeyPair.new("h0001")
    signed = pair.sign(reading(3, 0.5, 0.25))
    assert read_reading(signed, "h0001", 3, 10.0) == Reading(0.5, 0.25, None, 0.0)
    with pytest.raises(ValueError, match=r"unknown keys \['sigma'\]"):
        read_reading({**reading(3, 0.5, 0.25), "sigma": 1}, "h0001", 3, 10.0)


def test_forged_and_unsigned_messages_are_rejected_and_change_nobody(
    tmp_path: Path, ingest_harness: Any
) -> None:
    path, pairs = signed_scenario(tmp_path)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    h.ingest.open(0)
    good = pairs["h0002"].sign(reading(0, 0.5, 0.25))
    h.agent("h0002", "reading", good)
    h.agent("h0001", "reading", pairs["h0001"].sign(reading(0, 0.1, 0.2)))
    accepted = dict(h.ingest.book.readings)
    assert accepted[1] == Reading(0.5, 0.25, None, 0.0) and not h.errors
    # an unsigned reading, h0001's signature on h0002's topic, h0002's signature over
    # other values, a malformed signature, orders signed by a key nobody registered
    forged = {**good, "demand_kwh": 9.0}
    attacks = [
        ("reading", reading(0, 2.0, 0.0), "unsigned, and \\[live\\] require_signatures"),
        ("reading", pairs["h0001"].sign(reading(0, 2.0, 0.0)), "signed by key 'h0001', expected"),
        ("reading", forged, "does not verify under 'h0002'"),
        ("reading", {**good, "sig": {**good["sig"], "value": "AAAA"}}, "has 3 bytes, not 64"),
        ("orders", KeyPair.new("h0002").sign({"v": 1, "t": 0, "orders": []}), "does not verify"),
    ]
    for what, payload, words in attacks:
        h.agent("h0002", what, payload)
        assert h.errors[-1]["topic"] == f"{h.root}/agents/h0002/{what}"
        assert h.errors[-1]["reason"].startswith("signature: ")
        assert re.search(words, h.errors[-1]["reason"]), h.errors[-1]["reason"]
    assert len(h.errors) == len(attacks)
    assert h.market.stats.rejected["signature"] == len(attacks)
    # h0002's accepted reading is intact, h0001's too, and nobody has orders
    assert h.ingest.book.readings == accepted and h.ingest.book.orders == {}
    h.close()


def test_without_required_signatures_unsigned_passes_but_a_bad_signature_never(
    tmp_path: Path, ingest_harness: Any
) -> None:
    path, pairs = signed_scenario(tmp_path, required=False)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    h.ingest.open(0)
    h.agent("h0003", "reading", reading(0, 0.0, 0.4))
    bad = {**pairs["h0003"].sign(reading(0, 0.0, 0.4)), "generation_kwh": 0.1}
    h.agent("h0003", "reading", bad)
    assert h.ingest.book.readings == {2: Reading(0.0, 0.4, None, 0.0)}
    assert [e["reason"] for e in h.errors] == [
        "signature: signature does not verify under 'h0003''s key"
    ]
    h.close()


def test_a_signature_of_another_run_is_not_replayed(tmp_path: Path, ingest_harness: Any) -> None:
    path, pairs = signed_scenario(tmp_path)
    h = ingest_harness(load_scenario(path), tmp_path / "state")
    run = h.market.run_id
    assert h.ingest.run == run
    h.ingest.open(0)
    old = pairs["h0002"].sign({**reading(0, 3.0, 0.0), "run": "an-earlier-run"})
    h.agent("h0002", "reading", old)
    assert h.ingest.book.readings == {}
    assert h.errors[-1]["reason"].startswith("run: the message is for run 'an-earlier-run'")
    h.agent("h0002", "reading", pairs["h0002"].sign({**reading(0, 3.0, 0.0), "run": run}))
    assert h.ingest.book.readings == {1: Reading(3.0, 0.0, None, 0.0)}
    # the simulated households name the run of the clock they answer, inside the signature
    fleet = AgentFleet(h.market.scenario, BrokerConfig(port=1))
    fleet._run = run
    _, _, messages = fleet.messages(0)
    assert all(p["run"] == run and p["sig"]["key"] == t.split("/")[-2] for t, p in messages)
    h.close()


def test_meters_sign_by_wrapping_their_native_json(tmp_path: Path, ingest_harness: Any) -> None:
    """Tasmota and generic meters: the native object plus "sig" over its canonical bytes."""
    path, pairs = signed_scenario(tmp_path)
    scenario = load_scenario(path)
    h = ingest_harness(scenario, tmp_path / "state")
    h.ingest.open(0)
    tz = h.ingest.tz
    start = h.market.stamps[0].timestamp()
    fmt = meter_format("tasmota")
    (sensor,) = fmt.encode(Sample(start + 600, 100.0, 20.0, 0.5), tz).values()
    signed = pairs["tas-1"].sign(sensor)
    # what is signed: the native telegram exactly as it would go unsigned
    pairs["tas-1"].private.public_key().verify(
        base64.b64decode(signed["sig"]["value"]), canonical(sensor)
    )
    h.meter("tasmota", "tas-1", "tele/SENSOR", signed)
    assert h.market.stats.meter_samples == 1 and not h.errors
    tracker = h.market.trackers["tas-1"]
    before = tracker.state()
    later = fmt.encode(Sample(start + 1200, 100.1, 20.0, 0.5), tz)["tele/SENSOR"]
    attacks = [
        (later, "unsigned"),
        ({**pairs["tas-1"].sign(later), "Time": "2026-06-01T00:21:00"}, "does not verify"),
        (pairs["gen-1"].sign(later), "signed by key 'gen-1', expected 'tas-1'"),
    ]
    for payload, words in attacks:
        h.meter("tasmota", "tas-1", "tele/SENSOR", payload)
        assert words in h.errors[-1]["reason"] and h.errors[-1]["reason"].startswith("signature")
    assert tracker.state() == before and h.market.stats.meter_samples == 1
    assert h.market.stats.rejected["signature"] == len(attacks)
    # the generic format refuses unknown keys, yet a signed generic sample is read
    # (its decoder sees the native object without "sig")
    gen = pairs["gen-1"].sign({"ts": start + 600, "import_kwh": 5.0, "export_kwh": 1.0})
    h.meter("generic", "gen-1", "reading", gen)
    assert h.market.stats.meter_samples == 2 and len(h.errors) == len(attacks)
    h.close()


def test_signers_load_their_keys_and_refuse_a_key_of_another(tmp_path: Path) -> None:
    pairs = make_keys(tmp_path, key_ids(2, []))
    registry = Registry.load(tmp_path / "keys.json")
    got = load_signers(["h0001", "h0002"], tmp_path, strict=True, registry=registry)
    assert {k: v.public_b64 for k, v in got.items()} == {
        k: pairs[k].public_b64 for k in ("h0001", "h0002")
    }
    with pytest.raises(KeyError_, match="no key file for h0003"):
        load_signers(["h0001", "h0003"], tmp_path, strict=True)
    assert set(load_signers(["h0001", "h0003"], tmp_path, strict=False)) == {"h0001"}
    KeyPair.new("h0002").save(tmp_path / "h0002.key")  # replaced: no longer registered
    with pytest.raises(KeyError_, match="not the key the scenario's"):
        load_signers(["h0002"], tmp_path, strict=True, registry=registry)


def test_the_check_alone() -> None:
    pair = KeyPair.new("m1")
    check = Signatures(Registry({"m1": pair.public_b64}), required=True)
    assert check.check(pair.sign({"t": 1}), "m1") is True
    meter = Meter(id="m1", format="generic", household="h0001")
    wrapped = json.dumps(pair.sign({"ts": 1.5})).encode()
    body, signed = check.meter_payload(wrapped, meter, "reading")
    assert signed and json.loads(body) == {"ts": 1.5}
    with pytest.raises(SignatureRejected, match="not a JSON object"):
        check.meter_payload(b"Online", meter, "reading")
    # no keys registered: a signed message cannot be checked, so it is not accepted
    with pytest.raises(SignatureRejected, match="no public key registered for 'm1'"):
        Signatures().check(pair.sign({"t": 1}), "m1")
    assert Signatures().check({"t": 1}, "m1") is False


INTERVALS = 4


def test_a_signed_run_settles_everyone_and_rejects_every_forgery(
    mosquitto: Any, live_clients: Any, market_thread: Any, waiting: Any, tmp_path: Path
) -> None:
    path, pairs = signed_scenario(tmp_path, required=True)
    scenario = load_scenario(path)
    config = mosquitto.config
    market = MarketService(scenario, config, tmp_path / "state", speed=0, intervals=INTERVALS)
    root = market.topics.root
    stranger = KeyPair.new("h0002")  # claims h0002's id, holds another key
    start = market.stamps[0].timestamp()
    tz = market.ingest.tz
    sent: list[tuple[str, str]] = []  # (topic, the reason expected)
    seen: list[tuple[str, bytes]] = []
    errors: list[dict[str, Any]] = []
    lock = threading.Lock()

    def attack(client: mqtt.Client, t: int) -> None:
        body = {"v": 1, "t": t, "generation_kwh": 3.0, "demand_kwh": 0.0}
        sensor = meter_format("tasmota").encode(
            Sample(start + (t + 0.5) * 1800, 1e6, 0.0, 9.0), tz
        )["tele/SENSOR"]
        for topic, payload, reason in (
            ("agents/h0002/reading", body, "signature: unsigned"),
            ("agents/h0002/reading", pairs["h0001"].sign(body), "expected 'h0002'"),
            ("agents/h0002/reading", stranger.sign(body), "does not verify under 'h0002'"),
            ("agents/h0002/orders", stranger.sign({"v": 1, "t": t, "orders": []}), "verify"),
            ("meters/tasmota/tas-1/tele/SENSOR", sensor, "signature: unsigned"),
            ("meters/tasmota/tas-1/tele/SENSOR", stranger.sign(sensor), "expected 'tas-1'"),
        ):
            client.publish(f"{root}/{topic}", json.dumps(payload), qos=1)
            sent.append((f"{root}/{topic}", reason))

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            seen.append((msg.topic, bytes(msg.payload)))
            if msg.topic == f"{root}/errors":
                errors.append(json.loads(msg.payload))
            elif msg.topic == f"{root}/clock" and not msg.retain:
                clock = json.loads(msg.payload)
                # not the last interval: its gate may close (and the market end) before
                # the attack arrives
                t = clock.get("t")
                if isinstance(t, int) and not clock.get("done") and t < INTERVALS - 1:
                    attack(client, t)

    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    attacker.on_message = on_message
    subscribed = threading.Event()
    attacker.on_connect = lambda c, *_: c.subscribe(f"{root}/#", qos=1)
    attacker.on_subscribe = lambda *_: subscribed.set()
    attacker.connect(config.host, config.port)
    attacker.loop_start()
    try:
        assert subscribed.wait(10)
        with live_clients(scenario, config) as (fleet, meters):
            assert set(fleet.signers) == {f"h000{i}" for i in range(1, 5)}
            assert set(meters.signers) == {"tas-1", "gen-1"}
            running = market_thread(market)
            running.finish(90)
            fleet.wait(20)
        waiting(lambda: len(errors) >= len(sent), "every rejection reported on errors", 10)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
    # everyone settled on signed messages: no household missing, no meter short
    assert len(market.results) == INTERVALS
    for r in market.results:
        assert r["counts"]["missing_agents"] == 0 and r["counts"]["meters_incomplete"] == 0
        assert r["counts"]["readings"] == 4 and r["counts"]["meter_readings"] == 2
    assert market.stats.readings == fleet.stats.readings_sent == 4 * INTERVALS
    # every attack rejected, on errors with its topic and reason
    assert market.stats.rejected["signature"] == len(sent) == 6 * (INTERVALS - 1)
    assert sum(market.stats.rejected.values()) == len(sent)
    got = sorted((e["topic"], e["reason"]) for e in errors)
    assert len(got) == len(sent)
    for (topic, reason), (want_topic, _words) in zip(got, sorted(sent), strict=True):
        assert topic == want_topic and reason.startswith("signature: ")
    for topic, words in set(sent):
        assert any(t == topic and words in r for t, r in got), (topic, words)
    # the wire follows the contract, signed payloads included
    signed = [(t, p) for t, p in seen if b'"sig"' in p and "/errors" not in t]
    assert len(signed) > 6 * (INTERVALS - 1)
    problems = [x for t, p in seen for x in contract().check(t, p)]
    assert problems == []
    # every household's settlement is the batch engine's: nobody's position moved
    run_batch(scenario, tmp_path / "batch")
    agents = pd.read_parquet(tmp_path / "batch" / "agents.parquet")
    agents["agent_id"] = agents["agent_id"].astype(str)
    batch = agents.set_index(["t", "agent_id"])
    records = [r for r in read_ledger(tmp_path / "state") if "settlements" in r]
    assert [r["t"] for r in records] == list(range(INTERVALS))
    for record in records:
        for agent, s in record["settlements"].items():
            row = batch.loc[(record["t"], agent)]
            for field in ("cost", "demand_kwh", "generation_kwh", "grid_import_kwh"):
                assert s[field] == pytest.approx(row[field], abs=1e-6), (record["t"], agent)
