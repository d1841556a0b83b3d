"""A new meter format is one module plus one registration (issue 13 item 5).

:data:`TINY` below is the whole format, as a module in ``agents/meters/`` would declare
it: a tiny JSON meter that sends ``{"t": unix s, "in_wh": …, "out_wh": …, "w": …}`` on
``meters/tiny/<id>/data`` (watt-hours and watts) and says ``up`` / ``down`` on its
``status`` last will. Registered from the test, the scenario schema accepts it (and
names it when it refuses another), ``p2pgrid meters emulate --format`` lists it, the
emulator publishes it and the live market settles it over a real Mosquitto, with no
change to the market, the schema, the emulator or the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from agents.meters.base import MeterFormat, Sample, counter, json_object, number
from agents.meters.formats import (
    format_names,
    is_companion,
    online_state,
    read_meter,
    register,
    unregister,
)
from live.emulator import MeterEmulator
from live.ledger import read_ledger
from live.market import MarketService, topics_for
from p2pgrid.cli import app
from scenarios.config.loader import load_scenario
from scenarios.errors import ScenarioError

# --- the format: what its module would hold ------------------------------------------

FIELDS = {"in_wh": "import_kwh", "out_wh": "export_kwh"}


def _decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    data = json_object(payload)
    time_s = number(data["t"], "t") if "t" in data else None
    imp, exp = (counter(data[k], k, 1e-3) if k in data else None for k in FIELDS)
    power = number(data["w"], "w") / 1000.0 if "w" in data else None
    return Sample(time_s, imp, exp, power)


def _encode(sample: Sample, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    out: dict[str, Any] = {} if sample.time_s is None else {"t": sample.time_s}
    for key, ours in FIELDS.items():
        value = getattr(sample, ours)
        if value is not None:
            out[key] = value * 1000.0
    if sample.power_kw is not None:
        out["w"] = sample.power_kw * 1000.0
    return {"data": out}


TINY = MeterFormat(
    name="tiny",
    suffixes=("data",),
    decode=_decode,
    encode=_encode,
    companions=("status",),
    online=("status", {"up": True, "down": False}),
)

# --------------------------------------------------------------------------------------


@pytest.fixture
def tiny() -> Iterator[MeterFormat]:
    register(TINY)  # the one registration
    try:
        yield TINY
    finally:
        unregister(TINY)


INTERVALS = 12
SCENARIO = """
name = "meters-tiny"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 60
seed = 13
[community]
households = 3
pv_share = 0.67
[grid]
feeder = "ieee33"
check = "pyomo"
[live]
close_when_complete = true
[[live.meters]]
id = "tiny-1"
format = "tiny"
household = "h0001"
[[live.meters]]
id = "gen-1"
format = "generic"
household = "h0002"
[[live.meters]]
id = "tiny-power"
format = "tiny"
household = "h0003"
"""


def test_the_schema_knows_a_format_once_it_is_registered(tmp_path: Path, tiny: Any) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    assert format_names() == ("tasmota", "shelly", "dsmr", "generic", "ocmf", "tiny")
    assert {m.format for m in load_scenario(path).live.meters} == {"tiny", "generic"}
    # an unknown name is refused with the registry's names, the new one included
    path.write_text(SCENARIO.replace('"generic"', '"zigbee"'), encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "'zigbee' is not one of tasmota, shelly, dsmr, generic, ocmf, tiny" in str(err.value)
    # the registry's readers: its payload, its companion, its last will
    tz = ZoneInfo("UTC")
    sent = TINY.encode(Sample(1000.0, 12.5, 3.25, -0.75), tz)
    assert sent == {"data": {"t": 1000.0, "in_wh": 12500.0, "out_wh": 3250.0, "w": -750.0}}
    got = read_meter("tiny", "data", json.dumps(sent["data"]), tz)
    assert (got.time_s, got.import_kwh, got.export_kwh, got.power_kw) == (
        1000.0,
        12.5,
        3.25,
        -0.75,
    )
    assert is_companion("tiny", "status") and not is_companion("tiny", "data")
    assert online_state("tiny", "status", b"down") is False


def test_the_schema_refuses_a_format_not_registered(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    known = "tasmota, shelly, dsmr, generic, ocmf"
    with pytest.raises(ScenarioError, match=f"'tiny' is not one of {known}"):
        load_scenario(path)


def test_the_cli_lists_the_registered_formats(tiny: Any) -> None:
    """``p2pgrid meters emulate --format`` refuses an unknown name with the registry's."""
    args = ["meters", "emulate", "--format", "zigbee", "--broker", "mqtt://127.0.0.1:1"]
    got = CliRunner().invoke(app, args)
    assert got.exit_code == 2
    assert "'zigbee' is not one of tasmota, shelly, dsmr, generic, ocmf, tiny" in got.output


def test_a_name_is_registered_once_and_must_be_one_topic_level(tiny: Any) -> None:
    with pytest.raises(ValueError, match="'shelly' is already registered"):
        register(replace(TINY, name="shelly"))
    with pytest.raises(ValueError, match="'tiny/v2' is not one MQTT topic level"):
        register(replace(TINY, name="tiny/v2"))
    with pytest.raises(ValueError, match="'tiny' is not registered"):
        unregister(replace(TINY))  # an equal format, not the registered one
    assert format_names()[-1] == "tiny"


def test_a_registered_format_is_emulated_and_settled_over_mosquitto(
    mosquitto: Any,
    tmp_path: Path,
    tiny: Any,
    equal_to_batch: Any,
    market_thread: Any,
    mqtt_client: Any,
) -> None:
    """Every interval is complete (no estimate), nothing is rejected, each tiny meter's
    household is settled with the profile's energy at its grid connection (counters,
    and power over time for ``tiny-power``), to 1e-9 kWh, and every result equals the
    batch run's. The device's retained ``status`` ``up`` is a companion, not an error."""
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    config, state = mosquitto.config, tmp_path / "state"
    status = topics_for(scenario).meter("tiny", "tiny-1", "status")
    with mqtt_client(config, "tiny-1") as device:  # the real device's retained last will
        device.publish(status, b"up", qos=1, retain=True).wait_for_publish(10)
    market = MarketService(scenario, config, state, speed=0, intervals=INTERVALS)
    meters = MeterEmulator(scenario, config, power_only=("tiny-power",)).start()
    try:
        market_thread(market).finish(60)
    finally:
        meters.stop()
    assert sum(market.stats.rejected.values()) == 0
    assert market.stats.meter_companions == 1
    ledger = read_ledger(state)
    results = [r["result"] for r in ledger]
    assert [r["counts"]["meters_incomplete"] for r in results] == [0] * INTERVALS
    assert [r["counts"]["meter_readings"] for r in results] == [3] * INTERVALS
    for t, record in enumerate(ledger):
        demand, generation = meters._energy(t)
        for i, meter in enumerate(meters.meters):
            s = record["settlements"][meter.household]
            assert not s["estimated"]
            assert s["demand_kwh"] == pytest.approx(float(demand[i]), abs=1e-9), (meter.id, t)
            assert s["generation_kwh"] == pytest.approx(float(generation[i]), abs=1e-9)
    tiny_rows = [i for i, m in enumerate(meters.meters) if m.format == "tiny"]
    exported = sum(meters._energy(t)[1][tiny_rows] for t in range(INTERVALS))
    assert len(tiny_rows) == 2 and min(exported) > 1.0  # PV: both tiny meters export too
    equal_to_batch(results, scenario, tmp_path / "batch", books=[r["book"] for r in ledger])
