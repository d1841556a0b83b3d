"""Ed25519 key pairs, key files, and signed payloads (through ``cryptography``).

A signed payload carries one more field, ``"sig"``::

    {"v": 1, "t": 412, ..., "sig": {"alg": "Ed25519", "key": "h0007", "value": "<base64>"}}

``value`` is the standard base64 of the 64-byte Ed25519 signature over
:func:`scenarios.audit.canonical.canonical` of the payload without ``"sig"``; ``key`` is
the id of the key that signed it (a household's agent id, a meter's id, or
``"market"``). A verifier looks the key up by the identity it expects (the agent id in
the topic, the meter id a meter format names), never by what the payload claims, so a
payload signed by one household is never accepted as another's.

Files (JSON, UTF-8):

- a private key, ``<id>.key`` (written mode 0600):
  ``{"id": "h0007", "alg": "Ed25519", "private_key": "<base64 of the 32-byte seed>",
  "public_key": "<base64 of the 32-byte public key>"}``;
- a public key registry (what a scenario's ``[live] keys`` names, and what a ledger
  keeps): ``{"alg": "Ed25519", "keys": {"h0007": "<base64 public key>", ...}}``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scenarios.audit.canonical import SIGNATURE_FIELD, CanonicalError, canonical, unsigned

ALG = "Ed25519"
MARKET_KEY = "market"
"""The key id of the market's own key (ledger checkpoints)."""


class KeyError_(ValueError):
    """A key file that cannot be read (named, with what is wrong)."""


class SignatureError(ValueError):
    """A payload whose signature is missing, malformed, by the wrong key, or wrong."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except ValueError as exc:
        raise ValueError(f"{what} is not base64") from exc
    if len(raw) != size:
        raise ValueError(f"{what} has {len(raw)} bytes, not {size}")
    return raw


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public_b64: str) -> str:
    """A short, stable name of a public key (the first 16 hex digits of its SHA-256)."""
    import hashlib

    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    """One identity's private key."""

    id: str
    private: Ed25519PrivateKey

    @classmethod
    def new(cls, key_id: str) -> KeyPair:
        return cls(key_id, Ed25519PrivateKey.generate())

    @property
    def public_b64(self) -> str:
        return _b64(_public_raw(self.private.public_key()))

    def sign_bytes(self, data: bytes) -> str:
        """The base64 Ed25519 signature of ``data``."""
        return _b64(self.private.sign(data))

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` with its ``"sig"`` (any earlier one replaced)."""
        body = unsigned(dict(payload))
        value = self.sign_bytes(canonical(body))
        return {**body, SIGNATURE_FIELD: {"alg": ALG, "key": self.id, "value": value}}

    def to_json(self) -> dict[str, str]:
        seed = self.private.private_bytes_raw()
        return {"id": self.id, "alg": ALG, "private_key": _b64(seed), "public_key": self.public_b64}

    def save(self, path: Path) -> None:
        """Write the key file, readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, indent=1)

    @classmethod
    def load(cls, path: Path) -> KeyPair:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("alg") != ALG:
                raise ValueError(f"alg is {data.get('alg')!r}, not {ALG!r}")
            seed = _unb64(data.get("private_key"), "private_key", 32)
            return cls(str(data["id"]), Ed25519PrivateKey.from_private_bytes(seed))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyError_(f"{path}: not an Ed25519 key file ({exc})") from exc


class Registry:
    """Public keys by key id: who may sign as whom."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self._b64: dict[str, str] = {}
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key_id, public in (keys or {}).items():
            self.add(key_id, public)

    def add(self, key_id: str, public_b64: str) -> None:
        raw = _unb64(public_b64, f"public key of {key_id!r}", 32)
        self._keys[key_id] = Ed25519PublicKey.from_public_bytes(raw)
        self._b64[key_id] = public_b64

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def ids(self) -> Iterable[str]:
        return self._keys.keys()

    def public_b64(self, key_id: str) -> str:
        return self._b64[key_id]

    def to_json(self) -> dict[str, Any]:
        return {"alg": ALG, "keys": dict(sorted(self._b64.items()))}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Registry:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("alg", ALG) != ALG:
                raise ValueError(f"alg is {data.get('alg')!r}, not {ALG!r}")
            keys = data["keys"]
            if not isinstance(keys, dict):
                raise ValueError("keys is not an object of id → public key")
            return cls({str(k): str(v) for k, v in keys.items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyError_(f"{path}: not a public key registry ({exc})") from exc

    def verify_bytes(self, key_id: str, data: bytes, signature_b64: Any) -> None:
        """Raise :class:`SignatureError` unless ``signature_b64`` is ``key_id``'s
        signature of ``data``."""
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureError(f"no public key registered for {key_id!r}")
        try:
            key.verify(_unb64(signature_b64, "signature", 64), data)
        except ValueError as exc:
            raise SignatureError(f"signature malformed: {exc}") from exc
        except InvalidSignature as exc:
            raise SignatureError(f"signature does not verify under {key_id!r}'s key") from exc

    def verify(self, payload: Mapping[str, Any], key_id: str) -> None:
        """Raise :class:`SignatureError` unless ``payload`` carries a valid signature by
        ``key_id`` (the identity the verifier expects, not the one the payload names)."""
        sig = payload.get(SIGNATURE_FIELD)
        if sig is None:
            raise SignatureError("unsigned (signatures are required)")
        if not isinstance(sig, dict) or sig.get("alg") != ALG:
            raise SignatureError(f'"sig" is not {{"alg": "{ALG}", "key", "value"}}')
        if sig.get("key") != key_id:
            raise SignatureError(f"signed by key {sig.get('key')!r}, expected {key_id!r}")
        try:
            data = canonical(unsigned(dict(payload)))
        except CanonicalError as exc:
            raise SignatureError(str(exc)) from exc
        self.verify_bytes(key_id, data, sig.get("value"))
