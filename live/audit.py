"""The live market's audit ledger, ``<state>/ledger/`` (:mod:`scenarios.audit.ledger`: the
same chain, checkpoints and bills a batch run writes with ``--ledger``).

Per committed interval the market enters, through :class:`LiveAudit`:

- the raw messages the households' inputs came from into ``private/`` (named by their
  SHA-256, :mod:`live.provenance`), then the interval entry: the input leaves of the
  plan it cleared (readings, orders in each message's order, for a meter-backed
  household its meter's energy; the hashes of its messages and its rejected count), the
  step's random state *before* clearing, the anonymous ``market/result`` as published
  (``clearing``) and every household's settlement as published;
- one correction entry per interval whose late meter energy came at this gate
  (reason ``"late meter data"``): the metered energy as input leaves, the re-issued
  settlements (version k+1) as settlement leaves, each naming the leaf hash of the
  version k it supersedes; also the corrections of the close-out after the last gate;
- every ``[live] checkpoint_every`` interval entries (and after the last interval) a
  checkpoint signed with the market's key, which the market publishes retained on
  ``ledger/checkpoint``, then every household's bill on ``agents/<id>/bill``.

Order of the two ledgers (the state ledger ``ledger-*.seg``, :mod:`live.ledger`, is the
commit point): the audit entries of an interval are written (fsynced) *before* the state
ledger's record, which names the last of them (``audit_seq``); checkpoints only after
it. A market killed between the two has audit entries that no state record names:
:meth:`LiveAudit.open` cuts the chain back to the last entry the state ledger names
(:func:`cut_chain`), so the restarted market, which clears that interval again, enters
it once (in a new ``session``). The audit chain is never behind the state ledger, and
no checkpoint ever covers an uncommitted entry.

The market's key: ``[live] market_key`` (a key file, ``p2pgrid keys new``), else
``<state>/ledger/market.key``, generated on the first start and reused after. Keep that
file out of what is handed to auditors (verifying needs only the public key in
``keys.json`` and the genesis).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from agents.households.community import Plan
from live.bus import Bus
from live.protocol import Topics
from live.provenance import InputMessages
from scenarios.audit.keys import MARKET_KEY, KeyPair, Registry, fingerprint
from scenarios.audit.leaves import leaf_hex, settlement_leaves
from scenarios.audit.ledger import (
    CHAIN_FILE,
    CHECKPOINTS_FILE,
    KEYS_FILE,
    SCENARIO_FILE,
    AuditWriter,
    correction_input,
    read_checkpoints,
)
from scenarios.config.schema import Scenario

LEDGER_DIR = "ledger"
KEY_FILE = "market.key"
LATE_METER_DATA = "late meter data"
"""The reason of a correction entry for a late meter's energy (:mod:`live.corrections`)."""


def market_key(scenario: Scenario, directory: Path) -> KeyPair:
    """The market's key pair: ``[live] market_key``'s file, else ``directory/market.key``
    (generated when absent); its key id is always ``"market"``."""
    path = Path(scenario.live.market_key) if scenario.live.market_key else directory / KEY_FILE
    if not path.exists() and not scenario.live.market_key:
        KeyPair.new(MARKET_KEY).save(path)
    key = KeyPair.load(path)
    return key if key.id == MARKET_KEY else KeyPair(MARKET_KEY, key.private)


def registry(scenario: Scenario) -> Registry:
    """The households' and meters' public keys the scenario registers (``[live] keys``),
    else none."""
    path = scenario.live.keys
    return Registry.load(Path(path)) if path else Registry()


