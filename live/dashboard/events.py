"""The dashboard's pushed events: Server-Sent Events from the source's
:class:`live.dashboard.sources.EventLog`, one per interval; a reconnecting client sends
the last sequence number it saw and receives what it missed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from live.dashboard.records import json_safe
from live.dashboard.sources import Source

HEARTBEAT_S = 10.0


def event_stream(source: Source, request: Request, cursor: int) -> StreamingResponse:
    """The events after sequence number ``cursor``, then each new one as it comes."""

    async def stream() -> AsyncIterator[str]:
        seen = cursor
        yield "retry: 1000\n\n"
        # the current state first, so a new client can draw without waiting
        yield _comment(f"connected at seq {seen}")
        while True:
            batch = source.log.after(seen)
            if batch:
                for i, event in enumerate(batch):
                    full = i == len(batch) - 1
                    data = json.dumps(
                        json_safe(source.event_payload(event, full)), separators=(",", ":")
                    )
                    yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
                    seen = event.seq
                continue
            if source.log.closed or await request.is_disconnected():
                return
            if not await source.log.wait(seen, HEARTBEAT_S):
                yield _comment("keep-alive")

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _comment(text: str) -> str:
    return f": {text}\n\n"
