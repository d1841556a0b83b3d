"""The dashboard's FastAPI app: one offline page, a read-only REST API, pushed events.

Routes (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

- ``GET /`` — the page; ``/static/plotly.min.js`` is served from the installed plotly
  package, so the page loads nothing from outside the server.
- ``GET /api/runs``, ``/api/meta``, ``/api/status`` — what is being shown.
- ``GET /api/kpis``, ``/api/intervals``, ``/api/intervals/{t}``,
  ``/api/intervals/{t}/book``, ``/api/intervals/{t}/feeder`` — the market and feeder;
  ``/api/feeder/map`` — the feeder map's plotly figure (drawn once; each feeder state
  then carries ``map``, its colours for ``Plotly.restyle``: :mod:`live.dashboard.feeder_map`).
- ``GET /api/households``, ``/api/households/{agent_id}``, ``/api/trades`` (paged).
- ``GET /api/events`` — Server-Sent Events, one per interval; a reconnecting client
  sends ``Last-Event-ID`` (browsers do) or ``?since=SEQ`` and receives what it missed.

Tables come as JSON or CSV (``?format=csv`` or ``Accept: text/csv``). Bad parameters
get a 4xx with a message. Only GET exists: the dashboard is read-only. With a token
(required when bound beyond the loopback, see :mod:`live.dashboard.server`) every
request needs it: ``Authorization: Bearer TOKEN``, ``?token=TOKEN`` (the page then sets
a cookie so its own requests carry it) or that cookie.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import plotly
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles

from live.dashboard.api_docs import render_api_docs
from live.dashboard.events import event_stream
from live.dashboard.guard import install_guard
from live.dashboard.records import json_safe
from live.dashboard.responses import (
    Format,
    Unavailable,
    as_frame,
    csv_response,
    frame_records,
    wants_csv,
)
from live.dashboard.sources import MAX_T, Source

STATIC_DIR = Path(str(files("live.dashboard") / "static"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

FormatQuery = Annotated[
    Format | None,
    Query(description="Response format; default JSON, or CSV when `Accept: text/csv`."),
]
TQuery = Annotated[
    int | None,
    Query(ge=0, le=MAX_T, description="Interval index; default the newest visible interval."),
]


def create_app(source: Source, token: str | None = None) -> FastAPI:
    """The dashboard app over ``source``; with ``token``, every request must carry it."""
    app = FastAPI(
        title="p2pgrid dashboard",
        version="1",
        description="Read-only view of a p2pgrid market: a finished run or a live market.",
        # Swagger UI and ReDoc load from a CDN and run inline script, which the page's
        # content security policy blocks: /docs is rendered here instead (api_docs)
        docs_url=None,
        redoc_url=None,
    )
    app.state.source = source

    install_guard(app, token)

    # ------------------------------------------------------------------ helpers
    def resolve_t(t: int | None) -> int:
        latest = source.latest_t()
        if t is None:
            if latest < 0:
                raise Unavailable("no interval yet: the market has not cleared one")
            return latest
        if not source.has_interval(t):
            if latest < 0:
                raise Unavailable(f"interval {t} is not available: no interval yet")
            raise Unavailable(f"interval {t} is not available (intervals 0..{latest} are)")
        return t

    # ------------------------------------------------------------------ page
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(render_api_docs(app.openapi()))

    # ------------------------------------------------------------------ API
    @app.get("/api/runs", summary="What this dashboard shows (one run or one live market)")
    async def runs(request: Request, format: FormatQuery = None) -> Any:
        rows = [{**source.meta(), **source.status()}]
        return csv_response(as_frame(rows), "runs") if wants_csv(request, format) else rows

    @app.get("/api/meta", summary="Name, tariffs, limits and size of the market")
    async def meta() -> dict[str, Any]:
        return json_safe(source.meta())

    @app.get("/api/status", summary="State of the source (replaying, connected, …)")
    async def status() -> dict[str, Any]:
        return {**source.status(), "seq": source.log.last_seq}

    @app.get("/api/kpis", summary="KPIs over the intervals up to t")
    async def kpis(request: Request, t: TQuery = None, format: FormatQuery = None) -> Any:
        data = json_safe(source.kpis(resolve_t(t)))
        if wants_csv(request, format):
            return csv_response(
                pd.DataFrame({"kpi": list(data), "value": list(data.values())}), "kpis"
            )
        return data

    @app.get("/api/intervals", summary="Interval rows (community totals, price, grid)")
    async def intervals(
        request: Request,
        start: Annotated[int, Query(ge=0, le=MAX_T)] = 0,
        stop: Annotated[int | None, Query(ge=0, le=MAX_T)] = None,
        format: FormatQuery = None,
    ) -> Any:
        if stop is not None and stop < start:
            raise HTTPException(422, f"stop ({stop}) must not be below start ({start})")
        rows = source.interval_rows(start, MAX_T if stop is None else stop)
        return csv_response(as_frame(rows), "intervals") if wants_csv(request, format) else rows

    @app.get("/api/intervals/{t}", summary="One interval row")
    async def interval(
        request: Request, t: Annotated[int, PathParam(ge=0, le=MAX_T)], format: FormatQuery = None
    ) -> Any:
        rows = source.interval_rows(resolve_t(t), t)
        return (
            csv_response(as_frame(rows), f"interval-{t}") if wants_csv(request, format) else rows[0]
        )

    @app.get("/api/intervals/{t}/book", summary="Supply and demand curves of interval t")
    async def book(
        request: Request, t: Annotated[int, PathParam(ge=0, le=MAX_T)], format: FormatQuery = None
    ) -> Any:
        data = source.book(resolve_t(t))
        if data is None:
            raise Unavailable(f"no order book for interval {t}")
        if wants_csv(request, format):
            parts = [pd.DataFrame({"side": side, **data[side]}) for side in ("demand", "supply")]
            return csv_response(pd.concat(parts, ignore_index=True), f"book-{t}")
        return json_safe(data)

    @app.get(
        "/api/intervals/{t}/feeder",
        summary="Feeder state of interval t: bus voltages, line loadings, nodal prices",
    )
    async def feeder(
        request: Request,
        t: Annotated[int, PathParam(ge=0, le=MAX_T)],
        table: Annotated[
            Literal["buses", "lines"], Query(description="Which table to return as CSV.")
        ] = "buses",
        format: FormatQuery = None,
    ) -> Any:
        data = source.feeder_view(resolve_t(t))
        if data is None:
            raise Unavailable(
                "no feeder state: this run or market has no grid check "
                "(or does not publish per-bus values)"
            )
        if wants_csv(request, format):
            return csv_response(pd.DataFrame(data[table]), f"feeder-{table}-{t}")
        return json_safe(data)

    @app.get("/api/feeder/map", summary="The feeder map (a plotly figure) showing interval t")
    def feeder_map(t: TQuery = None) -> Any:
        # a plain def: the first call may build the layout (seconds for a SimBench grid),
        # on the server's worker threads, not on its event loop
        if source.map is None:
            raise Unavailable("no feeder map: this run or market has no grid check")
        at = source.latest_t() if t is None else resolve_t(t)
        state = source.feeder(at) if at >= 0 else None
        when = f"interval {at}" if state is not None else "no interval yet"
        figure = source.map.figure(state, f"Feeder map — {when}")
        if figure is None:
            raise Unavailable(source.map.problem or "no feeder map yet: no feeder state known")
        return {"t": at if state is not None else None, "figure": figure}

    @app.get("/api/households", summary="Each household's position at t and bill up to t")
    async def households(
        request: Request,
        t: TQuery = None,
        q: Annotated[
            str | None,
            Query(
                max_length=100, description=("Keep households whose id or bus contains this text.")
            ),
        ] = None,
        sort: Annotated[str, Query(max_length=64)] = "agent_id",
        order: Annotated[Literal["asc", "desc"], Query()] = "asc",
        offset: Annotated[int, Query(ge=0, le=MAX_T)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        format: FormatQuery = None,
    ) -> Any:
        at = resolve_t(t)
        frame = source.households(at)
        if sort not in frame.columns:
            raise HTTPException(
                422, f"sort: unknown column {sort!r}; one of {', '.join(frame.columns)}"
            )
        if q:
            needle = q.lower()
            hit = frame["agent_id"].astype(str).str.lower().str.contains(needle, regex=False)
            if "bus" in frame:
                hit |= frame["bus"].astype(str).str.lower().str.contains(needle, regex=False)
            frame = frame[hit]
        frame = frame.sort_values(sort, ascending=order == "asc", kind="stable", na_position="last")
        page_ = frame.iloc[offset : offset + limit]
        if wants_csv(request, format):
            return csv_response(page_, f"households-{at}")
        return {
            "t": at,
            "total": len(frame),
            "offset": offset,
            "limit": limit,
            "items": frame_records(page_),
        }

    @app.get("/api/households/{agent_id}", summary="One household: attributes and series")
    async def household(
        request: Request,
        agent_id: Annotated[str, PathParam(max_length=200)],
        format: FormatQuery = None,
    ) -> Any:
        data = source.household(agent_id)
        if data is None:
            raise HTTPException(404, f"unknown household {agent_id!r}")
        if wants_csv(request, format):
            return csv_response(as_frame(data["series"]), f"household-{agent_id}")
        return json_safe(data)

    @app.get("/api/trades", summary="Trades, paged (newest intervals last)")
    async def trades(
        request: Request,
        t: Annotated[int | None, Query(ge=0, le=MAX_T, description="One interval.")] = None,
        t_from: Annotated[int, Query(ge=0, le=MAX_T)] = 0,
        t_to: Annotated[int | None, Query(ge=0, le=MAX_T)] = None,
        agent_id: Annotated[
            str | None,
            Query(max_length=200, description=("Only trades where this household buys or sells.")),
        ] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_T)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        format: FormatQuery = None,
    ) -> Any:
        if t is not None:
            resolve_t(t)
            t_from, t_to = t, t
        elif t_to is not None and t_to < t_from:
            raise HTTPException(422, f"t_to ({t_to}) must not be below t_from ({t_from})")
        if agent_id is not None and source.household(agent_id) is None:
            raise HTTPException(404, f"unknown household {agent_id!r}")
        frame = source.trades(t_from, MAX_T if t_to is None else t_to, agent_id)
        page_ = frame.iloc[offset : offset + limit]
        if wants_csv(request, format):
            return csv_response(page_, "trades")
        return {
            "total": len(frame),
            "offset": offset,
            "limit": limit,
            "items": frame_records(page_),
        }

    @app.get(
        "/api/events",
        summary="Server-Sent Events: one `interval` event per interval",
        response_class=StreamingResponse,
    )
    async def events(
        request: Request,
        since: Annotated[
            int | None,
            Query(
                ge=0,
                le=2**53,
                description=("Send the events after this sequence number (as Last-Event-ID does)."),
            ),
        ] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse:
        start = since
        if start is None and last_event_id:
            try:
                start = int(last_event_id)
            except ValueError:
                raise HTTPException(422, "Last-Event-ID must be an event sequence number") from None
        return event_stream(
            source, request, source.log.last_seq if start is None else max(start, 0)
        )

    return app
