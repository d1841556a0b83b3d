"""The book of the interval being collected: what the ingest (:mod:`live.ingest`) has
accepted for it, and the counts of what it dropped or did not report one by one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from live.protocol import Order, Reading


@dataclass
class IntervalBook:
    """What has been accepted for the interval being collected."""

    t: int
    readings: dict[int, Reading] = field(default_factory=dict)
    orders: dict[int, list[Order]] = field(default_factory=dict)
    accepted: dict[str, bytes] = field(default_factory=dict)
    """The payload last taken from each reading and orders topic: a byte-identical copy
    arriving after the gate closed is a duplicate (:meth:`live.ingest.Ingest.on_agent`)."""
    messages: Counter[str] = field(default_factory=Counter)
    order_messages: int = 0
    inflight: Counter[str] = field(default_factory=Counter)
    """Messages per sender handed to the verifier pool and not yet back
    (:meth:`live.rejections.Rejections.flooding`)."""
    closed: bool = False
    flooded: Counter[str] = field(default_factory=Counter)
    """Messages dropped per sender beyond its limit."""
    reports: int = 0
    unreported: Counter[str] = field(default_factory=Counter)
    """Rejections per category beyond the interval's report budget."""
    flooded_reported: Counter[str] = field(default_factory=Counter)
    unreported_reported: Counter[str] = field(default_factory=Counter)
    dropped_reported: bool = False
    """What :meth:`Ingest.report_dropped` has reported (at gate closure)."""
    estimated: set[int] = field(default_factory=set)
    """Meter-backed households settled with an estimate (their meter was late)."""
    rejected: Counter[int] = field(default_factory=Counter)
    """Messages rejected per household row (on its topic, or from its meter), besides
    the flood drops counted in :attr:`flooded` (:meth:`Ingest.rejected_rows`)."""
    cleared: bool = False
    """Whether the interval has been cleared: its rejections are counted; one decided
    later counts in the next interval (:meth:`Rejections.count_against`)."""
