"""The tamper-evident audit ledger: a hash chain of entries with signed Merkle checkpoints.

One writer for the batch engine (``p2pgrid run --ledger``) and the live market. A ledger
is a directory (``ledger/``):

- ``scenario.json``: the scenario as run (what replay loads);
- ``keys.json``: the public key registry (households, meters and ``"market"``);
- ``chain.jsonl``: one entry per line, ``{"hash", "header", "clearing", "inputs",
  "settlements"}``, ``hash = digest(header)`` (SHA-256 of the header's RFC 8785 bytes);
  an interval's ``clearing`` (its anonymous ``market/result``) is bound to the header by
  its digest (the header's ``clearing``), ``inputs`` and ``settlements`` by their Merkle
  roots
  (:mod:`scenarios.audit.leaves`). Every header has ``seq`` (0, 1, …), ``kind``
  (``genesis`` | ``interval`` | ``correction``) and ``prev`` (the previous entry's hash;
  null for the genesis);
- ``checkpoints.jsonl``: one checkpoint per line, signed with the market's key: the
  Merkle root over ``leaf_hash(bytes.fromhex(hash))`` of the entries since the previous
  checkpoint, linked to it by ``prev`` (the digest of the previous signed checkpoint);
- ``private/<sha256>.json``: the raw signed messages as received, named by the SHA-256
  of their bytes and referenced from the input leaves: erasable without breaking the
  chain (nothing personal beyond what settlement needs is hashed into it).

The writer appends a line at a time (with ``fsync``: flushed and synced per line, so a
killed process leaves at most a torn last line, which :meth:`AuditWriter.open` drops).
:meth:`AuditWriter.open` resumes a ledger in a new ``session`` (replay rebuilds the grid
stage at every new session, as a restarted market did).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from agents.households.community import Plan
from scenarios.audit import merkle
from scenarios.audit.bills import bills_of
from scenarios.audit.canonical import digest
from scenarios.audit.chain import (
    CHAIN_FILE,
    CHECKPOINTS_FILE,
    KEYS_FILE,
    MARKET_KEY_FILE,
    PRIVATE_DIR,
    SCENARIO_FILE,
    LedgerFormatError,
    _drop_torn_line,
    ledger_dir,
    read_chain,
    read_checkpoints,
    read_entry,
)
from scenarios.audit.keys import MARKET_KEY, KeyPair, Registry
from scenarios.audit.leaves import (
    correction_input,
    inputs_from_plan,
    leaves_root,
    settlement_leaves,
)
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids

__all__ = [
    "CHAIN_FILE",
    "CHECKPOINTS_FILE",
    "DEFAULT_EVERY",
    "KEYS_FILE",
    "MARKET_KEY_FILE",
    "PRIVATE_DIR",
    "SCENARIO_FILE",
    "AuditWriter",
    "LedgerFormatError",
    "correction_input",
    "ledger_dir",
    "read_chain",
    "read_checkpoints",
    "read_entry",
]
DEFAULT_EVERY = 96


class AuditWriter:
    """Appends a run's entries and checkpoints to a ledger directory.

    Parameters
    ----------
    directory : the ``ledger/`` folder (created; must not hold a chain yet)
    scenario : the scenario as run (written to ``scenario.json``)
    registry : the households' and meters' public keys (the market's is added)
    market_key : the market operator's key pair (signs the checkpoints)
    run : the run id
    every : interval entries per checkpoint
    fsync : flush and fsync every line (live); else buffered (batch)
    origin : ``"batch"`` or ``"live"`` (how replay rebuilds the background load and
        the grid stage's first solve; in the genesis)
    community : the community's name (default: ``[live] community``, else the name)
    """

    def __init__(
        self,
        directory: Path,
        scenario: Scenario,
        registry: Registry,
        market_key: KeyPair,
        run: str,
        every: int = DEFAULT_EVERY,
        fsync: bool = False,
        origin: str = "batch",
        community: str | None = None,
        _resume: bool = False,
    ) -> None:
        if every < 1:
            raise ValueError(f"every is {every}: at least one interval per checkpoint")
        self.dir = Path(directory)
        self.scenario = scenario
        self.key = market_key
        self.run = run
        self.every = every
        self.fsync = fsync
        self.ids = household_ids(scenario.community.households)
        self.community = community or scenario.live.community or scenario.name
        self.session = 0
        self.seq = 0
        self.last_hash: str | None = None
        self.last_t: int | None = None
        """The last interval entered (None before the first)."""
        self._pending: list[tuple[str, int | None]] = []
        """(hash, t) of every entry since the last checkpoint."""
        self._pending_intervals = 0
        self._checkpoints = 0
        self._last_checkpoint: dict[str, Any] | None = None
        self._pending_offset = 0
        self._window_hashes: dict[str, tuple[list[bytes], list[bytes]]] = {}
        """Entry hash → its input and settlement leaf hashes, for the entries since the
        last checkpoint (what :meth:`bills` needs, not computed twice)."""
        self._cp_hashes: tuple[int, dict[str, tuple[list[bytes], list[bytes]]]] = (-1, {})
        self._offsets: dict[int, int] = {}
        """Byte offset in the chain of each checkpoint's first entry (this process's)."""
        (self.dir / PRIVATE_DIR).mkdir(parents=True, exist_ok=True)
        if _resume:
            self._resume()
        else:
            if (self.dir / CHAIN_FILE).exists():
                raise LedgerFormatError(f"{self.dir}: a ledger is already here")
            (self.dir / SCENARIO_FILE).write_text(scenario.model_dump_json(), encoding="utf-8")
            keys = Registry({k: registry.public_b64(k) for k in registry.ids()})
            keys.add(MARKET_KEY, market_key.public_b64)
            keys.save(self.dir / KEYS_FILE)
        self.registry = Registry.load(self.dir / KEYS_FILE)
        self._chain: IO[bytes] = (self.dir / CHAIN_FILE).open("ab")
        self._cps: IO[bytes] = (self.dir / CHECKPOINTS_FILE).open("ab")
        if not _resume:
            self._append(
                {
                    "kind": "genesis",
                    "community": self.community,
                    "run": run,
                    "scenario": digest(orjson.loads((self.dir / SCENARIO_FILE).read_bytes())),
                    "keys": digest(self.registry.to_json()),
                    "market_key": market_key.public_b64,
                    "every": every,
                    "mechanism": scenario.market.mechanism,
                    "origin": origin,
                },
                [],
                [],
            )

    @classmethod
    def open(cls, directory: Path, market_key: KeyPair, fsync: bool = True) -> AuditWriter:
        """Resume the ledger in ``directory`` (after a restart): a torn last line is
        dropped, the chain continues from its last entry, the next checkpoint covers the
        entries since the last one, and the session is one more than the last entry's."""
        directory = Path(directory)
        scenario = Scenario.model_validate_json((directory / SCENARIO_FILE).read_bytes())
        genesis = next(read_chain(directory))["header"]
        if genesis.get("market_key") != market_key.public_b64:
            raise LedgerFormatError(f"{directory}: the market key is not the genesis's")
        return cls(
            directory,
            scenario,
            Registry(),
            market_key,
            genesis["run"],
            int(genesis["every"]),
            fsync,
            genesis.get("origin", "live"),
            genesis["community"],
            _resume=True,
        )

    def _resume(self) -> None:
        _drop_torn_line(self.dir / CHAIN_FILE)
        _drop_torn_line(self.dir / CHECKPOINTS_FILE)
        cps = read_checkpoints(self.dir)
        covered = cps[-1]["last_entry"] if cps else -1
        self._checkpoints = len(cps)
        self._last_checkpoint = cps[-1] if cps else None
        session = -1
        for entry in read_chain(self.dir):
            h = entry["header"]
            self.seq, self.last_hash = h["seq"] + 1, entry["hash"]
            session = max(session, int(h.get("session", 0)))
            if h["kind"] == "interval":
                self.last_t = h["t"]
            if h["seq"] > covered:
                if not self._pending:
                    self._pending_offset = entry["_offset"]
                self._pending.append((entry["hash"], h.get("t")))
                self._pending_intervals += h["kind"] == "interval"
        self.session = session + 1

    # --- entries -----------------------------------------------------------------------
    def _write(self, fh: IO[bytes], record: Mapping[str, Any]) -> int:
        offset = fh.tell()
        fh.write(orjson.dumps(record) + b"\n")
        if self.fsync:
            fh.flush()
            os.fsync(fh.fileno())
        return offset

    def _append(
        self,
        body: dict[str, Any],
        inputs: Sequence[Any],
        settlements: Sequence[Any],
        hashes: tuple[list[bytes], list[bytes]] | None = None,
        clearing: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        header = {"seq": self.seq, "kind": body.pop("kind"), "prev": self.last_hash, **body}
        h = digest(header)
        if hashes is not None:
            self._window_hashes[h] = hashes
        offset = self._write(
            self._chain,
            {
                "hash": h,
                "header": header,
                **({} if clearing is None else {"clearing": clearing}),
                "inputs": inputs,
                "settlements": settlements,
            },
        )
        if not self._pending:
            self._pending_offset = offset
        self._pending.append((h, header.get("t")))
        self.seq += 1
        self.last_hash = h
        return header

    def private(self, raw: bytes) -> str:
        """Store a raw message (as received) in ``private/``; its SHA-256 (hex), by which
        input leaves reference it."""
        name = hashlib.sha256(raw).hexdigest()
        path = self.dir / PRIVATE_DIR / f"{name}.json"
        if not path.exists():
            path.write_bytes(raw)
            if self.fsync:
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
        return name

    def interval(
        self,
        t: int,
        plan: Plan,
        settlements: Mapping[str, Mapping[str, Any]],
        clearing: Mapping[str, Any],
        rng_before: Mapping[str, Any],
        readings: Iterable[int] | None = None,
        signed: Mapping[str, Sequence[str]] | None = None,
        estimated: Iterable[str] = (),
        rejected: Mapping[str, int] | None = None,
        where: Sequence[tuple[int, int]] | None = None,
    ) -> dict[str, Any]:
        """Enter interval ``t``: ``plan`` as it went into the step, every household's
        settlement payload (as published), the anonymous ``clearing`` (``market/result``)
        and the step's rng state before clearing (:func:`~scenarios.audit.leaves.rng_to_json`
        form); the rest as in :func:`~scenarios.audit.leaves.inputs_from_plan`. Returns
        the entry's header."""
        estimated = sorted(set(estimated), key=self.ids.index) if estimated else []
        inputs = inputs_from_plan(t, plan, self.ids, readings, signed, estimated, rejected, where)
        leaves = settlement_leaves(t, self.ids, settlements)
        inputs_root, input_hashes = leaves_root(inputs)
        settlements_root, settlement_hashes = leaves_root(leaves)
        header = self._append(
            {
                "kind": "interval",
                "t": t,
                "session": self.session,
                "rng": dict(rng_before),
                "inputs_root": inputs_root,
                "n_inputs": len(inputs),
                "settlements_root": settlements_root,
                "n_settlements": len(leaves),
                "clearing": digest(dict(clearing)),
                "estimated": list(estimated),
            },
            inputs,
            leaves,
            (input_hashes, settlement_hashes),
            dict(clearing),
        )
        self.last_t = t
        self._pending_intervals += 1
        return header

    def correction(
        self,
        t: int,
        reason: str,
        inputs: Sequence[Mapping[str, Any]],
        settlements: Sequence[Mapping[str, Any]],
        supersedes: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any]:
        """Enter a correction of interval ``t``: the input leaves of the metered energy
        that corrected it (:func:`correction_input`), the settlement leaves of the new
        versions, and ``supersedes``: ``{agent, version, leaf}`` of each version replaced
        (``leaf``: the hex leaf hash of that version's settlement leaf)."""
        inputs_root, input_hashes = leaves_root(inputs)
        settlements_root, settlement_hashes = leaves_root(settlements)
        return self._append(
            {
                "kind": "correction",
                "t": t,
                "session": self.session,
                "reason": reason,
                "inputs_root": inputs_root,
                "n_inputs": len(inputs),
                "settlements_root": settlements_root,
                "n_settlements": len(settlements),
                "supersedes": [dict(s) for s in supersedes],
            },
            list(inputs),
            list(settlements),
            (input_hashes, settlement_hashes),
        )

    # --- checkpoints -------------------------------------------------------------------
    def checkpoint(self, force: bool = False) -> dict[str, Any] | None:
        """Emit the signed checkpoint over the entries since the last one when
        :attr:`every` interval entries have come (or, with ``force``, when any has)."""
        if not self._pending or not (force or self._pending_intervals >= self.every):
            return None
        self._chain.flush()
        ts = [t for _, t in self._pending if t is not None]
        first = self.seq - len(self._pending)
        body = {
            "v": 1,
            "community": self.community,
            "run": self.run,
            "seq": self._checkpoints,
            "first_entry": first,
            "last_entry": self.seq - 1,
            "first_t": min(ts) if ts else None,
            "last_t": max(ts) if ts else None,
            "root": merkle.root(
                [merkle.leaf_hash(bytes.fromhex(h)) for h, _ in self._pending]
            ).hex(),
            "prev": None if self._last_checkpoint is None else digest(self._last_checkpoint),
            "market_key": self.key.public_b64,
        }
        signed = self.key.sign(body)
        self._write(self._cps, signed)
        self._cps.flush()
        self._last_checkpoint = signed
        self._offsets[self._checkpoints] = self._pending_offset
        self._cp_hashes = (self._checkpoints, self._window_hashes)
        self._window_hashes = {}
        self._checkpoints += 1
        self._pending_offset = self._chain.tell()
        self._pending.clear()
        self._pending_intervals = 0
        return signed

    def bills(self, checkpoint: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Every household's bill under ``checkpoint`` (one this writer emitted)."""
        self._chain.flush()
        seq = int(checkpoint["seq"])
        known = self._cp_hashes[1] if self._cp_hashes[0] == seq else None
        return bills_of(self.dir, checkpoint, self._offsets.get(seq), known)

    def close(self) -> dict[str, Any] | None:
        """Emit the last checkpoint (if any entry is not yet in one) and close the files."""
        cp = self.checkpoint(force=True)
        self._chain.close()
        self._cps.close()
        return cp
