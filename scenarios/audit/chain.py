"""Reading a ledger directory: its files, the chain's entries, the checkpoints.

The format is :mod:`scenarios.audit.ledger`'s (the writer); a line without its newline
(torn by a killed writer) is not an entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SCENARIO_FILE, KEYS_FILE = "scenario.json", "keys.json"
CHAIN_FILE, CHECKPOINTS_FILE, PRIVATE_DIR = "chain.jsonl", "checkpoints.jsonl", "private"
MARKET_KEY_FILE = "market.key"
"""The market operator's private key of a batch run's ledger (never needed to verify)."""


class LedgerFormatError(ValueError):
    """A ledger directory that cannot be read as one (named, with what is wrong)."""


def ledger_dir(path: Path) -> Path:
    """``path`` itself when it holds a chain, else its ``ledger/`` folder."""
    path = Path(path)
    if (path / CHAIN_FILE).exists():
        return path
    if (path / "ledger" / CHAIN_FILE).exists():
        return path / "ledger"
    raise LedgerFormatError(f"{path}: no {CHAIN_FILE} here nor in {path / 'ledger'}")


def _lines(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of every whole line of a JSON-lines file (from ``start``)."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        fh.seek(start)
        offset = start
        for line in fh:
            if line.endswith(b"\n"):
                yield offset, line
            offset += len(line)


def read_chain(directory: Path, start: int = 0) -> Iterator[dict[str, Any]]:
    """Every entry of the chain in order (from byte ``start``, a line's start), each with
    its line's byte offset added (``_offset``); a torn last line (no newline) is not an
    entry."""
    for offset, line in _lines(Path(directory) / CHAIN_FILE, start):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise LedgerFormatError(f"{CHAIN_FILE} at byte {offset}: not JSON ({exc})") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("header"), dict):
            raise LedgerFormatError(f"{CHAIN_FILE} at byte {offset}: not a ledger entry")
        entry["_offset"] = offset
        yield entry


def read_entry(directory: Path, offset: int) -> dict[str, Any]:
    """The entry whose line starts at byte ``offset``."""
    return next(read_chain(directory, offset))


def read_checkpoints(directory: Path) -> list[dict[str, Any]]:
    """Every whole checkpoint line, in order."""
    out = []
    for offset, line in _lines(Path(directory) / CHECKPOINTS_FILE):
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise LedgerFormatError(f"{CHECKPOINTS_FILE} at byte {offset}: not JSON") from exc
    return out


def _drop_torn_line(path: Path) -> None:
    """Cut a file back to its last newline (a line torn by a killed writer)."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with path.open("r+b") as fh:
            fh.truncate(end)