def settlement_leaf(agent: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A settlement payload as its ledger leaf (:mod:`scenarios.audit.leaves`)."""
    return settlement_leaves(int(payload["t"]), [agent], {agent: payload})[0]


def supersedes(agent: str, previous: Mapping[str, Any]) -> dict[str, Any]:
    """What a correction names of the settlement version it replaces."""
    return {
        "agent": agent,
        "version": int(previous.get("version", 1)),
        "leaf": leaf_hex(settlement_leaf(agent, previous)),
    }


def cut_chain(directory: Path, last_seq: int) -> int:
    """Cut ``chain.jsonl`` back to the entries up to ``last_seq`` (a torn last line
    included in what goes); how many whole entries were cut."""
    path = directory / CHAIN_FILE
    data = path.read_bytes()
    keep, cut, pos = 0, 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        try:
            seq = orjson.loads(data[pos:end])["header"]["seq"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            break
        if seq > last_seq:
            cut += 1
        else:
            keep = end + 1
        pos = end + 1
    if keep != len(data):
        with path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return cut


def sync_file_system(path: Path) -> None:
    """Flush the file system holding ``path`` to disk (Linux ``syncfs``; elsewhere
    ``sync``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _has_genesis(directory: Path) -> bool:
    path = directory / CHAIN_FILE
    if not path.exists():
        return False
    with path.open("rb") as fh:
        return fh.readline().endswith(b"\n")


class LiveAudit:
    """The market's side of the audit ledger in ``state_dir/ledger/``.

    Parameters
    ----------
    scenario : the validated scenario
    state_dir : the market's state directory
    community : the community's topic level (in the genesis and every checkpoint)
    run : the run id (the state ledger's, carried in every clock)
    latest : the state ledger's latest record (its ``audit_seq``: the last audit entry it
        committed); None when it holds none yet
    """

    def __init__(
        self,
        scenario: Scenario,
        state_dir: Path,
        community: str,
        run: str,
        latest: Mapping[str, Any] | None,
    ) -> None:
        self.dir = state_dir / LEDGER_DIR
        self.scenario, self.community, self.run = scenario, community, run
        self.committed: int | None = None if latest is None else latest.get("audit_seq")
        self.cut = 0
        """Audit entries cut on opening (written by a market killed before its commit)."""
        self._writer: AuditWriter | None = None

    @property
    def writer(self) -> AuditWriter:
        """The ledger's writer, opened on first use (a market that is only constructed
        leaves no file open): a ledger on disk is cut back to the committed entries and
        resumed in a new session, else a new one starts with its genesis."""
        if self._writer is not None:
            return self._writer
        self.dir.mkdir(parents=True, exist_ok=True)
        key = market_key(self.scenario, self.dir)
        if _has_genesis(self.dir):
            self.cut = cut_chain(self.dir, 0 if self.committed is None else self.committed)
            self._writer = AuditWriter.open(self.dir, key, fsync=True)
        else:  # new, or killed while writing its genesis
            for name in (CHAIN_FILE, CHECKPOINTS_FILE, SCENARIO_FILE, KEYS_FILE):
                (self.dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir / "private", ignore_errors=True)
            self._writer = AuditWriter(
                self.dir,
                self.scenario,
                registry(self.scenario),
                key,
                self.run,
                self.scenario.live.checkpoint_every,
                fsync=True,
                origin="live",
                community=self.community,
            )
        return self._writer

    def open(self) -> str:
        """Open the writer now (the market's start: the genesis, or the cut and resume);
        a line for the market's log: where, the session, the market key's fingerprint
        (what a household checks its bill's checkpoint against)."""
        writer = self.writer
        cut = f", {self.cut} uncommitted entries cut" if self.cut else ""
        return (
            f"audit ledger {self.dir} (session {writer.session}{cut}); market key "
            f"{fingerprint(writer.key.public_b64)}"
        )

    @property
    def seq(self) -> int:
        """The last entry written (the state record's ``audit_seq``)."""
        return self.writer.seq - 1

    def interval(
        self,
        t: int,
        plan: Plan,
        where: Sequence[tuple[int, int]],
        readings: Iterable[int],
        settlements: Mapping[str, Mapping[str, Any]],
        clearing: Mapping[str, Any],
        rng_before: Mapping[str, Any],
        messages: InputMessages,
        estimated: Iterable[str],
    ) -> None:
        """Enter interval ``t``'s raw messages and its entry (see the module docstring)."""
        self.store(messages)
        self.writer.interval(
            t,
            plan,
            settlements,
            clearing,
            rng_before,
            readings=readings,
            signed=messages.signed,
            estimated=estimated,
            rejected=messages.rejected,
            where=where,
        )

    def store(self, messages: InputMessages) -> None:
        """The raw signed messages into ``private/``, made durable by one sync of their
        file system before the entry that names them is written, not by an fsync per
        file (10,000 files an interval at 5,000 households: ~40 s of fsyncs on this
        machine's disk, against well under a second)."""
        if not messages.raw:
            return
        writer = self.writer
        fsync, writer.fsync = writer.fsync, False
        try:
            for raw in messages.raw.values():
                writer.private(raw)
        finally:
            writer.fsync = fsync
        if fsync:
            sync_file_system(self.dir / "private")

    def enter(
        self,
        entry: Mapping[str, Any],
        corrections: Sequence[Mapping[str, Any]],
        row: Mapping[str, int],
    ) -> int:
        """:meth:`interval` (``entry``: its arguments), then :meth:`corrections` of the
        same gate; the last entry's seq (what the state record names)."""
        self.interval(**entry)
        return self.corrections(corrections, row, entry["messages"])

    def corrections(
        self,
        items: Sequence[Mapping[str, Any]],
        row: Mapping[str, int],
        messages: InputMessages | None = None,
    ) -> int:
        """One correction entry per interval the ``items`` (:meth:`live.corrections.
        MeterCorrections.due`) re-settle, households in row order; the input leaves name
        the meter samples that came since the previous gate (``messages``)."""
        if messages is not None:
            self.store(messages)
        by_t: dict[int, list[Mapping[str, Any]]] = {}
        for item in items:
            by_t.setdefault(int(item["settlement"]["t"]), []).append(item)
        for t, group in sorted(by_t.items()):
            group = sorted(group, key=lambda c: row[c["agent"]])
            signed = messages.signed if messages is not None else {}
            inputs = [
                correction_input(
                    c["agent"],
                    t,
                    c["settlement"]["demand_kwh"],
                    c["settlement"]["generation_kwh"],
                    signed.get(c["agent"], ()),
                )
                for c in group
            ]
            leaves = [settlement_leaf(c["agent"], c["settlement"]) for c in group]
            self.writer.correction(
                t, LATE_METER_DATA, inputs, leaves, [c["supersedes"] for c in group]
            )
        return self.seq

    def publish(self, bus: Bus, topics: Topics, last: bool = False) -> bool:
        """Publish the checkpoint when one is due (``last``: the run's last), retained,
        then every household's bill; whether one was."""
        cp = self.writer.checkpoint(force=last)
        if cp is None:
            return False
        bus.publish(topics.checkpoint, cp, retain=True)
        for agent, bill in self.writer.bills(cp).items():
            bus.publish(topics.bill(agent), bill)
        return True

    def republish(self, bus: Bus, topics: Topics) -> None:
        """After a restart: the newest checkpoint again (retained), then one that came due
        with the last committed interval (a market killed before publishing it)."""
        cps = read_checkpoints(self.dir)
        if cps:
            bus.publish(topics.checkpoint, cps[-1], retain=True)
        self.publish(bus, topics)

    def close(self, latest: Mapping[str, Any] | None) -> None:
        """Close the ledger's files; ``latest``: the state ledger's latest record. When
        the last entry it names (``audit_seq``) is the last one written, the writer
        closes as usual (a last checkpoint included if one is due); else (a market
        stopped by an exception between its audit write and its state commit) without
        a checkpoint: one only ever follows a commit, and the restart cuts the
        uncommitted entries."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if latest is not None and latest.get("audit_seq") == writer.seq - 1:
            writer.close()
        else:  # AuditWriter has no close without a checkpoint (asked for): its files
            writer._chain.close()
            writer._cps.close()
