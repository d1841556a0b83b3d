"""Recorded against re-derived payloads, "to the cent".

A number is compared by the name of the field that holds it (the nearest object key):
money (``cost``, ``paid``, ``received``, ``fees``, ``grid_fee``, ``grid_fees``,
``imbalance_cost``, ``market_surplus``, ``welfare``, ``optimal_welfare``) within
:data:`MONEY`; energies (``*_kwh``), prices (``*_per_kwh``), and the feeder's physical
quantities (``*_pu``, ``*_kw``, ``*_kvar``, ``*_frac``, and the book curve's steps)
within :data:`PHYSICAL`; anything else (integers, flags, ids, text, null, the shape of
lists and objects) exactly. :func:`first_difference` names the first field that differs
and both values.
"""

from __future__ import annotations

from typing import Any

import orjson

MONEY = 0.005
"""Half a cent."""
PHYSICAL = 1e-6
"""kWh, currency per kWh, p.u., kW, kvar, fractions."""
MONEY_FIELDS = frozenset(
    {
        "cost",
        "paid",
        "received",
        "fees",
        "grid_fee",
        "grid_fees",
        "imbalance_cost",
        "market_surplus",
        "welfare",
        "optimal_welfare",
    }
)
_PHYSICAL_SUFFIXES = ("_kwh", "_pu", "_kw", "_kvar", "_frac")
_PHYSICAL_FIELDS = frozenset({"book", "buy", "sell"})


def tolerance(key: str) -> float:
    """How far two numbers under object key ``key`` may differ (0: exactly equal)."""
    if key in MONEY_FIELDS:
        return MONEY
    if key.endswith(_PHYSICAL_SUFFIXES) or key in _PHYSICAL_FIELDS:
        return PHYSICAL
    return 0.0


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def first_difference(recorded: Any, replayed: Any, where: str = "", key: str = "") -> str | None:
    """The first place where ``replayed`` differs from ``recorded`` beyond its field's
    tolerance, as ``"<path>: recorded <a>, replayed <b>"``; None when they agree."""
    if not where:
        try:
            if orjson.dumps(recorded) == orjson.dumps(replayed):
                return None  # the same JSON, byte for byte (the common case, at C speed)
        except TypeError:
            pass
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for k in recorded.keys() | replayed.keys():
            if k not in replayed:
                return f"{where}{k}: recorded {recorded[k]!r}, not re-derived"
            if k not in recorded:
                return f"{where}{k}: not recorded, replayed {replayed[k]!r}"
        for k in sorted(recorded):
            found = first_difference(recorded[k], replayed[k], f"{where}{k}.", k)
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(replayed, list):
        if len(recorded) != len(replayed):
            return f"{where.rstrip('.')}: recorded {len(recorded)} items, replayed {len(replayed)}"
        for i, (a, b) in enumerate(zip(recorded, replayed, strict=True)):
            found = first_difference(a, b, f"{where}{i}.", key)
            if found is not None:
                return found
        return None
    if _is_number(recorded) and _is_number(replayed):
        tol = tolerance(key)
        same = recorded == replayed if tol == 0 else abs(recorded - replayed) <= tol
        if type(recorded) is not type(replayed) and tol == 0:
            same = False
    else:
        same = type(recorded) is type(replayed) and recorded == replayed
    if same:
        return None
    return f"{where.rstrip('.')}: recorded {recorded!r}, replayed {replayed!r}"
