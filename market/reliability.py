"""Reliability scores: how well each household kept its word, over a rolling window.

Per household, over the last ``W`` intervals (``[market] reliability_window``, the
interval just settled included; fewer at the start of a run):

- ``delivery_ratio`` = Σ delivered / Σ committed export, where per interval the
  committed export is ``c⁺ = max(committed_net_kwh, 0)`` (what its orders and the
  feeder's instructions committed it to inject: its net sell orders in full, matched
  peer to peer or not, its flexible storage orders as filled, :mod:`market.settlement`)
  and the delivered energy ``min(m⁺, c⁺)`` with ``m⁺ = max(metered_net_kwh, 0)``, what
  its meter shows it injected. Injecting more than committed does not raise it (a
  surplus is not a promise kept twice); 1 when nothing was committed in the window.
- ``take_ratio``, likewise for purchases: Σ ``min(m⁻, c⁻)`` / Σ ``c⁻`` with
  ``c⁻ = max(−committed, 0)``, ``m⁻ = max(−metered, 0)``; 1 without a commitment.
  Two scores rather than one symmetric score, because the two failures differ: a
  seller short of its commitment leaves its buyers' energy to the utility (that is what
  :func:`derate` acts on), a buyer short of its purchase leaves its sellers' energy
  unabsorbed; one number would hide which side failed and would derate sellers for
  what they failed to buy.
- ``estimated_share``: the share of the window's intervals in which the household was
  settled on a substitute value (in the live market: its meter was late at the gate,
  ``book.estimated``; the batch engine's households are never late: 0).
- ``rejected_per_interval``: messages of the household the market rejected (bad
  payloads, floods, late messages), per interval of the window (live; 0 in batch).

A shortfall of at most :data:`market.orders.TINY_KWH` in an interval counts as
delivered (positions below it are never ordered, so metered and committed energy may
differ by rounding). Energies are accumulated as integers of :data:`QUANTUM_KWH` (1e-9
kWh): the window's sums are then exact whatever the order of additions and removals,
so a window rebuilt from its intervals (a restarted market, :meth:`Reliability.push`)
holds exactly the sums of one that ran through, and the scores are a deterministic
function of what each interval recorded.

The window is a ring buffer of ``W`` per-household slots and running sums: an update
subtracts the slot that leaves and adds the one that enters, ``O(n)`` per interval, no
loop over households. Corrections of an interval's metered energy after it settled
(late meter data) do not revise the scores: the interval counts as estimated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from market.orders import TINY_KWH

QUANTUM_KWH = TINY_KWH
"""The energy unit the window accumulates in (exact integer sums) [kWh]."""

FIELDS = ("committed_export", "delivered", "committed_import", "taken", "estimated", "rejected")
"""A slot's rows: energies in :data:`QUANTUM_KWH`, then the estimated flag (0/1) and
the count of rejected messages."""
_TOLERANCE = round(TINY_KWH / QUANTUM_KWH)


@dataclass(frozen=True, slots=True)
class Conduct:
    """What a household did besides its energy in one interval (arrays of length ``n``):
    settled on a substitute value (``estimated``, bool) and how many of its messages
    were rejected (``rejected``, int)."""

    estimated: np.ndarray
    rejected: np.ndarray

    @classmethod
    def none(cls, n: int) -> Conduct:
        """Nothing estimated, nothing rejected (the batch engine)."""
        return cls(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64))

    @classmethod
    def of(
        cls,
        n: int,
        estimated: Iterable[int] = (),
        rejected: Mapping[int, int] | np.ndarray | None = None,
    ) -> Conduct:
        """From the rows settled on an estimate and the rejected messages per row (a
        mapping row → count, or an array of length ``n``)."""
        est = np.zeros(n, dtype=bool)
        est[np.fromiter(estimated, dtype=np.int64)] = True
        rej = np.zeros(n, dtype=np.int64)
        if isinstance(rejected, Mapping):
            if rejected:
                rej[np.fromiter(rejected.keys(), dtype=np.int64)] = list(rejected.values())
        elif rejected is not None:
            rej[:] = np.asarray(rejected, dtype=np.int64)
        return cls(est, rej)


@dataclass(frozen=True, slots=True)
class Scores:
    """Every household's scores over the window (arrays of length ``n``; the module
    docstring defines them) and how many intervals the window holds."""

    delivery_ratio: np.ndarray
    take_ratio: np.ndarray
    estimated_share: np.ndarray
    rejected_per_interval: np.ndarray
    intervals: int


def quantize(kwh: np.ndarray) -> np.ndarray:
    """Energies [kWh] as integers of :data:`QUANTUM_KWH`."""
    return np.rint(np.asarray(kwh, dtype=np.float64) / QUANTUM_KWH).astype(np.int64)


def slot_of(
    metered_net_kwh: np.ndarray, committed_net_kwh: np.ndarray, conduct: Conduct
) -> np.ndarray:
    """One interval's contribution to the window, shape ``(len(FIELDS), n)`` int64."""
    m, c = quantize(metered_net_kwh), quantize(committed_net_kwh)
    out = np.empty((len(FIELDS), len(m)), dtype=np.int64)
    for row, (have, owe) in enumerate(((m, c), (-m, -c))):
        due = np.maximum(owe, 0)
        got = np.maximum(have, 0)
        out[2 * row] = due
        out[2 * row + 1] = np.where(due - got <= _TOLERANCE, due, np.minimum(got, due))
    out[4] = conduct.estimated
    out[5] = conduct.rejected
    return out


