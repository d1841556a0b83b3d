"""The exact bytes that are hashed and signed.

Every signed payload and every ledger entry is hashed and signed as its **RFC 8785**
canonical JSON (the JSON Canonicalization Scheme, through the ``rfc8785`` package): UTF-8,
no whitespace, object keys sorted by their UTF-16 code units, numbers in the shortest
form that reads back as the same IEEE-754 double (ECMAScript's ``Number.toString``),
strings with the minimal escapes. A signed payload is signed *without* its signature
field (:data:`SIGNATURE_FIELD`): the bytes signed are ``canonical(payload minus "sig")``.
So a verifier in any language with a JCS implementation gets the same bytes from the
payload as received, whatever whitespace or key order the sender used.

NaN and the infinities have no JSON form and are refused (:class:`CanonicalError`).

Speed. The ledger hashes every household's leaves every interval, so :func:`canonical`
first tries orjson (sorted keys; the same shortest float digits and string escapes as
ECMAScript), rewriting what it writes otherwise (``1.0`` as ``1``, ``-0.0`` as ``0``),
and checks that the bytes read back as the value; anything it does not cover (numbers
ECMAScript writes in another form, non-ASCII text, NaN, big integers) goes to
``rfc8785`` itself, so the bytes are always that package's
(``tests/scenarios/audit/test_canonical_fast.py`` compares the two on random values).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
import rfc8785

SIGNATURE_FIELD = "sig"
"""The field of a signed payload that holds its signature (:mod:`scenarios.audit.keys`)."""


class CanonicalError(ValueError):
    """A value with no canonical JSON form (NaN, infinity, a non-JSON type)."""


_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER  # |int| < 2**53, as RFC 8785
_ODD = (b"e+", b"e-6")
"""In the bytes of a number, what orjson writes otherwise than ECMAScript: 1e16 <= |x| <
1e21 and 1e-6 <= |x| < 1e-5 in exponent form (these also catch |x| >= 1e21 and 1e-60s,
which go the slow way for nothing, and any string holding them)."""
_INTEGRAL = re.compile(rb"\.0(?=[,\]}])")
"""The ``.0`` of an integral float (orjson writes no other trailing zero)."""
_NEGATIVE_ZERO = re.compile(rb"(?<=[:,\[])-0(?=[,\]}])")


def _fast(obj: Any) -> bytes | None:
    """``obj``'s canonical bytes through orjson (sorted keys, the same shortest float
    digits and string escapes as ECMAScript), with integral floats written without their
    ``.0`` and negative zero as 0; None when the value is not one this covers (a number
    ECMAScript writes otherwise, an unsafe integer, non-ASCII text, NaN, a tuple or a
    type orjson would coerce), or when the bytes do not read back as ``obj`` (a string
    that looked like a number)."""
    if type(obj) not in (dict, list, str, int, float, bool, type(None)):
        return None
    try:
        out = orjson.dumps([obj], option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    if not out.isascii() or _ODD[0] in out or _ODD[1] in out:
        return None
    out = _INTEGRAL.sub(b"", out)
    if b"-0," in out or b"-0]" in out or b"-0}" in out:
        out = _NEGATIVE_ZERO.sub(b"0", out)
    try:
        same = orjson.loads(out)[0] == obj
    except (orjson.JSONDecodeError, RecursionError):
        return None
    return out[1:-1] if same else None


def canonical(obj: Any) -> bytes:
    """``obj``'s RFC 8785 canonical JSON bytes."""
    fast = _fast(obj)
    if fast is not None:
        return fast
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalError(f"no canonical JSON for this value: {exc}") from exc


def unsigned(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without its signature field: what its signature covers."""
    return {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}


def digest(obj: Any) -> str:
    """The SHA-256 of ``obj``'s canonical bytes, as lowercase hex."""
    return hashlib.sha256(canonical(obj)).hexdigest()
