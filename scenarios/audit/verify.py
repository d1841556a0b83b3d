"""``p2pgrid ledger verify``: every check a ledger allows, without trusting its writer.

In one pass over the chain (:mod:`scenarios.audit.ledger`):

1. the genesis: ``scenario`` and ``keys`` are the digests of ``scenario.json`` and
   ``keys.json`` as they are; its ``market_key`` is the registry's ``"market"`` key;
2. every entry: ``hash`` is the digest of its header, ``seq`` counts up from 0, ``prev``
   is the previous entry's hash, the leaves fold to ``inputs_root`` and
   ``settlements_root`` (counts included), every leaf names the entry's interval, interval
   entries settle every household once, in row order, at version 1, intervals come in
   increasing ``t``;
3. every raw signed message an input leaf references that is still in ``private/``: its
   bytes hash to its name and its signature holds under the key of the household or of
   its meter (:mod:`scenarios.audit.messages`: a natively signed OCMF record under the
   meter's registered ``public_key``); one that has been deleted is counted as *erased*
   (it can no longer be re-checked) and is not a failure; the registers of a meter's
   OCMF records give the metered energy its household's input leaves hold
   (:mod:`scenarios.audit.registers`);
4. the replay (:mod:`scenarios.audit.replay`): every interval's clearing and every
   settlement re-derived to the cent (:mod:`scenarios.audit.compare`), every correction
   re-derived from the version it supersedes (which must be that household's last
   version of the interval);
5. every checkpoint: numbered from 0, covering the entries after the previous one's, its
   root over those entries' hashes, ``prev`` the digest of the previous checkpoint, its
   key the genesis's market key, its signature valid. Entries after the last checkpoint
   are reported (a market stopped before its next checkpoint), not failed.

Problems are reported in entry order; the first reads ``ledger: interval <t> (entry
<seq>): <what>`` (a checkpoint's problem names its first interval).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from scenarios.audit.canonical import CanonicalError, digest
from scenarios.audit.chain import (
    KEYS_FILE,
    PRIVATE_DIR,
    SCENARIO_FILE,
    LedgerFormatError,
    ledger_dir,
    read_chain,
    read_checkpoints,
    read_entry,
)
from scenarios.audit.compare import first_difference
from scenarios.audit.keys import MARKET_KEY, Registry, SignatureError
from scenarios.audit.leaves import LeafError, leaves_root
from scenarios.audit.messages import Messages
from scenarios.audit.registers import Registers
from scenarios.audit.replay import Replayer
from scenarios.audit.verify_checkpoints import check_checkpoints
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids


@dataclass(frozen=True, order=True)
class Problem:
    seq: int
    t: int | None
    what: str

    def line(self) -> str:
        if self.t is None:
            return f"ledger: entry {self.seq}: {self.what}"
        return f"ledger: interval {self.t} (entry {self.seq}): {self.what}"


@dataclass
class Report:
    """What :func:`verify` checked and found."""

    directory: Path
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    intervals: int = 0
    corrections: int = 0
    checkpoints: int = 0
    uncheckpointed: int = 0
    signatures: int = 0
    registers: int = 0
    """Intervals whose metered energy was compared with its meter's OCMF records."""
    erased: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of the checks: ``read`` (parse, hash, fold), ``signatures``, ``replay``,
    ``checkpoints``."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, seq: int, t: int | None, what: str) -> None:
        self.problems.append(Problem(seq, t, what))


