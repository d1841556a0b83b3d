"""Tables as plain JSON for the dashboard's API: NaN and infinities as null, numpy
scalars as Python numbers, timestamps as ISO text."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """A plain-JSON value: NaN/inf → None, numpy scalars → Python, timestamps → ISO."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts."""
    cols = list(frame.columns)
    arrays = []
    for c in cols:
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            arrays.append([None if pd.isna(v) else v.isoformat() for v in s])
        else:
            arrays.append(s.astype(object).where(s.notna(), None).tolist())
    return [
        {c: jsonable(v) for c, v in zip(cols, row, strict=True)}
        for row in zip(*arrays, strict=True)
    ]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float, in nested dicts and lists too, as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
