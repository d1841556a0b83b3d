"""The ``clock`` message (DESIGN.md "MQTT contract", :mod:`live.protocol`): its payload,
written by the market's gate (:mod:`live.gate`) and read by every client; which run's
clock drives a client is :mod:`live.runfilter`'s.

``{v, run, t, interval_start, interval_minutes, gate_closes_at}``, retained, one per
interval (``gate_closes_at`` null when asked again after a reconnect); after the last
interval ``{v, run, t, done: true}``.
"""

from __future__ import annotations

import json
from typing import Any

from live.protocol import VERSION


def clock_payload(
    run: str, t: int, interval_start: str, interval_minutes: int, gate_closes_at: str | None
) -> dict[str, Any]:
    """The retained ``clock`` of interval ``t`` (``gate_closes_at`` None: asked again
    after a reconnect)."""
    return {
        "v": VERSION,
        "run": run,
        "t": t,
        "interval_start": interval_start,
        "interval_minutes": interval_minutes,
        "gate_closes_at": gate_closes_at,
    }


def read_clock(payload: bytes) -> dict[str, Any] | None:
    """A ``clock`` as the JSON object it is (None when it is not one: ignored)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def done_payload(run: str, t: int) -> dict[str, Any]:
    """The retained ``clock`` after the last interval (``t``: the one after it)."""
    return {"v": VERSION, "run": run, "t": t, "done": True}
