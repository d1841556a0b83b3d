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
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

SIGNATURE_FIELD = "sig"
"""The field of a signed payload that holds its signature (:mod:`scenarios.audit.keys`)."""


class CanonicalError(ValueError):
    """A value with no canonical JSON form (NaN, infinity, a non-JSON type)."""


def canonical(obj: Any) -> bytes:
    """``obj``'s RFC 8785 canonical JSON bytes."""
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
