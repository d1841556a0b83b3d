"""The dashboard's FastAPI app: one offline page, a read-only REST API, pushed events.

Routes (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

- ``GET /`` — the page; ``/static/plotly.min.js`` is served from the installed plotly
  package, so the page loads nothing from outside the server.
- ``GET /api/runs``, ``/api/meta``, ``/api/status`` — what is being shown.
- ``GET /api/kpis``, ``/api/intervals``, ``/api/intervals/{t}``,
  ``/api/intervals/{t}/book``, ``/api/intervals/{t}/feeder`` — the market and feeder.
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

import io
import json
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import plotly
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from live.dashboard.api_docs import render_api_docs
from live.dashboard.sources import Source

STATIC_DIR = Path(str(files("live.dashboard") / "static"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
TOKEN_COOKIE = "p2pgrid_token"
HEARTBEAT_S = 10.0
MAX_T = 10_000_000

Format = Literal["json", "csv"]
FormatQuery = Annotated[
    Format | None,
    Query(description="Response format; default JSON, or CSV when `Accept: text/csv`."),
]
TQuery = Annotated[
    int | None,
    Query(ge=0, le=MAX_T, description="Interval index; default the newest visible interval."),
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


class _Unavailable(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(status_code=404, detail=message)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _wants_csv(request: Request, fmt: Format | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _csv(frame: pd.DataFrame, name: str) -> Response:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}.csv"'},
    )


def _frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = json.loads(frame.to_json(orient="records", date_format="iso", double_precision=15))
    return out


def _check_token(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    offered = [
        header[7:] if header.lower().startswith("bearer ") else "",
        request.query_params.get("token", ""),
        request.cookies.get(TOKEN_COOKIE, ""),
    ]
    return any(o and secrets.compare_digest(o.encode(), token.encode()) for o in offered)


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

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if token is not None and not _check_token(request, token):
            return JSONResponse(
                {
                    "detail": "a token is required: open the URL printed by `p2pgrid dashboard` "
                    "(…?token=…) or send `Authorization: Bearer TOKEN`"
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if token is not None and request.query_params.get("token") == token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            {
                "detail": "; ".join(problems) or "invalid request",
                "errors": json.loads(json.dumps(exc.errors(), default=str)),
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # ------------------------------------------------------------------ helpers
    def resolve_t(t: int | None) -> int:
        latest = source.latest_t()
        if t is None:
            if latest < 0:
                raise _Unavailable("no interval yet: the market has not cleared one")
            return latest
        if not source.has_interval(t):
            if latest < 0:
                raise _Unavailable(f"interval {t} is not available: no interval yet")
            raise _Unavailable(f"interval {t} is not available (intervals 0..{latest} are)")
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
        return _csv(_frame(rows), "runs") if _wants_csv(request, format) else rows

    @app.get("/api/meta", summary="Name, tariffs, limits and size of the market")
    async def meta() -> dict[str, Any]:
        return _json_safe(source.meta())

    @app.get("/api/status", summary="State of the source (replaying, connected, …)")
    async def status() -> dict[str, Any]:
        return {**source.status(), "seq": source.log.last_seq}

    @app.get("/api/kpis", summary="KPIs over the intervals up to t")
    async def kpis(request: Request, t: TQuery = None, format: FormatQuery = None) -> Any:
        data = _json_safe(source.kpis(resolve_t(t)))
        if _wants_csv(request, format):
            return _csv(pd.DataFrame({"kpi": list(data), "value": list(data.values())}), "kpis")
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
        return _csv(_frame(rows), "intervals") if _wants_csv(request, format) else rows

    @app.get("/api/intervals/{t}", summary="One interval row")
    async def interval(
        request: Request, t: Annotated[int, PathParam(ge=0, le=MAX_T)], format: FormatQuery = None
    ) -> Any:
        rows = source.interval_rows(resolve_t(t), t)
        return _csv(_frame(rows), f"interval-{t}") if _wants_csv(request, format) else rows[0]

    @app.get("/api/intervals/{t}/book", summary="Supply and demand curves of interval t")
    async def book(
        request: Request, t: Annotated[int, PathParam(ge=0, le=MAX_T)], format: FormatQuery = None
    ) -> Any:
        data = source.book(resolve_t(t))
        if data is None:
            raise _Unavailable(f"no order book for interval {t}")
        if _wants_csv(request, format):
            parts = [pd.DataFrame({"side": side, **data[side]}) for side in ("demand", "supply")]
            return _csv(pd.concat(parts, ignore_index=True), f"book-{t}")
        return _json_safe(data)

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
        data = source.feeder(resolve_t(t))
        if data is None:
            raise _Unavailable(
                "no feeder state: this run or market has no grid check "
                "(or does not publish per-bus values)"
            )
        if _wants_csv(request, format):
            return _csv(pd.DataFrame(data[table]), f"feeder-{table}-{t}")
        return _json_safe(data)

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
        if _wants_csv(request, format):
            return _csv(page_, f"households-{at}")
        return {
            "t": at,
            "total": len(frame),
            "offset": offset,
            "limit": limit,
            "items": _records(page_),
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
        if _wants_csv(request, format):
            return _csv(_frame(data["series"]), f"household-{agent_id}")
        return _json_safe(data)

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
        if _wants_csv(request, format):
            return _csv(page_, "trades")
        return {"total": len(frame), "offset": offset, "limit": limit, "items": _records(page_)}

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
        cursor = source.log.last_seq if start is None else max(start, 0)

        async def stream() -> AsyncIterator[str]:
            nonlocal cursor
            yield "retry: 1000\n\n"
            # the current state first, so a new client can draw without waiting
            yield _sse_comment(f"connected at seq {cursor}")
            while True:
                batch = source.log.after(cursor)
                if batch:
                    for i, event in enumerate(batch):
                        full = i == len(batch) - 1
                        data = json.dumps(
                            _json_safe(source.event_payload(event, full)), separators=(",", ":")
                        )
                        yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
                        cursor = event.seq
                    continue
                if source.log.closed or await request.is_disconnected():
                    return
                if not await source.log.wait(cursor, HEARTBEAT_S):
                    yield _sse_comment("keep-alive")

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


def _sse_comment(text: str) -> str:
    return f": {text}\n\n"
