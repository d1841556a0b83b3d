"""Our generic JSON on ``meters/generic/<id>/reading``: ``{ts, import_kwh?, export_kwh?,
power_kw?}`` (unix seconds, cumulative kWh, signed kW); counters, power or both."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from agents.meters.base import MeterFormat, MeterPayloadError, Sample, counter, json_object, number

READING = "reading"
KEYS = ("ts", "import_kwh", "export_kwh", "power_kw")


def decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A generic reading; any key but these (and ``v``) is refused."""
    data = json_object(payload)
    unknown = sorted(set(data) - {*KEYS, "v"})
    if unknown:
        raise MeterPayloadError(f"unknown keys {unknown}")
    time_s = number(data["ts"], "ts") if "ts" in data else None
    imp = counter(data["import_kwh"], "import_kwh") if "import_kwh" in data else None
    exp = counter(data["export_kwh"], "export_kwh") if "export_kwh" in data else None
    power = number(data["power_kw"], "power_kw") if "power_kw" in data else None
    return Sample(time_s, imp, exp, power)


def encode(sample: Sample, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    """The sample's fields that are not None."""
    values = (sample.time_s, sample.import_kwh, sample.export_kwh, sample.power_kw)
    return {READING: {k: v for k, v in zip(KEYS, values, strict=True) if v is not None}}


GENERIC = MeterFormat(name="generic", suffixes=(READING,), decode=decode, encode=encode)
