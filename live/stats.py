"""What the live market counts while it runs (:attr:`live.market.MarketService.stats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IngestWindow:
    """One interval's collection: when the gate opened and closed (wall clock, epoch
    seconds) and how many messages were accepted in between."""

    t: int
    opened_at: float
    closed_at: float
    messages: int


@dataclass
class MarketStats:
    intervals: int = 0
    readings: int = 0
    order_messages: int = 0
    orders: int = 0
    meter_samples: int = 0
    meter_companions: int = 0
    """Messages a real meter sends besides its energy (Tasmota STATE, LWT, …), ignored."""
    corrections: int = 0
    """Settlements re-issued with the late meters' true energy."""
    checkpoints: int = 0
    """Audit ledger checkpoints published (each followed by every household's bill)."""
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    """Byte-identical copies of a reading or orders the interval before had taken,
    arriving after its gate closed (dropped, not rejected)."""
    behind: int = 0
    max_lag_s: float = 0.0
    clear_s: list[float] = field(default_factory=list)
    republished: int = 0
    unattended: int = 0
    """Intervals in which no household or meter sent anything the market accepted."""
    ingest: list[IngestWindow] = field(default_factory=list)
