"""Shelly Gen2/Gen3 energy meters (Pro 3EM, 3EM-63): ``status/emdata:0`` carries the
counters, ``status/em:0`` the power, each at its own moment.

``total_act`` [Wh] → import, ``total_act_ret`` [Wh] → export, ``total_act_power`` [W,
signed] → power, ``ts`` [unix s] when present (a real Gen2 device's status carries
none: the market stamps it on arrival). Besides its energy a device sends ``online``
(its last will: ``true`` / ``false``), ``events/rpc`` and the status of its system
components.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from agents.meters.base import MeterFormat, MeterPayloadError, Sample, counter, json_object, number

EMDATA, EM = "status/emdata:0", "status/em:0"
SYSTEM = ("sys", "wifi", "eth", "cloud", "mqtt", "ble", "ws", "temperature:0")


def decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A ``status/emdata:0`` (counters) or ``status/em:0`` (power) payload."""
    data = json_object(payload)
    time_s = number(data["ts"], "ts") if "ts" in data else None
    if suffix == EMDATA:
        if "total_act" not in data:
            raise MeterPayloadError("emdata:0 without total_act")
        imp = counter(data["total_act"], "total_act", 1e-3)
        exp = (
            counter(data["total_act_ret"], "total_act_ret", 1e-3)
            if "total_act_ret" in data
            else None
        )
        return Sample(time_s, imp, exp, None)
    if "total_act_power" not in data:
        raise MeterPayloadError("em:0 without total_act_power")
    return Sample(time_s, power_kw=number(data["total_act_power"], "total_act_power") / 1000.0)


def encode(sample: Sample, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    """A Pro 3EM's ``emdata:0`` (when the sample has counters) and ``em:0`` (when it
    has power, split evenly over the three phases)."""
    head: dict[str, Any] = {"id": 0} | ({} if sample.time_s is None else {"ts": sample.time_s})
    out: dict[str, dict[str, Any]] = {}
    if sample.import_kwh is not None:
        emdata = head | {"total_act": sample.import_kwh * 1000.0}
        if sample.export_kwh is not None:
            emdata["total_act_ret"] = sample.export_kwh * 1000.0
        out[EMDATA] = emdata
    if sample.power_kw is not None:
        watts = sample.power_kw * 1000.0
        third = watts / 3.0
        phases = {"a_act_power": third, "b_act_power": third, "c_act_power": third}
        out[EM] = head | phases | {"total_act_power": watts}
    return out


SHELLY = MeterFormat(
    name="shelly",
    suffixes=(EMDATA, EM),
    decode=decode,
    encode=encode,
    companions=("online", "events/rpc", *(f"status/{c}" for c in SYSTEM)),
    online=("online", {"true": True, "false": False}),
)