class _Verifier:
    def __init__(self, directory: Path, replay: bool) -> None:
        self.dir = directory
        self.report = Report(directory)
        self.replay = replay
        self.scenario = Scenario.model_validate_json((directory / SCENARIO_FILE).read_bytes())
        self.registry = Registry.load(directory / KEYS_FILE)
        self.messages = Messages(self.scenario, self.registry)
        sim = self.scenario.simulation
        self.registers = Registers(sim.start_timestamp().timestamp(), sim.interval_minutes * 60.0)
        self.ids = household_ids(self.scenario.community.households)
        self.hashes: list[tuple[str, int | None]] = []
        self.last_t = -1
        self.latest: dict[tuple[str, int], tuple[int, str, int, int]] = {}
        """(agent, t) → (version, leaf hash, entry offset, index in its settlements)."""
        self.replayer: Replayer | None = None
        self.genesis: dict[str, Any] = {}
        self.clock = dict.fromkeys(("read", "signatures", "replay", "checkpoints"), 0.0)

    def run(self) -> Report:
        r = self.report
        began = time.perf_counter()
        for entry in read_chain(self.dir):
            self.entry(entry)
        self.compare_registers()
        self.clock["read"] += time.perf_counter() - began
        r.entries = len(self.hashes)
        began = time.perf_counter()
        self.checkpoints()
        self.clock["checkpoints"] += time.perf_counter() - began
        if self.replayer is not None:
            self.replayer.close()
        # the replay and signature times were counted inside the entries' time
        self.clock["read"] -= self.clock["replay"] + self.clock["signatures"]
        r.seconds = self.clock
        r.problems.sort()
        return r

    # --- entries -----------------------------------------------------------------------
    def entry(self, entry: dict[str, Any]) -> None:
        r, header = self.report, entry["header"]
        seq, t = len(self.hashes), header.get("t")
        t = t if isinstance(t, int) else None
        try:
            h = digest(header)
        except CanonicalError as exc:
            r.add(seq, t, f"header has no canonical form ({exc})")
            h = ""
        if h != entry.get("hash"):
            r.add(seq, t, "hash is not the digest of the header (the entry was changed)")
        if header.get("seq") != seq:
            r.add(seq, t, f"seq is {header.get('seq')!r}, expected {seq}")
        prev = self.hashes[-1][0] if self.hashes else None
        if header.get("prev") != prev:
            r.add(seq, t, "prev is not the previous entry's hash (the chain is broken)")
        self.hashes.append((str(entry.get("hash")), t))
        kind = header.get("kind")
        if seq == 0:
            self.genesis_checks(header)
            return
        if kind not in ("interval", "correction") or t is None:
            r.add(seq, t, f"an entry of kind {kind!r} without an interval")
            return
        inputs, settlements = entry.get("inputs", []), entry.get("settlements", [])
        hashes = self.leaves(seq, t, header, inputs, settlements)
        if hashes is None:
            return
        self.signatures(seq, t, int(header.get("session", 0)), inputs)
        began = time.perf_counter()
        try:
            if kind == "interval":
                r.intervals += 1
                clearing = entry.get("clearing") or {}
                if digest(clearing) != header.get("clearing"):
                    r.add(seq, t, "clearing is not the one the header names (its digest differs)")
                    return
                self.interval(
                    seq, t, header, clearing, inputs, settlements, hashes, entry["_offset"]
                )
            else:
                r.corrections += 1
                self.correction(seq, t, header, inputs, settlements, hashes, entry["_offset"])
        except (LeafError, KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
            # whatever a changed ledger holds, the verifier reports it and goes on
            r.add(seq, t, f"cannot be replayed: {exc!r}")
        self.clock["replay"] += time.perf_counter() - began

    def genesis_checks(self, header: Mapping[str, Any]) -> None:
        r = self.report
        self.genesis = dict(header)
        if header.get("kind") != "genesis":
            r.add(0, None, "the first entry is not the genesis")
        scenario = orjson.loads((self.dir / SCENARIO_FILE).read_bytes())
        if header.get("scenario") != digest(scenario):
            r.add(0, None, f"genesis: {SCENARIO_FILE} is not the scenario the run recorded")
        if header.get("keys") != digest(orjson.loads((self.dir / KEYS_FILE).read_bytes())):
            r.add(0, None, f"genesis: {KEYS_FILE} is not the key registry the run recorded")
        if MARKET_KEY not in self.registry or (
            self.registry.public_b64(MARKET_KEY) != header.get("market_key")
        ):
            r.add(0, None, f"genesis: the market key is not {KEYS_FILE}'s {MARKET_KEY!r}")
        if self.replay:
            self.replayer = Replayer(self.scenario, str(header.get("origin", "batch")))

    def leaves(
        self, seq: int, t: int, header: Mapping[str, Any], inputs: Any, settlements: Any
    ) -> list[bytes] | None:
        """The settlement leaves' hashes when the leaves have the ledger's form."""
        r = self.report
        hashes: list[bytes] = []
        try:
            for name, leaves in (("inputs", inputs), ("settlements", settlements)):
                root, hashes = leaves_root(leaves)
                if header.get(f"n_{name}") != len(leaves):
                    r.add(seq, t, f"n_{name} is {header.get(f'n_{name}')}, {len(leaves)} leaves")
                if header.get(f"{name}_root") != root:
                    r.add(seq, t, f"the {name} leaves do not fold to {name}_root (changed)")
        except CanonicalError as exc:
            r.add(seq, t, f"a leaf has no canonical form ({exc})")
            return None
        for leaf in [*inputs, *settlements]:
            if not isinstance(leaf, dict) or leaf.get("t") != t:
                r.add(seq, t, f"a leaf of another interval: {str(leaf)[:80]}")
                return None
        if header.get("kind") == "interval":
            if t <= self.last_t:
                r.add(seq, t, f"interval {t} comes after interval {self.last_t}")
            self.last_t = max(self.last_t, t)
            agents = [leaf.get("agent") for leaf in settlements]
            if agents != self.ids or any(leaf.get("version") != 1 for leaf in settlements):
                r.add(seq, t, "the settlements are not every household's version 1 in row order")
                return None
        return hashes

    def signatures(self, seq: int, t: int, session: int, inputs: list[dict[str, Any]]) -> None:
        """Every raw message of the entry's input leaves; a natively signing meter's
        records and energy to :attr:`registers`."""
        began = time.perf_counter()
        r = self.report
        for leaf in inputs:
            agent = str(leaf.get("agent"))
            native = agent in self.messages.native
            if native:
                self.registers.version(agent, seq, session, leaf)
            for name in leaf.get("signed", []):
                sample = None
                path = self.dir / PRIVATE_DIR / f"{name}.json"
                raw: bytes | None = None
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:
                    r.erased.append(str(name))
                if raw is not None and hashlib.sha256(raw).hexdigest() != name:
                    r.add(seq, t, f"{agent}: private/{name}.json is not the message recorded")
                elif raw is not None:
                    try:
                        sample = self.messages.check(agent, raw).sample
                        r.signatures += 1
                    except SignatureError as exc:
                        r.add(seq, t, f"{agent}: private/{name}.json: {exc}")
                if native:
                    self.registers.record(agent, session, sample)
        self.clock["signatures"] += time.perf_counter() - began

    def compare_registers(self) -> None:
        began = time.perf_counter()
        for seq, t, what in self.registers.problems():
            self.report.add(seq, t, what)
        self.report.registers = self.registers.compared
        self.clock["signatures"] += time.perf_counter() - began

    def interval(
        self,
        seq: int,
        t: int,
        header: Mapping[str, Any],
        recorded: Mapping[str, Any],
        inputs: list[dict[str, Any]],
        settlements: list[dict[str, Any]],
        hashes: list[bytes],
        offset: int,
    ) -> None:
        for j, (leaf, h) in enumerate(zip(settlements, hashes, strict=True)):
            self.latest[(leaf["agent"], t)] = (1, h.hex(), offset, j)
        if self.replayer is None:
            return
        clearing, payloads, _ = self.replayer.interval(header, inputs, recorded)
        found = first_difference(recorded, clearing)
        if found is not None:
            self.report.add(seq, t, f"clearing {found}")
        for leaf in settlements:
            found = first_difference(leaf["settlement"], payloads[leaf["agent"]])
            if found is not None:
                self.report.add(seq, t, f"settlement of {leaf['agent']} {found}")
                return

    def correction(
        self,
        seq: int,
        t: int,
        header: Mapping[str, Any],
        inputs: list[dict[str, Any]],
        settlements: list[dict[str, Any]],
        hashes: list[bytes],
        offset: int,
    ) -> None:
        r = self.report
        metered = {leaf["agent"]: leaf for leaf in inputs}
        replaced = {s.get("agent"): s for s in header.get("supersedes", [])}
        for j, (leaf, h) in enumerate(zip(settlements, hashes, strict=True)):
            agent = leaf["agent"]
            last = self.latest.get((agent, t))
            old = replaced.get(agent)
            if last is None or old is None:
                r.add(seq, t, f"{agent}: a correction of no earlier settlement")
                continue
            version, leaf_hash, at, index = last
            if old.get("leaf") != leaf_hash or old.get("version") != version:
                r.add(seq, t, f"{agent}: supersedes a version that is not its last ({version})")
            if leaf.get("version") != version + 1:
                r.add(seq, t, f"{agent}: version {leaf.get('version')} after {version}")
            self.latest[(agent, t)] = (version + 1, h.hex(), offset, j)
            if self.replayer is None:
                continue
            if agent not in metered:
                r.add(seq, t, f"{agent}: no metered energy for the correction")
                continue
            previous = read_entry(self.dir, at)["settlements"][index]["settlement"]
            new = self.replayer.correction(
                t, int(header.get("session", 0)), previous, metered[agent]
            )
            found = first_difference(leaf["settlement"], new)
            if found is not None:
                r.add(seq, t, f"version {version + 1} of {agent} {found}")

    def checkpoints(self) -> None:
        cps = read_checkpoints(self.dir)
        self.report.checkpoints = len(cps)
        key = str(self.genesis.get("market_key")) if self.genesis else None
        self.report.uncheckpointed = check_checkpoints(cps, self.hashes, key, self.report.add)


def verify(path: Path, replay: bool = True) -> Report:
    """Verify the ledger at ``path`` (the ``ledger/`` folder or a folder holding one)."""
    directory = ledger_dir(path)
    try:
        return _Verifier(directory, replay).run()
    except (OSError, LedgerFormatError, ValueError) as exc:
        report = Report(directory)
        report.add(0, None, f"not a readable ledger: {exc}")
        return report
