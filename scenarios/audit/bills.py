"""A household's bill with its proofs, checkable against one signed checkpoint alone.

A bill (``p2pgrid ledger bill``, and live ``agents/<id>/bill`` after each checkpoint)::

    {"v": 1, "agent": "h0007", "checkpoint": <signed checkpoint>,
     "items": [{"header": <entry header>, "entry_index": i, "entry_path": [hex, ...],
                "settlement": <settlement leaf>, "settlement_index": j,
                "settlement_path": [hex, ...],
                "inputs": <input leaf or null>, "inputs_index": k, "inputs_path": [...]}],
     "total_cost": ...}

one item per entry of the checkpoint that settles the household (intervals and
corrections). :func:`verify_bill` checks it without the rest of the ledger: each leaf
folds (:func:`scenarios.audit.merkle.fold`) to its root in its header, each header's
digest (as ``leaf_hash(bytes.fromhex(digest(header)))``, the index being the entry's
place among the checkpoint's entries) folds to the checkpoint's root, the checkpoint's
signature holds under its market key, every item names the bill's agent, and
``total_cost`` is the sum of the ``cost`` of the last version of each interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.audit import merkle
from scenarios.audit.canonical import CanonicalError, canonical, digest
from scenarios.audit.chain import read_chain
from scenarios.audit.keys import MARKET_KEY, Registry, SignatureError, fingerprint
from scenarios.audit.leaves import leaf_hashes

MONEY_TOLERANCE = 0.005


def _entries(directory: Path, cp: Mapping[str, Any], offset: int | None) -> list[dict]:
    """The entries a checkpoint covers (read from ``offset`` when it is their start)."""
    first, last = int(cp["first_entry"]), int(cp["last_entry"])
    out = []
    for entry in read_chain(directory, offset or 0):
        seq = entry["header"]["seq"]
        if first <= seq <= last:
            out.append(entry)
        if seq >= last:
            break
    if offset and (not out or out[0]["header"]["seq"] != first):
        return _entries(directory, cp, None)
    if len(out) != last - first + 1:
        raise ValueError(
            f"the chain does not hold entries {first}-{last} of checkpoint {cp['seq']}"
        )
    return out


def total_cost(settlement_leaves: Sequence[Mapping[str, Any]]) -> float:
    """The sum of ``cost`` over the last version of each interval."""
    last: dict[int, Mapping[str, Any]] = {}
    for leaf in settlement_leaves:
        t = int(leaf["t"])
        if t not in last or leaf["version"] >= last[t]["version"]:
            last[t] = leaf
    return float(math.fsum(float(leaf["settlement"]["cost"]) for leaf in last.values()))


def bills_of(
    directory: Path,
    checkpoint: Mapping[str, Any],
    offset: int | None = None,
    known: Mapping[str, tuple[list[bytes], list[bytes]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every household's bill under ``checkpoint`` (``offset``: where its first entry's
    line starts in the chain, when known; ``known``: entry hash → its input and
    settlement leaf hashes, when the writer has them)."""
    entries = _entries(Path(directory), checkpoint, offset)
    cp_tree = merkle.levels([merkle.leaf_hash(bytes.fromhex(e["hash"])) for e in entries])
    items: dict[str, list[dict[str, Any]]] = {}
    for i, entry in enumerate(entries):
        settlements, inputs = entry["settlements"], entry["inputs"]
        if not settlements:
            continue
        hashes = (known or {}).get(entry["hash"])
        i_hashes, s_hashes = hashes or (leaf_hashes(inputs), leaf_hashes(settlements))
        s_tree = merkle.levels(s_hashes)
        i_tree = merkle.levels(i_hashes) if inputs else None
        input_at = {leaf["agent"]: k for k, leaf in enumerate(inputs)}
        entry_path = [h.hex() for h in merkle.path(cp_tree, i)]
        for j, leaf in enumerate(settlements):
            k = input_at.get(leaf["agent"])
            items.setdefault(leaf["agent"], []).append(
                {
                    "header": entry["header"],
                    "entry_index": i,
                    "entry_path": entry_path,
                    "settlement": leaf,
                    "settlement_index": j,
                    "settlement_path": [h.hex() for h in merkle.path(s_tree, j)],
                    "inputs": None if k is None else inputs[k],
                    "inputs_index": k,
                    "inputs_path": []
                    if k is None or i_tree is None
                    else [h.hex() for h in merkle.path(i_tree, k)],
                }
            )
    return {
        agent: {
            "v": 1,
            "agent": agent,
            "checkpoint": dict(checkpoint),
            "items": its,
            "total_cost": total_cost([it["settlement"] for it in its]),
        }
        for agent, its in items.items()
    }


