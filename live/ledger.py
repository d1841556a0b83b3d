"""The live market's append-only ledger: one record per settled interval, on disk
(flushed and fsynced) before anything about that interval is published.

Layout of the state directory:

- ``run.json``: the run this ledger belongs to: its ``run`` id (carried in every
  ``clock``), the community, the scenario's fingerprint and the segment length. A
  ledger is only ever resumed by the same scenario (:class:`LedgerError` otherwise).
- ``ledger-<t0>.seg``: segments of :data:`CHECKPOINT_EVERY` intervals each. A record is
  a frame: a 12-byte header (compressed length, raw length, CRC-32 of the compressed
  bytes) and the record's JSON, compressed with zstd, the settlements stored as columns
  (one list per field across households) rather than one object per household.

Each record holds the whole state the market resumes from (the random generator, the
meter trackers) besides what it published, so every segment boundary is a checkpoint:
a restart reads only the newest segment (and the one before when the newest holds no
whole record yet): at most two segments, never the whole ledger. A market killed at
any moment leaves either a whole last frame or a torn one; opening the ledger drops a
torn tail, so the last whole frame is the last committed interval. A restarted market
resumes after it, re-publishes that interval (agents ignore repeats), and so never
settles an interval twice. Each interval record also holds its interval's contribution
to the households' reliability window (``reliability``, :mod:`market.reliability`); a
restarted market rebuilds the window from the last ``[market] reliability_window``
records (:func:`recent_values`: the newest segment and the one before for the default
window of 96, further back only for a window longer than a segment).

Besides the interval records, *correction records* (``{"corrects_after": t, …}``) may
follow the last interval, in its segment: the late meter energy settled after the run's
last gate (:mod:`live.corrections`). They do not advance the interval count; their
``meters`` state supersedes the interval's (:attr:`Ledger.latest`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from live.protocol import encode

RUN_FILE = "run.json"
CHECKPOINT_EVERY = 96
"""Intervals per segment (a day of 15-minute intervals): what a restart reads at most."""
_HEADER = struct.Struct("<III")
_CODEC = pa.Codec("zstd", compression_level=3)
_COLUMNAR = "__columns__"


class LedgerError(RuntimeError):
    """The ledger on disk is not a ledger of this market (or is out of order)."""


def _columnar(rows: dict[str, dict[str, Any]]) -> Any:
    """Per-household objects with the same keys as ``{__columns__: keys, agents, values}``
    (each key's values across households); anything else as it is."""
    if not rows:
        return rows
    keys = list(next(iter(rows.values())))
    if any(list(r) != keys for r in rows.values()):
        return rows
    return {
        _COLUMNAR: keys,
        "agents": list(rows),
        "values": [[r[k] for r in rows.values()] for k in keys],
    }


def _rows(data: Any) -> Any:
    if not isinstance(data, dict) or _COLUMNAR not in data:
        return data
    keys, agents, values = data[_COLUMNAR], data["agents"], data["values"]
    rows = zip(*values, strict=True)
    return {a: dict(zip(keys, col, strict=True)) for a, col in zip(agents, rows, strict=True)}


def pack(record: dict[str, Any]) -> bytes:
    """One record as a frame (header + zstd-compressed JSON)."""
    raw = encode({**record, "settlements": _columnar(record.get("settlements", {}))})
    comp = _CODEC.compress(raw, asbytes=True)
    return _HEADER.pack(len(comp), len(raw), zlib.crc32(comp)) + comp


def _frames(data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(end offset, record)`` of every whole frame, stopping at a torn or bad one."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        n, raw_len, crc = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + n
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            return
        try:
            raw = _CODEC.decompress(data[start:end], decompressed_size=raw_len, asbytes=True)
            rec = orjson.loads(raw)
        except (pa.ArrowException, orjson.JSONDecodeError):
            return
        rec["settlements"] = _rows(rec.get("settlements", {}))
        yield end, rec
        pos = end


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("ledger-*.seg"))


def fingerprint(scenario_json: str) -> str:
    """What identifies a scenario in ``run.json`` (a SHA-256 of its JSON)."""
    return hashlib.sha256(scenario_json.encode()).hexdigest()


class Ledger:
    """Append-only interval records in ``directory`` (see the module docstring).

    Parameters
    ----------
    directory : the state directory (created)
    community : the community; a ledger of another one is refused
    scenario : the scenario's fingerprint (:func:`fingerprint`); a ledger of another
        scenario is refused
    every : intervals per segment (a new ledger's; an existing one keeps its own)
    """

    def __init__(
        self, directory: Path, community: str, scenario: str = "", every: int = CHECKPOINT_EVERY
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.community = community
        self.last: dict[str, Any] | None = None
        self.tail: list[dict[str, Any]] = []
        """The correction records after :attr:`last`."""
        self.torn_bytes = 0
        self.read_segments = 0
        """Segments read when opening (at most two)."""
        if (directory / "ledger.jsonl").exists():
            raise LedgerError(
                f"{directory} holds a ledger of an older p2pgrid (ledger.jsonl): "
                "finish that run with the version that wrote it, or use another --state"
            )
        self.run = self._header(scenario, every)
        self._fh: Any = None
        self._seg_t0 = -1
        self._recover()

    def _header(self, scenario: str, every: int) -> str:
        path = self.directory / RUN_FILE
        if not path.exists():
            if _segments(self.directory):
                raise LedgerError(f"{self.directory}: ledger segments without {RUN_FILE}")
            head = {
                "run": uuid.uuid4().hex[:12],
                "community": self.community,
                "scenario": scenario,
                "every": every,
            }
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(head, indent=1), encoding="utf-8")
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            tmp.replace(path)
        else:
            head = json.loads(path.read_text(encoding="utf-8"))
        if head.get("community") != self.community:
            raise LedgerError(
                f"{self.directory} holds the ledger of community {head.get('community')!r}, "
                f"not {self.community!r}: use another --state"
            )
        if scenario and head.get("scenario") != scenario:
            raise LedgerError(
                f"{self.directory} holds the ledger of run {head['run']} of another scenario "
                "(its settings differ from this one's): resume it with the same scenario, "
                "or use another --state"
            )
        self.every = int(head["every"])
        return str(head["run"])

    def _recover(self) -> None:
        segs = _segments(self.directory)
        for seg in reversed(segs[-2:]):  # the newest segment, else the one before
            data = seg.read_bytes()
            self.read_segments += 1
            good, recs, tail = 0, [], []
            for end, rec in _frames(data):
                if rec.get("community") != self.community:
                    raise LedgerError(f"{seg} belongs to community {rec.get('community')!r}")
                if "corrects_after" in rec:
                    if not recs or rec["corrects_after"] != recs[-1]["t"]:
                        raise LedgerError(f"{seg}: a correction record out of place")
                    tail.append(rec)
                else:
                    if recs and rec["t"] != recs[-1]["t"] + 1:
                        raise LedgerError(f"{seg}: interval {rec['t']} follows {recs[-1]['t']}")
                    recs.append(rec)
                    tail = []
                good = end
            if good < len(data):
                self.torn_bytes += len(data) - good
                with open(seg, "r+b") as fh:
                    fh.truncate(good)
                    fh.flush()
                    os.fsync(fh.fileno())
            if recs:
                self.last, self.tail = recs[-1], tail
                if seg == segs[-1]:
                    self._seg_t0 = int(seg.stem.split("-")[1])
                break
            if seg == segs[-1]:  # an empty newest segment: its records never got written
                seg.unlink()

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
        t = record["t"]
        if t != self.next_t:
            raise LedgerError(f"interval {t} committed out of order (next is {self.next_t})")
        if self._fh is None or t - self._seg_t0 >= self.every:
            self._roll(t)
        self.last, self.tail = self._write(record), []

    def append_corrections(self, record: dict[str, Any]) -> None:
        """Commit a correction record after the last interval, in its segment (same
        guarantees as :meth:`append`)."""
        if self.last is None:
            raise LedgerError("a correction record before any interval")
        if self._fh is None:  # reopened: the newest segment holds the last interval
            seg = _segments(self.directory)[-1]
            self._seg_t0 = int(seg.stem.split("-")[1])
            self._fh = open(seg, "ab")
        self.tail.append(self._write({"corrects_after": self.last["t"], **record}))

    def _write(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"community": self.community, **record}
        self._fh.write(pack(record))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return record

    def _roll(self, t: int) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._seg_t0 < 0 or t - self._seg_t0 >= self.every:
            self._seg_t0 = t
        path = self.directory / f"ledger-{self._seg_t0:010d}.seg"
        self._fh = open(path, "ab")
        dfd = os.open(self.directory, os.O_RDONLY)  # the new file's name is durable too
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def has_ledger(directory: Path) -> bool:
    return (directory / RUN_FILE).exists()


def read_ledger(directory: Path) -> list[dict[str, Any]]:
    """Every whole record of a ledger, in order (for tests, tools and the dashboard)."""
    out: list[dict[str, Any]] = []
    for seg in _segments(directory):
        out.extend(rec for _, rec in _frames(seg.read_bytes()))
    return out


def recent_values(directory: Path, key: str, k: int) -> list[Any]:
    """``key`` of each of the last ``k`` interval records that hold it, oldest first
    (fewer when the ledger holds fewer), reading segments from the newest back only as
    far as needed and keeping nothing else of the records."""
    found: list[Any] = []
    for seg in reversed(_segments(directory)):
        values = [
            rec[key] for _, rec in _frames(seg.read_bytes())
            if "corrects_after" not in rec and key in rec
        ]  # fmt: skip
        found = values + found
        if len(found) >= k:
            break
    return found[-k:] if k > 0 else []
