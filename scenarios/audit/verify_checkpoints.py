"""``ledger verify``'s check of the signed checkpoints (step 5 of
:mod:`scenarios.audit.verify`): numbered from 0, each covering the entries after the
previous one's, its root the Merkle root over those entries' hashes, ``prev`` the digest
of the previous checkpoint, its key the genesis's market key, its signature valid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenarios.audit import merkle
from scenarios.audit.canonical import CanonicalError, digest
from scenarios.audit.keys import MARKET_KEY, Registry, SignatureError


def check_checkpoints(
    cps: list[dict[str, Any]],
    hashes: list[tuple[str, int | None]],
    market_key: str | None,
    add: Callable[[int, int | None, str], None],
) -> int:
    """Check ``cps`` against the entries' ``(hash, t)`` in chain order and the genesis's
    ``market_key`` (None: no genesis), each problem to ``add(seq, t, what)`` at the
    checkpoint's first interval; how many entries come after the last checkpoint."""
    key = str(market_key)
    market = Registry({MARKET_KEY: key}) if market_key is not None else Registry()
    nxt, prev = 0, None
    for k, cp in enumerate(cps):
        first, last = cp.get("first_entry"), cp.get("last_entry")
        whole = isinstance(first, int) and isinstance(last, int)
        lo, hi = (
            (first, last) if isinstance(first, int) and isinstance(last, int) else (nxt, nxt - 1)
        )
        span = hashes[lo : hi + 1]
        at = next(((lo + i, t) for i, (_, t) in enumerate(span) if t is not None), (nxt, None))

        def bad(what: str, cp_k: int = k, where: tuple[int, int | None] = at) -> None:
            add(where[0], where[1], f"checkpoint {cp_k}: {what}")

        if cp.get("seq") != k:
            bad(f"seq is {cp.get('seq')!r}")
        if first != nxt or not isinstance(last, int) or last < first or last >= len(hashes):
            bad(f"covers entries {first}-{last}, expected from {nxt}")
        root = merkle.root([merkle.leaf_hash(bytes.fromhex(h)) for h, _ in span]).hex()
        if cp.get("root") != root:
            bad("root is not the Merkle root of its entries")
        if cp.get("prev") != prev:
            bad("prev is not the digest of the previous checkpoint")
        if cp.get("market_key") != key:
            bad("not the genesis's market key")
        try:
            market.verify(cp, MARKET_KEY)
        except (SignatureError, ValueError) as exc:
            bad(f"signature: {exc}")
        ts = [t for _, t in span if t is not None]
        if ts and (cp.get("first_t"), cp.get("last_t")) != (min(ts), max(ts)):
            bad("first_t/last_t are not its entries' intervals")
        nxt = hi + 1 if whole else nxt
        try:
            prev = digest(cp)
        except CanonicalError:
            prev = None
    return max(len(hashes) - nxt, 0)
