"""The raw signed messages an input leaf references (``private/<sha256>.json``, exactly
the bytes the market received) and their check, as ``ledger verify`` and ``ledger
dispute`` make it.

Two kinds, told apart by their bytes:

- a JSON object carrying ``"sig"`` (a reading, an orders message, a wrapped meter
  sample): Ed25519 under the key of the household or of its meter, the key id the
  signature names being one of those (:func:`check_raw`, :mod:`scenarios.audit.keys`);
- anything else, in the leaf of a household whose meter signs natively (OCMF): the
  meter's record as it sent it (``OCMF|…|…``, or an OCPP ``SignedMeterValue``), checked
  by the same function as at the market's door (the format's ``verify``,
  :mod:`agents.meters.ocmf`) under the meter's ``[[live.meters]] public_key`` in the
  scenario the ledger recorded (``scenario.json``, whose digest the genesis holds),
  never a key the record carries; then read by the format's own decoder into the
  :class:`~agents.meters.base.Sample` whose registers :mod:`scenarios.audit.registers`
  compares with the input leaves' metered energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from agents.meters.base import MeterPayloadError, Sample
from agents.meters.formats import meter_format
from scenarios.audit.keys import Registry, SignatureError
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import Meter


def check_raw(raw: bytes, expected: set[str], registry: Registry) -> str:
    """Check one raw signed message (a JSON payload with its ``"sig"``) against the keys
    it may be signed with; returns the key id that signed it, raises SignatureError."""
    payload = _json(raw)
    if payload is NOT_JSON:
        raise SignatureError("not a JSON payload")
    return _check_payload(payload, expected, registry)


NOT_JSON = object()
"""What :func:`_json` returns for bytes that are not JSON (``null`` is JSON)."""


def _json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; :data:`NOT_JSON` if it is not (a natively signed record)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOT_JSON


def _check_payload(payload: Any, expected: set[str], registry: Registry) -> str:
    sig = payload.get("sig") if isinstance(payload, dict) else None
    key = sig.get("key") if isinstance(sig, dict) else None
    if key not in expected:
        raise SignatureError(f"signed by {key!r}, not by {sorted(expected)}")
    registry.verify(payload, str(key))
    return str(key)


@dataclass(frozen=True)
class Checked:
    """A message whose signature holds: the key id that signed it, and for a natively
    signed meter record its reading (None for a message signed by wrapping)."""

    key: str
    sample: Sample | None = None


class Messages:
    """The check of the raw messages of a ledger's scenario (its keys and its meters)."""

    def __init__(self, scenario: Scenario, registry: Registry) -> None:
        self.registry = registry
        self.tz = ZoneInfo(scenario.simulation.timezone)
        self.keys: dict[str, set[str]] = {}
        """Agent id → the key ids its messages may be signed with (its own, its meter's)."""
        self.native: dict[str, Meter] = {}
        """Agent id → its meter, when that meter's format signs natively."""
        for m in scenario.live.meters:
            self.keys.setdefault(m.household, set()).add(m.id)
            if meter_format(m.format).verify is not None:
                self.native[m.household] = m

    def expected(self, agent: str) -> set[str]:
        return {agent} | self.keys.get(agent, set())

    def check(self, agent: str, raw: bytes) -> Checked:
        """Check ``raw``, referenced by ``agent``'s input leaf (see the module); raises
        :class:`SignatureError` saying what does not hold."""
        meter = self.native.get(agent)
        if meter is None:
            return Checked(check_raw(raw, self.expected(agent), self.registry))
        payload = _json(raw)  # parsed once: a wrapped message, or the meter's own record
        if isinstance(payload, dict) and "sig" in payload:
            return Checked(_check_payload(payload, self.expected(agent), self.registry))
        fmt = meter_format(meter.format)
        assert fmt.verify is not None and fmt.suffix_of is not None
        suffix = fmt.suffix_of(raw)
        try:
            fmt.verify(suffix, raw, meter.public_key)
            sample = fmt.read(suffix, raw, self.tz)
        except MeterPayloadError as exc:
            raise SignatureError(f"{meter.format} record of meter {meter.id!r}: {exc}") from None
        return Checked(meter.id, sample)
