"""The fast canonical encoder gives rfc8785's bytes, value for value."""

from __future__ import annotations

import random

import pytest
import rfc8785

from scenarios.audit.canonical import CanonicalError, _fast, canonical

SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1,
    1e-7,
    1e-6,
    1.5e-5,
    0.0001,
    123456.0,
    1e15,
    1e16,
    1e21,
    1e22,
    2.0**53,
    5e-324,
    1.7976931348623157e308,
    0.30000000000000004,
    2**53 - 1,
    -(2**53) + 1,
    "",
    "plain",
    'quote"',
    "back\\slash",
    "tab\t",
    "nl\n",
    "\x00\x1f",
    "é",
    "\u2028",
    "\U0001f600",
    True,
    False,
    None,
    [],
    {},
    [1, [2, [3]]],
    (1, 2),
    # strings that look like numbers the fast path rewrites
    "a:1.0,b",
    "[2.0]",
    ",-0.0}",
    ":5e-6,",
    "[1e+17]",
    float("-0.0") * 3,
    1.0e-6,
    9.99e-6,
    123456789012345678,
    1e20,
    3e16,
    -7.5e19,
    [1.0, -0.0, 2.5e-6, {"x": 1e18}],
]


def _value(rng: random.Random, depth: int = 0) -> object:
    pick = rng.random()
    if depth < 3 and pick < 0.2:
        keys = rng.sample(
            ["a", "b", "B", "t", "agent", "cost", "é", "\U0001f600", "z_1", "\uffff"], 4
        )
        return {k: _value(rng, depth + 1) for k in keys}
    if depth < 3 and pick < 0.3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick < 0.7:
        scale = 10.0 ** rng.randrange(-12, 25)
        return rng.choice(
            [rng.uniform(-1e3, 1e3), rng.random() * scale, float(rng.randrange(-9, 9))]
        )
    if pick < 0.8:
        return rng.randrange(-(2**53) + 1, 2**53)
    return rng.choice(SPECIAL)


def _agree(v: object) -> None:
    try:
        want = rfc8785.dumps(v)
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalError):
            canonical(v)
        return
    assert canonical(v) == want, v


def test_fast_path_matches_rfc8785() -> None:
    with pytest.raises(CanonicalError):
        canonical([1.0, {"x": float("nan")}])
    for v in SPECIAL:
        _agree(v)
        _agree({"k": v, "a": [v]})
    rng = random.Random(15)
    for _ in range(5000):
        _agree(_value(rng))


def test_a_ledger_leaf_takes_the_fast_path() -> None:
    leaf = {
        "agent": "h0007",
        "t": 412,
        "version": 1,
        "settlement": {"cost": -0.0, "fees": 0.0, "demand_kwh": 0.371381, "trades": []},
    }
    assert _fast(leaf) == rfc8785.dumps(leaf)
    assert (
        _fast(leaf) == b'{"agent":"h0007","settlement":{"cost":0,"demand_kwh":0.371381,"fees":0,'
        b'"trades":[]},"t":412,"version":1}'
    )
