"""The live market's append-only ledger: one JSON line per settled interval, on disk
(flushed and fsynced) before anything about that interval is published.

A market killed at any moment leaves either a whole last line or a torn one; opening
the ledger drops a torn tail, so the last whole line is the last committed interval.
A restarted market resumes after it, re-publishes that interval's result and
settlements (agents ignore repeats), and so never settles an interval twice.

Besides the interval records, a *correction record* (``{"corrects_after": t, …}``) may
follow the last interval: the late meter energy settled after the run's last gate
(:mod:`live.corrections`). It does not advance the interval count; its ``meters`` state
supersedes the interval's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from live.protocol import encode

LEDGER_FILE = "ledger.jsonl"


class LedgerError(RuntimeError):
    """The ledger on disk is not a ledger of this market (or is out of order)."""


class Ledger:
    """Append-only interval records in ``directory / ledger.jsonl``."""

    def __init__(self, directory: Path, community: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LEDGER_FILE
        self.community = community
        self.last: dict[str, Any] | None = None
        self.tail: list[dict[str, Any]] = []
        """The correction records after :attr:`last`."""
        self.count = 0
        self.torn_bytes = 0
        self._recover()
        self._fh = open(self.path, "ab")

    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                break
            try:
                rec = json.loads(data[pos:end])
            except json.JSONDecodeError:
                break
            if rec.get("community") != self.community:
                raise LedgerError(
                    f"{self.path} belongs to community {rec.get('community')!r}, "
                    f"not {self.community!r}"
                )
            if "corrects_after" in rec:
                if self.last is None or rec["corrects_after"] != self.last["t"]:
                    raise LedgerError(f"{self.path}: a correction record out of place")
                self.tail.append(rec)
            else:
                if self.last is not None and rec["t"] != self.last["t"] + 1:
                    raise LedgerError(f"{self.path}: interval {rec['t']} follows {self.last['t']}")
                self.last, self.tail = rec, []
                self.count += 1
            pos = end + 1
            good = pos
        if good < len(data):
            self.torn_bytes = len(data) - good
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
                fh.flush()
                os.fsync(fh.fileno())

    @property
    def next_t(self) -> int:
        """The first interval not yet committed."""
        return 0 if self.last is None else int(self.last["t"]) + 1

    @property
    def latest(self) -> dict[str, Any] | None:
        """The last record of either kind (whose ``meters`` state is current)."""
        return self.tail[-1] if self.tail else self.last

    def append(self, record: dict[str, Any]) -> None:
        """Commit one interval: written, flushed and fsynced before returning."""
        if record["t"] != self.next_t:
            raise LedgerError(
                f"interval {record['t']} committed out of order (next is {self.next_t})"
            )
        self.last, self.tail = self._write(record), []
        self.count += 1

    def append_corrections(self, record: dict[str, Any]) -> None:
        """Commit a correction record after the last interval (same guarantees)."""
        if self.last is None:
            raise LedgerError("a correction record before any interval")
        self.tail.append(self._write({"corrects_after": self.last["t"], **record}))

    def _write(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"community": self.community, **record}
        self._fh.write(encode(record) + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return record

    def close(self) -> None:
        self._fh.close()


def rng_to_json(state: dict[str, Any]) -> dict[str, Any]:
    """A numpy bit generator's state for the ledger: its 128-bit words as strings (JSON
    numbers that large do not survive every reader)."""
    return {**state, "state": {k: str(v) for k, v in state["state"].items()}}


def rng_from_json(saved: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`rng_to_json` (older ledgers wrote the words as numbers)."""
    return {**saved, "state": {k: int(v) for k, v in saved["state"].items()}}


def read_ledger(directory: Path) -> list[dict[str, Any]]:
    """Every whole record of a ledger (for tests and tools)."""
    path = directory / LEDGER_FILE
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out
