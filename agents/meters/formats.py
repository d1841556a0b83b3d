"""Smart-meter payloads: native formats mapped onto our standard names, and interval energy
from cumulative counters or from power over time.

One table per source maps its fields onto ours (pvlib ``iotools`` ``VARIABLE_MAP``):

=========  =========================================  ===========================
format     topic suffix (after ``meters/<fmt>/<id>/``)  fields → our names
=========  =========================================  ===========================
tasmota    ``tele/SENSOR``                            ``Time`` (local), ``ENERGY.Total`` [kWh] →
                                                      import, ``ENERGY.ExportActive`` [kWh] →
                                                      export, ``ENERGY.Power`` [W] → power
shelly     ``status/emdata:0``, ``status/em:0``       ``total_act`` [Wh] → import,
                                                      ``total_act_ret`` [Wh] → export,
                                                      ``total_act_power`` [W, signed] → power,
                                                      ``ts`` [unix s] when present
dsmr       ``json`` (DSMR-reader's ``dsmr/json``)     ``timestamp``, ``electricity_delivered_1+2``
                                                      [kWh] → import, ``electricity_returned_1+2``
                                                      [kWh] → export, ``electricity_currently_
                                                      delivered − _returned`` [kW] → power
generic    ``reading``                                ``ts`` [unix s], ``import_kwh``,
                                                      ``export_kwh``, ``power_kw`` [signed]
=========  =========================================  ===========================

Power is positive when the household imports. A household's meter measures its grid
connection: the interval's imported energy is its ``demand_kwh`` and its exported
energy its ``generation_kwh`` (:func:`as_metered`).

What a real device sends besides its energy (Tasmota's ``tele/STATE``, ``tele/LWT``,
``tele/INFO1..3``, ``tele/RESULT`` and ``stat/…``; Shelly's ``online``, ``events/rpc``
and the status of its system components, :data:`COMPANIONS`) is recognised by
:func:`is_companion`: the market ignores it without reporting or counting it against the
meter, except that a last will saying the device is offline (Tasmota's ``LWT``
``Offline``, Shelly's ``online`` ``false``; :func:`online_state`) spares the market
waiting for it at a gate until the device sends again.

Interval energy from the samples: :mod:`agents.meters.tracker`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from agents.devices import DEVICE_KINDS
from agents.households.table import Households

FORMATS = ("tasmota", "shelly", "dsmr", "generic")
SUFFIXES = {
    "tasmota": ("tele/SENSOR",),
    "shelly": ("status/emdata:0", "status/em:0"),
    "dsmr": ("json",),
    "generic": ("reading",),
}
COMPANIONS = {
    "tasmota": ("tele/STATE", "tele/LWT", "tele/INFO1", "tele/INFO2", "tele/INFO3", "tele/RESULT"),
    "shelly": (
        "online",
        "events/rpc",
        *(
            f"status/{c}"
            for c in ("sys", "wifi", "eth", "cloud", "mqtt", "ble", "ws", "temperature:0")
        ),
    ),
}
"""Messages a real device sends besides its energy, by exact suffix (any other suffix
of a format is reported: a Shelly Pro EM's ``status/em1:0`` is not read, and says so)."""
COMPANION_PREFIXES = {"tasmota": ("stat/",)}
"""… and by prefix (Tasmota's command results)."""


class MeterPayloadError(ValueError):
    """A meter payload that cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One meter sample in our names.

    time_s : unix time [s] (simulated time in live mode), None when the payload has none
    import_kwh, export_kwh : cumulative counters [kWh], None when not in the payload
    power_kw : power at the connection [kW], positive when importing, None when absent
    """

    time_s: float | None
    import_kwh: float | None = None
    export_kwh: float | None = None
    power_kw: float | None = None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeterPayloadError(f"{name} must be a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise MeterPayloadError(f"{name} must be finite, got {value!r}")
    return x


def _counter(value: Any, name: str, scale: float = 1.0) -> float:
    x = _number(value, name) * scale
    if x < 0:
        raise MeterPayloadError(f"{name} is a counter and cannot be negative ({value!r})")
    return x


def _time_iso(value: Any, name: str, tz: ZoneInfo) -> float:
    if not isinstance(value, str):
        raise MeterPayloadError(f"{name} must be an ISO timestamp string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise MeterPayloadError(f"{name}: {value!r} is not an ISO timestamp") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.timestamp()


def _object(payload: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # also 4,300-digit integers, deep nesting
        raise MeterPayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MeterPayloadError("payload must be a JSON object")
    return data


def read_tasmota(payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A Tasmota ``tele/<id>/SENSOR`` payload (energy monitoring firmware)."""
    data = _object(payload)
    energy = data.get("ENERGY")
    if not isinstance(energy, dict):
        raise MeterPayloadError("missing ENERGY object")
    time_s = _time_iso(data["Time"], "Time", tz) if "Time" in data else None
    imp = _counter(energy["Total"], "ENERGY.Total") if "Total" in energy else None
    exp = (
        _counter(energy["ExportActive"], "ENERGY.ExportActive")
        if "ExportActive" in energy
        else None
    )
    power = _number(energy["Power"], "ENERGY.Power") / 1000.0 if "Power" in energy else None
    return _checked(Sample(time_s, imp, exp, power))


def read_shelly(payload: bytes | str, suffix: str) -> Sample:
    """A Shelly Gen2/Gen3 EM (Pro 3EM, 3EM-63) ``status/emdata:0`` or ``status/em:0``."""
    data = _object(payload)
    time_s = _number(data["ts"], "ts") if "ts" in data else None
    if suffix == "status/emdata:0":
        if "total_act" not in data:
            raise MeterPayloadError("emdata:0 without total_act")
        imp = _counter(data["total_act"], "total_act", 1e-3)
        exp = (
            _counter(data["total_act_ret"], "total_act_ret", 1e-3)
            if "total_act_ret" in data
            else None
        )
        return _checked(Sample(time_s, imp, exp, None))
    if "total_act_power" not in data:
        raise MeterPayloadError("em:0 without total_act_power")
    return _checked(
        Sample(time_s, power_kw=_number(data["total_act_power"], "total_act_power") / 1000.0)
    )


def read_dsmr(payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A DSMR-reader ``dsmr/json`` telegram (kW and kWh, delivered and returned)."""
    data = _object(payload)
    time_s = _time_iso(data["timestamp"], "timestamp", tz) if "timestamp" in data else None

    def pair(stem: str) -> float | None:
        keys = [f"{stem}_1", f"{stem}_2"]
        if not any(k in data for k in keys):
            return None
        return sum(_counter(data.get(k, 0.0), k) for k in keys)

    imp, exp = pair("electricity_delivered"), pair("electricity_returned")
    power = None
    if "electricity_currently_delivered" in data or "electricity_currently_returned" in data:
        power = _number(
            data.get("electricity_currently_delivered", 0.0), "electricity_currently_delivered"
        ) - _number(
            data.get("electricity_currently_returned", 0.0), "electricity_currently_returned"
        )
    return _checked(Sample(time_s, imp, exp, power))


def read_generic(payload: bytes | str) -> Sample:
    """Our generic JSON: ``{ts, import_kwh?, export_kwh?, power_kw?}``."""
    data = _object(payload)
    unknown = sorted(set(data) - {"ts", "import_kwh", "export_kwh", "power_kw", "v"})
    if unknown:
        raise MeterPayloadError(f"unknown keys {unknown}")
    time_s = _number(data["ts"], "ts") if "ts" in data else None
    imp = _counter(data["import_kwh"], "import_kwh") if "import_kwh" in data else None
    exp = _counter(data["export_kwh"], "export_kwh") if "export_kwh" in data else None
    power = _number(data["power_kw"], "power_kw") if "power_kw" in data else None
    return _checked(Sample(time_s, imp, exp, power))


def _checked(sample: Sample) -> Sample:
    if sample.import_kwh is None and sample.export_kwh is None and sample.power_kw is None:
        raise MeterPayloadError("payload carries neither energy counters nor power")
    return sample


def is_companion(fmt: str, suffix: str) -> bool:
    """Whether ``suffix`` is a message a real ``fmt`` device sends besides its energy."""
    if suffix in SUFFIXES.get(fmt, ()):
        return False
    return suffix in COMPANIONS.get(fmt, ()) or suffix.startswith(COMPANION_PREFIXES.get(fmt, ()))


ONLINE_TOPICS = {
    "tasmota": ("tele/LWT", {"Online": True, "Offline": False}),
    "shelly": ("online", {"true": True, "false": False}),
}
"""Where a device says whether it is online (its MQTT last will), and the payloads."""


def online_state(fmt: str, suffix: str, payload: bytes) -> bool | None:
    """Whether a device's last-will message says it is online (None: not such a message
    or not a payload it sends)."""
    topic, states = ONLINE_TOPICS.get(fmt, ("", {}))
    if suffix != topic:
        return None
    return states.get(payload.decode("utf-8", "replace").strip().strip('"'))


def read_meter(fmt: str, suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """Dispatch on the format; raises :class:`MeterPayloadError` with the reason."""
    if fmt not in SUFFIXES:
        raise MeterPayloadError(f"unknown meter format {fmt!r}")
    if suffix not in SUFFIXES[fmt]:
        raise MeterPayloadError(
            f"{fmt} meters publish on {', '.join(SUFFIXES[fmt])}, not {suffix!r}"
        )
    try:
        if fmt == "tasmota":
            return read_tasmota(payload, tz)
        if fmt == "shelly":
            return read_shelly(payload, suffix)
        if fmt == "dsmr":
            return read_dsmr(payload, tz)
        return read_generic(payload)
    except KeyError as exc:  # pragma: no cover - every key is checked before use
        raise MeterPayloadError(f"missing {exc}") from None


def as_metered(generation_kwh: np.ndarray, demand_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a meter at the grid connection sees: ``(export, import)`` [kWh]."""
    net = generation_kwh - demand_kwh
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)


def without_devices(hh: Households, mask: np.ndarray) -> Households:
    """The table with every registered device of the households in ``mask`` removed
    (a meter-backed household trades its metered net position only)."""
    zero = {
        name: np.where(mask, np.zeros_like(getattr(hh, name)), getattr(hh, name))
        for kind in DEVICE_KINDS
        for name in kind.columns
    }
    return replace(hh, **zero)


# --- native payloads, for the emulator (the inverse of the readers) -----------------


def tasmota_payload(
    local_time: datetime, import_kwh: float, export_kwh: float, power_kw: float
) -> dict[str, Any]:
    """A Tasmota SENSOR telegram."""
    return {
        "Time": local_time.replace(tzinfo=None).isoformat(timespec="seconds"),
        "ENERGY": {
            "TotalStartTime": "2024-01-01T00:00:00",
            "Total": import_kwh,
            "ExportActive": export_kwh,
            "Power": power_kw * 1000.0,
            "Voltage": 230,
            "Current": abs(power_kw) * 1000.0 / 230.0,
            "Factor": 1.0,
        },
    }


def shelly_payloads(
    time_s: float, import_kwh: float, export_kwh: float, power_kw: float
) -> dict[str, dict[str, Any]]:
    """Shelly Pro 3EM ``status/emdata:0`` and ``status/em:0`` (with the event ``ts``)."""
    third = power_kw * 1000.0 / 3.0
    return {
        "status/emdata:0": {
            "id": 0,
            "ts": time_s,
            "total_act": import_kwh * 1000.0,
            "total_act_ret": export_kwh * 1000.0,
        },
        "status/em:0": {
            "id": 0,
            "ts": time_s,
            "a_act_power": third,
            "b_act_power": third,
            "c_act_power": third,
            "total_act_power": power_kw * 1000.0,
        },
    }


def dsmr_payload(
    local_time: datetime, import_kwh: float, export_kwh: float, power_kw: float
) -> dict[str, Any]:
    """A DSMR-reader JSON telegram (one tariff register used)."""
    return {
        "timestamp": local_time.isoformat(timespec="seconds"),
        "electricity_delivered_1": import_kwh,
        "electricity_delivered_2": 0.0,
        "electricity_returned_1": export_kwh,
        "electricity_returned_2": 0.0,
        "electricity_currently_delivered": max(power_kw, 0.0),
        "electricity_currently_returned": max(-power_kw, 0.0),
    }


def generic_payload(
    time_s: float, import_kwh: float | None, export_kwh: float | None, power_kw: float | None
) -> dict[str, Any]:
    """Our generic JSON (counters, power or both)."""
    out: dict[str, Any] = {"ts": time_s}
    if import_kwh is not None:
        out["import_kwh"] = import_kwh
    if export_kwh is not None:
        out["export_kwh"] = export_kwh
    if power_kw is not None:
        out["power_kw"] = power_kw
    return out
