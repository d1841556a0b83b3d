"""DSMR-reader (Dutch/Belgian P1 smart meters): its ``dsmr/json`` telegram, re-pointed to
``meters/dsmr/<id>/json``.

``timestamp`` → time, ``electricity_delivered_1 + _2`` [kWh] (the two tariff registers)
→ import, ``electricity_returned_1 + _2`` [kWh] → export,
``electricity_currently_delivered − _returned`` [kW] → power.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agents.meters.base import MeterFormat, Sample, counter, iso_time, json_object, number

JSON = "json"


def decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A DSMR-reader JSON telegram (kW and kWh, delivered and returned)."""
    data = json_object(payload)
    time_s = iso_time(data["timestamp"], "timestamp", tz) if "timestamp" in data else None

    def pair(stem: str) -> float | None:
        keys = [f"{stem}_1", f"{stem}_2"]
        if not any(k in data for k in keys):
            return None
        return sum(counter(data.get(k, 0.0), k) for k in keys)

    imp, exp = pair("electricity_delivered"), pair("electricity_returned")
    power = None
    if "electricity_currently_delivered" in data or "electricity_currently_returned" in data:
        power = number(
            data.get("electricity_currently_delivered", 0.0), "electricity_currently_delivered"
        ) - number(
            data.get("electricity_currently_returned", 0.0), "electricity_currently_returned"
        )
    return Sample(time_s, imp, exp, power)


def encode(sample: Sample, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    """A telegram with one tariff register used."""
    out: dict[str, Any] = {}
    if sample.time_s is not None:
        local = datetime.fromtimestamp(sample.time_s, tz)
        out["timestamp"] = local.isoformat(timespec="seconds")
    if sample.import_kwh is not None:
        out |= {"electricity_delivered_1": sample.import_kwh, "electricity_delivered_2": 0.0}
    if sample.export_kwh is not None:
        out |= {"electricity_returned_1": sample.export_kwh, "electricity_returned_2": 0.0}
    if sample.power_kw is not None:
        out["electricity_currently_delivered"] = max(sample.power_kw, 0.0)
        out["electricity_currently_returned"] = max(-sample.power_kw, 0.0)
    return {JSON: out}


DSMR = MeterFormat(name="dsmr", suffixes=(JSON,), decode=decode, encode=encode)
