"""Where each household's inputs of an interval came from: the raw signed messages
(exactly the bytes received) and how many of its messages the market rejected.

The ingest (:mod:`live.ingest`) keeps, per household row, the raw bytes of the signed
reading and orders message it accepted for the open interval (a later message replaces
an earlier one, as in the book), every signed meter sample its meter's tracker took as
energy since the previous interval was settled (a repeat, or a power sample beside
counters, is no energy and not kept), and a count of the messages rejected on its
topics (its ``agents/<id>/…`` topics, its meter's ``meters/…/<meter id>/…``; floods
included). Only signed messages (a JSON object with ``"sig"``,
:mod:`scenarios.audit.keys`) are kept: what the audit ledger's ``private/`` keeps is what
anyone can check again against the sender's key; an unsigned message proves nothing
beyond what the input leaf already says.
It keeps references to the payloads only (no copy, no hashing on the network thread);
:meth:`Provenance.take` hands them over when the interval is settled (under the ingest
lock, O(1)) and :meth:`Taken.messages` hashes them on the market's thread. Nothing is
kept past the interval's commit.

The hashes are the SHA-256 of the raw bytes (lowercase hex): the names of the files in
the audit ledger's ``private/`` folder and the ``signed`` list of each household's
input leaf (``scenarios/audit``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from scenarios.audit.canonical import SIGNATURE_FIELD

_SIG = f'"{SIGNATURE_FIELD}"'.encode()


def signed(data: Mapping[str, Any]) -> bool:
    """Whether a parsed message carries a signature (checked by :mod:`live.signatures`
    where the scenario registers keys)."""
    return SIGNATURE_FIELD in data


def signed_raw(payload: bytes) -> bool:
    """Whether a raw JSON payload (a meter's native one, as received) is an object with a
    signature at its top level (parsed only when it names one)."""
    if _SIG not in payload:
        return False
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and SIGNATURE_FIELD in data


@dataclass(frozen=True)
class InputMessages:
    """The raw messages of one settled interval, by household."""

    signed: dict[str, list[str]]
    """Agent id → the SHA-256 (hex) of each signed message its inputs came from: its
    reading, its orders, then its meter's samples in the order taken."""
    raw: dict[str, bytes]
    """SHA-256 (hex) → the message's bytes as received."""
    rejected: dict[str, int]
    """Agent id → how many of its messages were rejected (only households with any)."""


@dataclass
class Taken:
    """What :meth:`Provenance.take` handed over (raw payloads by household row)."""

    readings: dict[int, bytes] = field(default_factory=dict)
    orders: dict[int, bytes] = field(default_factory=dict)
    samples: dict[int, list[bytes]] = field(default_factory=dict)
    rejected: Counter[int] = field(default_factory=Counter)

    def messages(self, ids: list[str]) -> InputMessages:
        """Hashed, by agent id (``ids``: the agent id of each row), rows in order."""
        signed: dict[str, list[str]] = {}
        raw: dict[str, bytes] = {}
        rows = sorted(set(self.readings) | set(self.orders) | set(self.samples))
        for row in rows:
            payloads = [
                *((self.readings[row],) if row in self.readings else ()),
                *((self.orders[row],) if row in self.orders else ()),
                *self.samples.get(row, ()),
            ]
            hashes = []
            for payload in payloads:
                h = hashlib.sha256(payload).hexdigest()
                raw[h] = payload
                hashes.append(h)
            signed[ids[row]] = hashes
        rejected = {ids[row]: k for row, k in sorted(self.rejected.items()) if k}
        return InputMessages(signed, raw, rejected)


class Provenance(Taken):
    """The raw messages of the interval being collected (guarded by the ingest lock)."""

    def reading(self, row: int, payload: bytes, is_signed: bool) -> None:
        """The reading accepted for ``row`` (replacing an earlier one)."""
        if is_signed:
            self.readings[row] = payload
        else:
            self.readings.pop(row, None)

    def order(self, row: int, payload: bytes, is_signed: bool) -> None:
        """The orders message accepted for ``row`` (replacing an earlier one)."""
        if is_signed:
            self.orders[row] = payload
        else:
            self.orders.pop(row, None)

    def sample(self, row: int, payload: bytes) -> None:
        """A meter sample of ``row``'s meter taken as energy (kept when signed)."""
        if signed_raw(payload):
            self.samples.setdefault(row, []).append(payload)

    def reject(self, row: int) -> None:
        self.rejected[row] += 1

    def take(self) -> Taken:
        """Everything kept so far (emptied here): called when an interval is settled."""
        taken = Taken(self.readings, self.orders, self.samples, self.rejected)
        self.readings, self.orders, self.samples, self.rejected = {}, {}, {}, Counter()
        return taken
