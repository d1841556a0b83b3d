"""The meter format registry: every native payload format the market reads and the
emulator writes, in one table.

=========  ==============================================  ==========================
format     energy on (after ``meters/<format>/<id>/``)     module
=========  ==============================================  ==========================
tasmota    ``tele/SENSOR``                                  :mod:`agents.meters.tasmota`
shelly     ``status/emdata:0``, ``status/em:0``             :mod:`agents.meters.shelly`
dsmr       ``json`` (DSMR-reader's ``dsmr/json``)           :mod:`agents.meters.dsmr`
generic    ``reading``                                      :mod:`agents.meters.generic`
ocmf       ``record``, ``signed_meter_value`` (signed)       :mod:`agents.meters.ocmf`
=========  ==============================================  ==========================

Each module declares one :class:`~agents.meters.base.MeterFormat`: its name, the topic
suffixes that carry energy, the companion messages a real device also sends, where its
last will says whether it is online, how a payload is decoded into a
:class:`~agents.meters.base.Sample` and how the emulator encodes one. A new format is one
such module plus one :func:`register` call; the scenario schema (``[[live.meters]]
format``), ``p2pgrid meters emulate --format``, the emulator and the live market all read
:data:`FORMATS`.

Power is positive when the household imports. What a real device sends besides its
energy is recognised by :func:`is_companion`: the market ignores it without reporting or
counting it against the meter, except that a last will saying the device is offline
(:func:`online_state`) spares the market waiting for it at a gate until it sends again.

Interval energy from the samples: :mod:`agents.meters.tracker`.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from agents.meters.base import MeterFormat, MeterPayloadError, MeterSignatureError, Sample
from agents.meters.dsmr import DSMR
from agents.meters.generic import GENERIC
from agents.meters.ocmf import OCMF
from agents.meters.shelly import SHELLY
from agents.meters.tasmota import TASMOTA

FORMATS: dict[str, MeterFormat] = {}
"""Every registered format by name, in registration order."""


def register(fmt: MeterFormat) -> MeterFormat:
    """Add a format (after those registered so far); returns it."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", fmt.name):
        raise ValueError(f"meter format name {fmt.name!r} is not one MQTT topic level")
    if fmt.name in FORMATS:
        raise ValueError(f"meter format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(fmt: MeterFormat) -> None:
    """Remove a registered format."""
    if FORMATS.get(fmt.name) is not fmt:
        raise ValueError(f"meter format {fmt.name!r} is not registered")
    del FORMATS[fmt.name]


def format_names() -> tuple[str, ...]:
    """The registered formats' names, in registration order."""
    return tuple(FORMATS)


def meter_format(name: str) -> MeterFormat:
    """The registered format ``name``; raises :class:`MeterPayloadError` naming the
    registered ones."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise MeterPayloadError(
            f"unknown meter format {name!r} (known: {', '.join(format_names())})"
        )
    return fmt


def read_meter(fmt: str, suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A ``fmt`` payload on ``suffix`` as a sample; raises :class:`MeterPayloadError`
    with the reason."""
    return meter_format(fmt).read(suffix, payload, tz)


def is_companion(fmt: str, suffix: str) -> bool:
    """Whether ``suffix`` is a message a real ``fmt`` device sends besides its energy."""
    known = FORMATS.get(fmt)
    return known is not None and known.is_companion(suffix)


def online_state(fmt: str, suffix: str, payload: bytes) -> bool | None:
    """Whether a device's last-will message says it is online (None: not such a message
    or not a payload it sends)."""
    known = FORMATS.get(fmt)
    return None if known is None else known.online_state(suffix, payload)


for _fmt in (TASMOTA, SHELLY, DSMR, GENERIC, OCMF):
    register(_fmt)

__all__ = [
    "FORMATS",
    "MeterFormat",
    "MeterPayloadError",
    "MeterSignatureError",
    "Sample",
    "format_names",
    "is_companion",
    "meter_format",
    "online_state",
    "read_meter",
    "register",
    "unregister",
]
