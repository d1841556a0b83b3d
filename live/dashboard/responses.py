"""The dashboard API's responses: JSON without NaN, or CSV when asked for
(``?format=csv`` or ``Accept: text/csv``), and a 404 for what is not available."""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import pandas as pd
from fastapi import HTTPException, Request
from fastapi.responses import Response

Format = Literal["json", "csv"]


class Unavailable(HTTPException):
    """404: what was asked for is not (yet) there."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=404, detail=message)


def wants_csv(request: Request, fmt: Format | None) -> bool:
    """CSV when ``?format=csv``, or when the client accepts CSV and not JSON."""
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def csv_response(frame: pd.DataFrame, name: str) -> Response:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}.csv"'},
    )


def as_frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A page of a table as JSON rows (ISO timestamps, NaN as null)."""
    return json.loads(frame.to_json(orient="records", date_format="iso", double_precision=15))
