"""Where each household's inputs of an interval came from: the raw signed messages,
exactly the bytes received.

The ingest (:mod:`live.ingest`) keeps, per household row, the raw bytes of the signed
reading and orders message it accepted for the open interval (a later message replaces
an earlier one, as in the book: an unsigned one drops the signed one it replaces), and
every signed meter sample its meter's tracker took as energy since the previous
interval was settled (a repeat, or a power sample beside counters, is no energy and not
kept). Only signed messages (their signature checked on arrival, :mod:`live.signatures`)
are kept: what the audit ledger's ``private/`` holds is what anyone can check again
against the sender's key (``p2pgrid ledger verify``); an unsigned message proves nothing
beyond what the input leaf already says. A meter that signs natively (an OCMF record, on
``…/record`` or inside an OCPP ``SignedMeterValue``, :mod:`agents.meters.ocmf`) is kept
the same way, its record exactly as received, whether it was checked in the ingest or
in the verifier pool (:mod:`live.verifier`): ``ledger verify`` checks it again with the
meter's ``[[live.meters]] public_key`` and compares its registers with the metered
energy of the input leaves (:mod:`scenarios.audit.messages`,
:mod:`scenarios.audit.registers`).

Only references to the payloads are kept (no copy, no hashing on the network thread);
:meth:`Provenance.take` hands them over when the interval is settled (under the ingest
lock, O(1)) and :meth:`Taken.messages` hashes them on the market's thread (not those the
verifier pool's workers hashed already, :mod:`live.verifier`), with the interval's
rejected messages per household (:meth:`live.ingest.Ingest.rejected_rows`, the count
the reliability scores use too). Nothing is kept past the interval's commit.

The hashes are the SHA-256 of the raw bytes (lowercase hex): the names of the files in
the audit ledger's ``private/`` folder and the ``signed`` list of each household's
input leaf (``scenarios/audit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field


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
    digests: dict[bytes, str] = field(default_factory=dict)
    """SHA-256 (hex) of payloads already hashed (by the verifier pool's workers)."""

    def messages(self, ids: list[str], rejected: Mapping[int, int] | None = None) -> InputMessages:
        """Hashed, by agent id (``ids``: the agent id of each row), rows in order, with
        the ``rejected`` messages per row."""
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
                h = self.digests.get(payload) or hashlib.sha256(payload).hexdigest()
                raw[h] = payload
                hashes.append(h)
            signed[ids[row]] = hashes
        counts = {ids[row]: k for row, k in sorted((rejected or {}).items()) if k}
        return InputMessages(signed, raw, counts)


class Provenance(Taken):
    """The raw messages of the interval being collected (guarded by the ingest lock)."""

    def reading(self, row: int, payload: bytes, is_signed: bool, digest: str = "") -> None:
        """The reading accepted for ``row`` (replacing an earlier one; ``digest``: its
        SHA-256 if known)."""
        if is_signed:
            self.readings[row] = payload
            if digest:
                self.digests[payload] = digest
        else:
            self.readings.pop(row, None)

    def order(self, row: int, payload: bytes, is_signed: bool, digest: str = "") -> None:
        """The orders message accepted for ``row`` (replacing an earlier one)."""
        if is_signed:
            self.orders[row] = payload
            if digest:
                self.digests[payload] = digest
        else:
            self.orders.pop(row, None)

    def sample(self, row: int, payload: bytes) -> None:
        """A signed sample of ``row``'s meter, taken as energy."""
        self.samples.setdefault(row, []).append(payload)

    def take(self) -> Taken:
        """Everything kept so far (emptied here): called when an interval is settled."""
        taken = Taken(self.readings, self.orders, self.samples, self.digests)
        self.readings, self.orders, self.samples, self.digests = {}, {}, {}, {}
        return taken