@dataclass
class BillCheck:
    """What :func:`verify_bill` found."""

    problems: list[str] = field(default_factory=list)
    fingerprint: str = ""
    """The fingerprint of the market key the checkpoint was verified under."""
    total_cost: float = float("nan")
    items: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _folds(leaf: Any, index: Any, size: Any, path: Any, root_hex: Any) -> bool:
    try:
        node = merkle.leaf_hash(leaf) if isinstance(leaf, bytes) else None
        if node is None:
            return False
        steps = [bytes.fromhex(h) for h in path]
        return merkle.verify(node, int(index), int(size), steps, bytes.fromhex(root_hex))
    except (TypeError, ValueError):
        return False


def _leaf_bytes(leaf: Any) -> bytes | None:
    try:
        return canonical(leaf)
    except CanonicalError:
        return None


def verify_bill(
    bill: Mapping[str, Any],
    checkpoint: Mapping[str, Any] | None = None,
    market_key: str | None = None,
) -> BillCheck:
    """Check a bill against its checkpoint alone (``checkpoint``: a trusted copy the
    embedded one must equal; ``market_key``: the base64 key it must be signed with)."""
    out = BillCheck()
    cp = bill.get("checkpoint")
    agent = bill.get("agent")
    if not isinstance(cp, dict) or not isinstance(bill.get("items"), list):
        out.problems.append("not a bill: no checkpoint or items")
        return out
    if checkpoint is not None and digest(dict(checkpoint)) != digest(cp):
        out.problems.append("the bill's checkpoint is not the trusted checkpoint")
    key = cp.get("market_key")
    if market_key is not None and key != market_key:
        out.problems.append("the checkpoint's market key is not the trusted market key")
    try:
        Registry({MARKET_KEY: str(key)}).verify(cp, MARKET_KEY)
        out.fingerprint = fingerprint(str(key))
    except (SignatureError, ValueError) as exc:
        out.problems.append(f"checkpoint {cp.get('seq')}: signature: {exc}")
    size = int(cp.get("last_entry", -1)) - int(cp.get("first_entry", 0)) + 1
    leaves = []
    for n, item in enumerate(bill["items"]):
        header, leaf = item.get("header"), item.get("settlement")
        where = f"item {n}"
        if not isinstance(header, dict) or not isinstance(leaf, dict):
            out.problems.append(f"{where}: no header or settlement")
            continue
        where = f"interval {header.get('t')} (entry {header.get('seq')})"
        if leaf.get("agent") != agent or leaf.get("settlement", {}).get("t") != leaf.get("t"):
            out.problems.append(
                f"{where}: the settlement names {leaf.get('agent')!r}, not {agent!r}"
            )
        if leaf.get("t") != header.get("t"):
            out.problems.append(f"{where}: the settlement is of interval {leaf.get('t')}")
        try:
            entry = bytes.fromhex(digest(header))
        except CanonicalError:
            out.problems.append(f"{where}: header has no canonical form")
            continue
        if header.get("seq") != int(cp.get("first_entry", 0)) + int(item.get("entry_index", -1)):
            out.problems.append(f"{where}: entry index does not match its seq")
        if not _folds(
            entry, item.get("entry_index"), size, item.get("entry_path", []), cp.get("root")
        ):
            out.problems.append(f"{where}: the entry does not fold to the checkpoint's root")
        if not _folds(
            _leaf_bytes(leaf),
            item.get("settlement_index"),
            header.get("n_settlements"),
            item.get("settlement_path", []),
            header.get("settlements_root"),
        ):
            out.problems.append(f"{where}: the settlement does not fold to settlements_root")
        inputs = item.get("inputs")
        if inputs is not None:
            if not isinstance(inputs, dict) or inputs.get("agent") != agent:
                out.problems.append(f"{where}: the input leaf is not {agent!r}'s")
            elif not _folds(
                _leaf_bytes(inputs),
                item.get("inputs_index"),
                header.get("n_inputs"),
                item.get("inputs_path", []),
                header.get("inputs_root"),
            ):
                out.problems.append(f"{where}: the input leaf does not fold to inputs_root")
        leaves.append(leaf)
    out.items = len(leaves)
    try:
        out.total_cost = total_cost(leaves)
        if abs(out.total_cost - float(bill.get("total_cost", math.nan))) > MONEY_TOLERANCE or (
            not math.isfinite(float(bill.get("total_cost", math.nan)))
        ):
            out.problems.append(
                f"total_cost {bill.get('total_cost')} is not the sum of the last versions "
                f"({out.total_cost:.6f})"
            )
    except (KeyError, TypeError, ValueError) as exc:
        out.problems.append(f"total_cost cannot be summed: {exc}")
    return out
