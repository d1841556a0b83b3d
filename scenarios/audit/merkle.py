"""Merkle trees over SHA-256, with inclusion proofs.

Hashing keeps leaves and inner nodes apart (as RFC 6962 does): a leaf is
``SHA-256(0x00 || data)``, an inner node ``SHA-256(0x01 || left || right)``. A tree is
built level by level: neighbours are paired left to right, and the last node of a level
with an odd count is carried up unchanged (never paired with itself, so no two lists of
leaves share a root). The root of no leaves is ``SHA-256("")``.

An inclusion proof of leaf ``index`` among ``size`` leaves is the list of sibling hashes
from the leaf up; which side each sibling is on follows from ``index`` and ``size``
alone, so a proof also proves the leaf's position (:func:`verify`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_LEAF, _NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _up(level: Sequence[bytes]) -> list[bytes]:
    nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def root(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes (:func:`leaf_hash` of each leaf's data)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, the leaves first and the root last (build once, then
    take any number of proofs with :func:`path`)."""
    out = [list(leaves)]
    while len(out[-1]) > 1:
        out.append(_up(out[-1]))
    return out


def path(tree: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root of a tree's :func:`levels`."""
    if not 0 <= index < len(tree[0]):
        raise IndexError(f"leaf {index} of {len(tree[0])}")
    out, i = [], index
    for level in tree[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            out.append(level[sibling])
        i //= 2
    return out


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    return path(levels(leaves), index)


def fold(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` leads to from ``leaf`` at ``index`` of ``size`` leaves;
    None when the path's length does not fit that position."""
    if not 0 <= index < size:
        return None
    node, i, m, steps = leaf, index, size, iter(path)
    while m > 1:
        if i % 2:
            sibling = next(steps, None)
            if sibling is None:
                return None
            node = node_hash(sibling, node)
        elif i + 1 < m:
            sibling = next(steps, None)
            if sibling is None:
                return None
            node = node_hash(node, sibling)
        i, m = i // 2, (m + 1) // 2
    return None if next(steps, None) is not None else node


def verify(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected: bytes) -> bool:
    """Whether ``path`` proves ``leaf`` at ``index`` of ``size`` leaves under ``expected``."""
    return fold(leaf, index, size, path) == expected
