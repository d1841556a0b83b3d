"""What every smart-meter payload format is made of: the :class:`Sample` a payload is
read into, the :class:`MeterFormat` a format module declares, and the checked field
readers its decoder uses (a number, a counter, an ISO time, a JSON object).

A format is one module (:mod:`agents.meters.tasmota`, …) that builds one
:class:`MeterFormat`; :mod:`agents.meters.formats` registers them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


class MeterPayloadError(ValueError):
    """A meter payload that cannot be read; the message says why."""


class MeterSignatureError(MeterPayloadError):
    """A payload of a natively signing format (OCMF) whose signature is missing,
    malformed, of another key, or wrong."""


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


Decode = Callable[[str, bytes | str, ZoneInfo], Sample]
"""``(suffix, payload, tz) -> Sample``; ``tz`` is the zone of a local timestamp."""
Encode = Callable[[Sample, ZoneInfo], dict[str, Any]]
"""``(sample, tz) -> {suffix: payload}``: what a device of the format sends for the
sample (the inverse of :data:`Decode`; a field that is None in the sample is left out);
a payload is a JSON object (a dict) or, for a format that is not JSON, its text."""
Verify = Callable[[str, bytes | str, str], None]
"""``(suffix, payload, public key) -> None``: a format whose devices sign their payloads
themselves (OCMF) checks a payload's signature under the meter's ``public_key``, raising
:class:`MeterSignatureError` when it does not hold (:class:`MeterPayloadError` when the
payload is not of the format at all)."""
Sign = Callable[[dict[str, Any], Any], dict[str, Any]]
"""``(encoded, private key) -> encoded``: the emulator's side of :data:`Verify`."""
SuffixOf = Callable[[bytes], str]
"""``(payload) -> suffix``: which of a natively signing format's suffixes a payload was
sent on, told from its bytes (the audit ledger keeps the bytes, not the topic)."""


@dataclass(frozen=True)
class MeterFormat:
    """One native payload format, on ``meters/<name>/<id>/<suffix>``.

    name : the format's name in topics and in ``[[live.meters]] format``
    suffixes : the topic suffixes that carry energy (read by ``decode``)
    decode, encode : payload → :class:`Sample`, and the emulator's inverse
    companions : other suffixes a real device sends (by exact suffix), ignored by the
        market without reporting or counting them against the meter; any other suffix
        is reported (a Shelly Pro EM's ``status/em1:0`` is not read, and says so)
    companion_prefixes : … and by prefix (Tasmota's ``stat/`` command results)
    online : ``(suffix, {payload: online})``: where the device's MQTT last will says
        whether it is online (one of the companions), None if it has none
    verify, sign, suffix_of : for a format whose devices sign natively (:data:`Verify`,
        :data:`Sign`, :data:`SuffixOf`); None for the others, which sign by wrapping
        their JSON (:mod:`live.signatures`)
    """

    name: str
    suffixes: tuple[str, ...]
    decode: Decode
    encode: Encode
    companions: tuple[str, ...] = ()
    companion_prefixes: tuple[str, ...] = ()
    online: tuple[str, Mapping[str, bool]] | None = None
    verify: Verify | None = None
    sign: Sign | None = None
    suffix_of: SuffixOf | None = None

    def read(self, suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
        """The payload on ``suffix`` as a sample; raises :class:`MeterPayloadError`."""
        if suffix not in self.suffixes:
            raise MeterPayloadError(
                f"{self.name} meters publish on {', '.join(self.suffixes)}, not {suffix!r}"
            )
        try:
            return checked(self.decode(suffix, payload, tz))
        except KeyError as exc:  # pragma: no cover - every key is checked before use
            raise MeterPayloadError(f"missing {exc}") from None

    def is_companion(self, suffix: str) -> bool:
        """Whether ``suffix`` is a message a real device sends besides its energy."""
        if suffix in self.suffixes:
            return False
        return suffix in self.companions or suffix.startswith(self.companion_prefixes)

    def online_state(self, suffix: str, payload: bytes) -> bool | None:
        """Whether a last-will message says the device is online (None: not such a
        message or not a payload it sends)."""
        if self.online is None or suffix != self.online[0]:
            return None
        return self.online[1].get(payload.decode("utf-8", "replace").strip().strip('"'))


# --- checked field readers for the decoders ----------------------------------------


def number(value: Any, name: str) -> float:
    """A finite JSON number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeterPayloadError(f"{name} must be a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise MeterPayloadError(f"{name} must be finite, got {value!r}")
    return x


def counter(value: Any, name: str, scale: float = 1.0) -> float:
    """A cumulative counter times ``scale``: a number, not negative."""
    x = number(value, name) * scale
    if x < 0:
        raise MeterPayloadError(f"{name} is a counter and cannot be negative ({value!r})")
    return x


def iso_time(value: Any, name: str, tz: ZoneInfo) -> float:
    """An ISO timestamp as unix time (local in ``tz`` when it has no offset)."""
    if not isinstance(value, str):
        raise MeterPayloadError(f"{name} must be an ISO timestamp string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise MeterPayloadError(f"{name}: {value!r} is not an ISO timestamp") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.timestamp()


def json_object(payload: bytes | str) -> dict[str, Any]:
    """The payload as a JSON object."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # also 4,300-digit integers, deep nesting
        raise MeterPayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MeterPayloadError("payload must be a JSON object")
    return data


def checked(sample: Sample) -> Sample:
    """The sample, unless it carries neither energy counters nor power."""
    if sample.import_kwh is None and sample.export_kwh is None and sample.power_kw is None:
        raise MeterPayloadError("payload carries neither energy counters nor power")
    return sample
