"""What a worker of the verifier pool (:mod:`live.verifier`) does with one message: the
same checks and the same decoding as the market's in-process path, through the same
functions (:func:`live.protocol.parse_json`, :meth:`live.signatures.Signatures.check`,
:func:`live.signatures.check_run`, :func:`live.protocol.read_reading` /
:func:`live.protocol.read_orders`; a meter sample: :meth:`Signatures.meter_payload`),
so that the market's process only takes the result into its book.

An item (:data:`Item`) is ``(kind, key_id, t, body)``: ``kind`` :data:`READING`,
:data:`ORDERS` or :data:`METER` + the meter topic's suffix; ``key_id`` the identity its
topic names (the agent, or the meter's id); ``t`` the interval open when it arrived;
``body`` the raw MQTT payload. A batch goes to a worker as one bytes blob
(:func:`pack`: the bodies concatenated, their lengths, kinds, ids and intervals beside),
not as one pickled object per message, and comes back as one list of compact verdicts
(:data:`Verdict`): plain tuples of numbers, no dataclass to rebuild field by field.
"""

from __future__ import annotations

import hashlib
import operator
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from live.protocol import Reading, Rejected, parse_json, read_orders, read_reading
from live.signatures import SignatureRejected, Signatures, check_run
from scenarios.audit.keys import Registry
from scenarios.config.schema_live import LiveSection

READING, ORDERS, METER = "r", "o", "m"
"""An item's kind: a reading, an orders message, a meter sample (``"m" + suffix``)."""

Item = tuple[str, str, int, bytes]
SEP = "\0"
"""Joins a batch's kinds and ids (an MQTT topic holds no U+0000)."""
Record = tuple[Any, ...]
Verdict = str | tuple[bool, str, Any]
"""A message's verdict: the reason it is rejected (``str``, as the in-process path
words it), or ``(signed, sha256 hex of the body if signed, record)``. The record of a
reading is the :class:`live.protocol.Reading`'s fields in order (``Reading(*record)``),
of an orders message one ``(is_buy, energy_kwh, price_per_kwh, kind)`` per order
(``Order(*o)``), of a meter sample the payload to decode (its ``"sig"`` removed),
or None when that is the body itself."""


@dataclass(frozen=True)
class Limits:
    """The bounds a reading or orders message is read under (the ingest's)."""

    max_payload_bytes: int
    max_kwh: float
    max_price_per_kwh: float
    max_orders_per_message: int

    @classmethod
    def of(cls, live: LiveSection, interval_hours: float) -> Limits:
        return cls(
            live.max_payload_bytes,
            live.max_power_kw * interval_hours,
            live.max_price_per_kwh,
            live.max_orders_per_message,
        )


_reading_fields = operator.attrgetter(*(f.name for f in fields(Reading)))
"""A reading's fields in order, as a tuple (``Reading(*record)`` rebuilds it)."""


@dataclass(frozen=True)
class Checker:
    """One message's check and decoding (a worker's, or the market's own fallback)."""

    signatures: Signatures
    limits: Limits
    live: LiveSection

    def verdict(self, item: Item, run: str | None) -> Verdict:
        """``item``'s verdict (:data:`Verdict`); ``run``: the market's run id."""
        kind, key_id, t, body = item
        try:
            if kind[0] == METER:
                return self._meter(kind[1:], key_id, body)
            lim = self.limits
            data = parse_json(body, lim.max_payload_bytes)
            signed = self.signatures.check(data, key_id)
            check_run(data, run)
            record: Record
            if kind == READING:
                record = _reading_fields(read_reading(data, key_id, t, lim.max_kwh))
            else:
                orders = read_orders(
                    data,
                    key_id,
                    t,
                    lim.max_kwh,
                    lim.max_price_per_kwh,
                    lim.max_orders_per_message,
                )
                record = tuple((o.is_buy, o.energy_kwh, o.price_per_kwh, o.kind) for o in orders)
        except Rejected as exc:
            return str(exc)
        except Exception as exc:  # as the in-process path reports it
            return f"internal error handling the message: {exc!r}"
        return signed, hashlib.sha256(body).hexdigest() if signed else "", record

    def _meter(self, suffix: str, meter_id: str, body: bytes) -> Verdict:
        meter = next(m for m in self.live.meters if m.id == meter_id)
        try:
            payload, signed = self.signatures.meter_payload(body, meter, suffix)
        except SignatureRejected as exc:
            return str(exc)
        except Exception as exc:  # as the in-process path reports it
            return f"internal error handling the message: {exc!r}"
        return signed, "", None if payload is body else payload

    def batch(self, items: list[Item], run: str | None) -> tuple[list[Verdict], float]:
        """The verdicts of ``items`` and the CPU seconds they took."""
        began = time.process_time()
        out = [self.verdict(item, run) for item in items]
        return out, time.process_time() - began


def pack(items: list[Item]) -> tuple[str, str, list[int], list[int], bytes]:
    """A batch as a few objects: kinds and ids (joined by :data:`SEP`), intervals, body lengths
    and the bodies concatenated (:func:`unpack` reverses it)."""
    kinds, ids, ts, bodies = zip(*items, strict=True) if items else ((), (), (), ())
    return (
        SEP.join(kinds),
        SEP.join(ids),
        list(ts),
        [len(b) for b in bodies],
        b"".join(bodies),
    )


def unpack(packed: tuple[str, str, list[int], list[int], bytes]) -> list[Item]:
    """The items :func:`pack` packed."""
    kinds, ids, ts, lengths, blob = packed
    if not lengths:
        return []
    out, at = [], 0
    for kind, key_id, t, n in zip(kinds.split(SEP), ids.split(SEP), ts, lengths, strict=True):
        out.append((kind, key_id, t, blob[at : at + n]))
        at += n
    return out


_CHECKER: Checker | None = None
"""A worker's check, loaded once by :func:`load`."""


def load(live: LiveSection, interval_hours: float) -> None:
    """A worker's initializer: its key registry (loaded once) and rules."""
    global _CHECKER
    reg = Registry.load(Path(live.keys)) if live.keys else None
    _CHECKER = checker(live, interval_hours, Signatures(reg, live.require_signatures))


def checker(live: LiveSection, interval_hours: float, signatures: Signatures) -> Checker:
    return Checker(signatures, Limits.of(live, interval_hours), live)


def verify_batch(
    packed: tuple[str, str, list[int], list[int], bytes], run: str | None
) -> tuple[list[Verdict], float]:
    """A worker: :meth:`Checker.batch` of a :func:`pack`-ed batch."""
    if _CHECKER is None:
        raise RuntimeError("verify_batch runs in a worker started with load()")
    return _CHECKER.batch(unpack(packed), run)
