"""Tasmota (energy-monitoring firmware): the ``tele/SENSOR`` telegram.

``Time`` (local, no offset) → time, ``ENERGY.Total`` [kWh] → import,
``ENERGY.ExportActive`` [kWh] → export, ``ENERGY.Power`` [W] → power. Besides its
energy a device sends ``tele/STATE``, ``tele/LWT`` (its last will: ``Online`` /
``Offline``), ``tele/INFO1..3``, ``tele/RESULT`` and ``stat/…`` command results.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agents.meters.base import (
    MeterFormat,
    MeterPayloadError,
    Sample,
    counter,
    iso_time,
    json_object,
    number,
)

SENSOR = "tele/SENSOR"


def decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A ``tele/<id>/SENSOR`` payload."""
    data = json_object(payload)
    energy = data.get("ENERGY")
    if not isinstance(energy, dict):
        raise MeterPayloadError("missing ENERGY object")
    time_s = iso_time(data["Time"], "Time", tz) if "Time" in data else None
    imp = counter(energy["Total"], "ENERGY.Total") if "Total" in energy else None
    exp = (
        counter(energy["ExportActive"], "ENERGY.ExportActive") if "ExportActive" in energy else None
    )
    power = number(energy["Power"], "ENERGY.Power") / 1000.0 if "Power" in energy else None
    return Sample(time_s, imp, exp, power)


def encode(sample: Sample, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    """A SENSOR telegram (at 230 V, power factor 1)."""
    out: dict[str, Any] = {}
    if sample.time_s is not None:
        local = datetime.fromtimestamp(sample.time_s, tz).replace(tzinfo=None)
        out["Time"] = local.isoformat(timespec="seconds")
    energy: dict[str, Any] = {"TotalStartTime": "2024-01-01T00:00:00"}
    if sample.import_kwh is not None:
        energy["Total"] = sample.import_kwh
    if sample.export_kwh is not None:
        energy["ExportActive"] = sample.export_kwh
    if sample.power_kw is not None:
        watts = sample.power_kw * 1000.0
        energy.update(Power=watts, Voltage=230, Current=abs(watts) / 230.0, Factor=1.0)
    out["ENERGY"] = energy
    return {SENSOR: out}


TASMOTA = MeterFormat(
    name="tasmota",
    suffixes=(SENSOR,),
    decode=decode,
    encode=encode,
    companions=("tele/STATE", "tele/LWT", "tele/INFO1", "tele/INFO2", "tele/INFO3", "tele/RESULT"),
    companion_prefixes=("stat/",),
    online=("tele/LWT", {"Online": True, "Offline": False}),
)