class Reliability:
    """The rolling window of ``n`` households' conduct over ``window`` intervals."""

    def __init__(self, n: int, window: int) -> None:
        if window < 1:
            raise ValueError(f"reliability window: {window} intervals; it must be at least 1")
        self.n, self.window = n, window
        self.ring = np.zeros((window, len(FIELDS), n), dtype=np.int64)
        self.sums = np.zeros((len(FIELDS), n), dtype=np.int64)
        self.count = 0
        """Intervals pushed since the start (the next slot is ``count % window``)."""
        self._scores = self._compute()

    def update(
        self, metered_net_kwh: np.ndarray, committed_net_kwh: np.ndarray, conduct: Conduct | None
    ) -> Scores:
        """Add one settled interval (metered and committed net injection [kWh] per
        household, its conduct; None: nothing estimated or rejected); the new scores."""
        conduct = Conduct.none(self.n) if conduct is None else conduct
        for name, a in (("estimated", conduct.estimated), ("rejected", conduct.rejected)):
            if np.shape(a) != (self.n,):
                raise ValueError(
                    f"reliability conduct: {name} has shape {np.shape(a)}, not ({self.n},)"
                )
        return self.push(slot_of(metered_net_kwh, committed_net_kwh, conduct))

    def push(self, slot: np.ndarray) -> Scores:
        """Add one interval's contribution (:func:`slot_of`); the new scores."""
        if slot.shape != self.sums.shape:
            raise ValueError(f"reliability slot of shape {slot.shape}, not {self.sums.shape}")
        i = self.count % self.window
        self.sums += slot - self.ring[i]
        self.ring[i] = slot
        self.count += 1
        self._scores = self._compute()
        return self._scores

    @property
    def scores(self) -> Scores:
        """The scores after the last interval pushed (before any: every ratio 1)."""
        return self._scores

    @property
    def last_slot(self) -> np.ndarray:
        """The contribution of the last interval pushed (zeros before any)."""
        return self.ring[(self.count - 1) % self.window]

    def _compute(self) -> Scores:
        s = self.sums
        k = min(self.count, self.window)
        return Scores(
            delivery_ratio=_ratio(s[1], s[0]),
            take_ratio=_ratio(s[3], s[2]),
            estimated_share=s[4] / k if k else np.zeros(self.n),
            rejected_per_interval=s[5] / k if k else np.zeros(self.n),
            intervals=k,
        )


def _ratio(done: np.ndarray, due: np.ndarray) -> np.ndarray:
    """``done / due``, 1 where nothing was due."""
    return np.divide(done, due, out=np.ones(len(due)), where=due > 0)


def derate(
    household: np.ndarray, is_buy: np.ndarray, energy_kwh: np.ndarray, ratio: np.ndarray
) -> np.ndarray:
    """Order energies with every sell order multiplied by its household's ``ratio``
    (its delivery ratio); buy orders unchanged."""
    return np.where(is_buy, energy_kwh, energy_kwh * ratio[household])


def slot_to_json(slot: np.ndarray) -> dict[str, list[int]]:
    """A slot for a ledger record: one list of integers per :data:`FIELDS` row."""
    return {name: row.tolist() for name, row in zip(FIELDS, slot, strict=True)}


def slot_from_json(saved: dict[str, Any], n: int) -> np.ndarray:
    """The inverse of :func:`slot_to_json`, checked against ``n`` households."""
    missing = [name for name in FIELDS if name not in saved]
    if missing:
        raise ValueError(f"reliability slot lacks {', '.join(missing)}")
    slot = np.array([saved[name] for name in FIELDS], dtype=np.int64)
    if slot.shape != (len(FIELDS), n):
        raise ValueError(f"reliability slot of shape {slot.shape}, not ({len(FIELDS)}, {n})")
    return slot
