"""Garbage-collector tuning for the live market process: opt-in, off by default.

Set ``P2PGRID_LIVE_GC_TUNING=1`` in the environment of ``p2pgrid live`` to turn it on
(README, "Live market", tuning). It changes process-wide collector settings, so the
market applies it only when asked: never inside a test run, a notebook or another
program that embeds :class:`live.market.MarketService`.

Why it helps: every message allocates a dozen short-lived objects, so the collector's
youngest generation fills every few messages and the oldest one, which holds the whole
community and the feeder model, was traversed several times per interval. With the
tuning, the objects alive after set-up, and after each interval what outlives it (its
result, the book), are frozen out of collection, and the young generation is collected
less often (reference counting frees nearly all of it anyway).
"""

from __future__ import annotations

import gc
import os

GC_SWITCH = "P2PGRID_LIVE_GC_TUNING"


def gc_tuning() -> bool:
    """Whether the collector tuning was asked for (``P2PGRID_LIVE_GC_TUNING=1``)."""
    return os.environ.get(GC_SWITCH) == "1"


def settle_heap() -> None:
    """After set-up: freeze what is alive and collect the young generation less often."""
    if not gc_tuning():
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def freeze_interval() -> None:
    """After an interval: what outlives it is done with, out of the collector's way."""
    if gc_tuning():
        gc.freeze()
