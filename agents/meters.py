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

Interval energy (:class:`MeterTracker`): with counters, the difference between two
samples is spread over the intervals between them in proportion to time (a gap of
several intervals is shared out; a counter that goes backwards was reset, and the new
value is the energy since the reset). Without counters, each sample's power is taken
as the average since the previous sample (the reporting period). A sample identical to
one already taken (a meter re-sending an interval, a broker redelivering) is ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from agents.households import Households

FORMATS = ("tasmota", "shelly", "dsmr", "generic")
SUFFIXES = {
    "tasmota": ("tele/SENSOR",),
    "shelly": ("status/emdata:0", "status/em:0"),
    "dsmr": ("json",),
    "generic": ("reading",),
}


RECENT_INTERVALS = 2
"""How far back (in intervals) a repeated sample is recognised as a repeat."""
RECENT_SAMPLES = 256
"""At most this many recent samples per meter are kept for that."""


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


@dataclass
class MeterTracker:
    """Interval energy of one meter from its stream of samples.

    Parameters
    ----------
    start_s : unix time of interval 0 [s]
    interval_s : interval length [s]
    """

    start_s: float
    interval_s: float
    last: Sample | None = None
    energy: dict[int, list[float]] = field(default_factory=dict)
    resets: int = 0
    gaps: int = 0
    duplicates: int = 0
    """Samples ignored because they were identical to one already taken."""
    _recent: dict[Sample, None] = field(default_factory=dict, repr=False, compare=False)
    """The samples taken in the last :data:`RECENT_INTERVALS` intervals (at most
    :data:`RECENT_SAMPLES`), oldest first: what a re-sent interval is checked against."""

    def add(self, sample: Sample) -> None:
        """Take a sample with a time; raises :class:`MeterPayloadError` if it is stale.

        A sample identical (time, counters and power) to the last one or to a recent
        one is a repeat: it is ignored and counted in :attr:`duplicates`, never as a
        gap, a reset or energy.
        """
        if sample.time_s is None:
            raise MeterPayloadError("sample without a time")
        prev = self.last
        if sample == prev or sample in self._recent:
            self.duplicates += 1
            return
        if prev is not None and prev.time_s is not None:
            if sample.time_s < prev.time_s:
                raise MeterPayloadError("sample is older than the previous one")
            if sample.time_s == prev.time_s:
                # Shelly's em:0 (power) companion of an emdata:0 sample
                if sample.import_kwh is None and sample.export_kwh is None:
                    self._remember(sample)
                    return
                raise MeterPayloadError("sample is not newer than the previous one")
            self._spread(prev, sample)
        self.last = sample
        self._remember(sample)

    def _remember(self, sample: Sample) -> None:
        assert sample.time_s is not None
        recent = self._recent
        recent[sample] = None
        cutoff = sample.time_s - RECENT_INTERVALS * self.interval_s
        while recent:
            oldest = next(iter(recent))
            assert oldest.time_s is not None
            if oldest.time_s >= cutoff and len(recent) <= RECENT_SAMPLES:
                break
            del recent[oldest]

    def _spread(self, prev: Sample, cur: Sample) -> None:
        assert prev.time_s is not None and cur.time_s is not None
        imp = self._delta(prev.import_kwh, cur.import_kwh)
        exp = self._delta(prev.export_kwh, cur.export_kwh)
        if imp is None and exp is None:
            if cur.power_kw is None:
                return
            kwh = cur.power_kw * (cur.time_s - prev.time_s) / 3600.0
            imp, exp = max(kwh, 0.0), max(-kwh, 0.0)
        a, b = prev.time_s, cur.time_s
        if b - a > 1.5 * self.interval_s:
            self.gaps += 1
        first = math.floor((a - self.start_s) / self.interval_s + 1e-9)
        last = math.ceil((b - self.start_s) / self.interval_s - 1e-9) - 1
        for t in range(first, last + 1):
            lo = max(a, self.start_s + t * self.interval_s)
            hi = min(b, self.start_s + (t + 1) * self.interval_s)
            share = (hi - lo) / (b - a) if b > a else 0.0
            if share <= 0:
                continue
            acc = self.energy.setdefault(t, [0.0, 0.0])
            acc[0] += (imp or 0.0) * share
            acc[1] += (exp or 0.0) * share

    def _delta(self, before: float | None, after: float | None) -> float | None:
        if before is None or after is None:
            return None
        if after < before:
            self.resets += 1
            return after
        return after - before

    def covers(self, t: int) -> bool:
        """Whether the samples reach the end of interval ``t``."""
        return (
            self.last is not None
            and self.last.time_s is not None
            and self.last.time_s >= self.start_s + (t + 1) * self.interval_s - 1e-6
        )

    def take(self, t: int) -> tuple[float, float]:
        """``(import_kwh, export_kwh)`` of interval ``t``; forgets it and anything older."""
        imp, exp = self.energy.get(t, (0.0, 0.0))
        for old in [k for k in self.energy if k <= t]:
            del self.energy[old]
        return imp, exp


def as_metered(generation_kwh: np.ndarray, demand_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a meter at the grid connection sees: ``(export, import)`` [kWh]."""
    net = generation_kwh - demand_kwh
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)


def without_devices(hh: Households, mask: np.ndarray) -> Households:
    """The table with the batteries and EVs of the households in ``mask`` removed
    (a meter-backed household trades its metered net position only)."""
    zero = {
        name: np.where(mask, 0.0, getattr(hh, name))
        for name in (
            "battery_kwh",
            "battery_power_kw",
            "battery_soc_min_kwh",
            "battery_soc_max_kwh",
            "battery_soc0_kwh",
            "ev_kwh",
            "ev_charger_kw",
            "ev_departure_soc_kwh",
            "ev_soc_min_kwh",
            "ev_trip_kwh_mean",
        )
    }
    return replace(hh, ev_v2g=hh.ev_v2g & ~mask, **zero)


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
