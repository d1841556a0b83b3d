"""The dashboard's guard: the token every request must carry when one is set (header,
query or the cookie the page sets), the security headers of every response, and error
bodies that say what is wrong (``{"detail": …}``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

TOKEN_COOKIE = "p2pgrid_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def check_token(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    offered = [
        header[7:] if header.lower().startswith("bearer ") else "",
        request.query_params.get("token", ""),
        request.cookies.get(TOKEN_COOKIE, ""),
    ]
    return any(o and secrets.compare_digest(o.encode(), token.encode()) for o in offered)


def install_guard(app: FastAPI, token: str | None) -> None:
    """The token check and security headers (a middleware) and the error handlers."""

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if token is not None and not check_token(request, token):
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
