"""The verifier pool: readings, orders and meter samples checked and decoded in worker
processes, off the market's network thread (``[live] verify_workers``).

The ingest (:meth:`live.ingest.Ingest.on_agent`, :meth:`~live.ingest.Ingest.on_meter`)
does what is cheap in its own process (the sender's lookup and flood control, so a flood
is cut before it costs a check) and hands each message — its kind, the key id its topic
names, the interval open, the raw body (:data:`live.verify_worker.Item`), and what the
ingest needs to take it afterwards — to :meth:`VerifierPool.submit`: nothing is parsed in
the market's process. Messages go out in batches, when :data:`BATCH` are waiting or
:data:`FLUSH_S` after the first of them, each as one packed blob
(:func:`live.verify_worker.pack`), to processes started by ``forkserver`` (not ``fork``:
paho's threads are running), each of which has loaded the key registry once
(:func:`live.verify_worker.load`) and runs :meth:`live.verify_worker.Checker.verdict`:
the payload limit and JSON parse, the signature, the run, and the decoding of the
reading or orders, through the very functions of the in-process path. What comes back is
a compact record per message (numbers in tuples), which the market only stores.

Order: one thread applies the verdicts batch after batch in the order the messages
arrived (a batch whose verdicts are back waits for the batches before it), so a
household's later orders still replace its earlier ones, whatever the workers' order.

At the gate, :meth:`VerifierPool.drain` waits (bounded) until every message handed over
before it has been applied: nothing that arrived in time is lost, nothing unverified is
cleared. A worker that dies (a ``BrokenProcessPool``, noticed on a batch's result or on
the next hand-off), or hangs (:data:`HUNG_S`), makes the pool start afresh and hand every
batch in flight over again; a batch that has broken the pool :data:`MAX_ATTEMPTS` times
is checked in this process.
While :data:`MAX_QUEUED_BATCHES` batches wait, the hand-off blocks the network thread (at
most :data:`BLOCK_S` per message), as the in-process check would: a flood fills no
unbounded queue.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from live.signatures import Signatures
from live.verify_worker import Item, Verdict, checker, load, pack, verify_batch
from scenarios.config.schema_live import LiveSection

BATCH = 1024
"""Messages per batch handed to a worker."""
FLUSH_S = 0.05
"""A batch that is not full goes out this long after its first message [s]."""
MAX_QUEUED_BATCHES = 16
"""Batches handed over and not yet applied beyond which the hand-off blocks."""
BLOCK_S = 2.0
"""The longest one hand-off blocks for room [s] (then the message is queued anyway)."""
HUNG_S = 30.0
"""A batch not back this long after it reached the head of the line [s]: its workers are
taken as hung, killed, and the pool restarted as if they had died (the clock starts
once the pool's workers have started: a slow start on a loaded machine is no hang)."""
START_S = 120.0
"""The longest a (re)started pool's workers may take to start [s] (then: as hung)."""
MAX_ATTEMPTS = 3
"""Times a batch may break the pool before it is checked in the market's process."""


def worker_count(live: LiveSection) -> int:
    """The processes ``[live] verify_workers`` asks for (``"auto"``: one less than the
    CPUs, at least one, when keys are set)."""
    if live.verify_workers == "auto":
        return max(1, (os.cpu_count() or 1) - 1) if live.keys else 0
    return int(live.verify_workers)


@dataclass
class _Batch:
    items: list[Item]
    contexts: list[Any]
    last_seq: int
    future: Future[tuple[list[Verdict], float]] | None = None
    attempts: int = 0


@dataclass
class PoolStats:
    """What the pool has done (for the bench and the market's counters)."""

    messages: int = 0
    batches: int = 0
    worker_cpu_s: float = 0.0
    restarts: int = 0
    local_batches: int = 0
    """Batches checked in the market's process after breaking the pool repeatedly."""
    drain_timeouts: int = 0
    blocked: int = 0
    """Hand-offs that waited for room."""
    restart_log: list[str] = field(default_factory=list)


class VerifierPool:
    """Worker processes that check messages; verdicts applied in arrival order.

    Parameters
    ----------
    live : the ``[live]`` section (its keys, ``require_signatures``, limits, meters)
    interval_hours : the interval's length [h] (the energy limits)
    workers : processes
    apply : called as ``apply(contexts, verdicts)`` for every batch, in arrival order,
        from the pool's own thread (the contexts given to :meth:`submit`)
    on_restart : told (a sentence) when a dead worker made the pool restart
    batch : messages per batch
    """

    def __init__(
        self,
        live: LiveSection,
        interval_hours: float,
        workers: int,
        apply: Callable[[list[Any], list[Verdict]], None],
        on_restart: Callable[[str], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.workers, self.apply, self.on_restart, self.batch_size = (
            workers,
            apply,
            on_restart,
            batch,
        )
        self.initargs = (live, interval_hours)
        self.local = checker(live, interval_hours, Signatures.for_live(live))
        """The check of a batch that keeps breaking the pool."""
        self.run: str | None = None
        """The market's run id: a message naming another is refused."""
        self.stats = PoolStats()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.pending: list[Item] = []
        self.contexts: list[Any] = []
        self.first_at = 0.0
        self.inflight: deque[_Batch] = deque()
        self.submitted = 0
        self.applied = 0
        self.closed = False
        self.executor = self._executor()
        self.threads = [
            threading.Thread(target=self._flusher, name="verifier-flush", daemon=True),
            threading.Thread(target=self._applier, name="verifier-apply", daemon=True),
        ]
        for th in self.threads:
            th.start()
        # the workers start now, in the background, not on the first message of a gate
        self.warming = [self.executor.submit(verify_batch, pack([]), None) for _ in range(workers)]

    def _executor(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(self.workers, ctx, initializer=load, initargs=self.initargs)

    def pids(self) -> list[int]:
        """The worker processes' ids (those started so far)."""
        procs = getattr(self.executor, "_processes", None) or {}
        return sorted(int(p) for p in procs)

    def warm(self, timeout: float = 60.0) -> None:
        """Wait until every worker has started (one trivial batch each)."""
        for f in self.warming:
            f.result(timeout)

    # --- the hand-off (the network thread) ---------------------------------------------
    def submit(self, item: Item, context: Any) -> None:
        """Queue one message (:data:`live.verify_worker.Item`); its verdict is applied
        later with ``context``."""
        with self.lock:  # the condition's lock, taken without its Python-level wrapper
            limit = MAX_QUEUED_BATCHES * self.batch_size
            if self.submitted - self.applied >= limit and not self.closed:
                self.stats.blocked += 1
                deadline = time.monotonic() + BLOCK_S
                while self.submitted - self.applied >= limit and not self.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
            if not self.pending:
                self.first_at = time.monotonic()
                self.cond.notify_all()  # the flusher's timer starts
            self.pending.append(item)
            self.contexts.append(context)
            self.submitted += 1
            if len(self.pending) >= self.batch_size:
                self._flush()

    def _flush(self) -> None:
        """Hand the waiting messages over as one batch (under :attr:`cond`)."""
        if not self.pending:
            return
        b = _Batch(self.pending, self.contexts, self.submitted)
        self.pending, self.contexts = [], []
        self.inflight.append(b)
        self._send(b)
        self.cond.notify_all()

    def _send(self, b: _Batch) -> None:
        try:
            b.future = self.executor.submit(verify_batch, pack(b.items), self.run)
        except (BrokenProcessPool, RuntimeError):  # a worker died while idle
            b.future = None  # the applier restarts the pool and sends it again

    def _flusher(self) -> None:
        with self.cond:
            while not self.closed:
                if not self.pending:
                    self.cond.wait()
                    continue
                left = self.first_at + FLUSH_S - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                self._flush()

    # --- verdicts, in arrival order (the pool's thread) ---------------------------------
    def _applier(self) -> None:
        while True:
            with self.cond:
                while not self.inflight and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                b = self.inflight[0]
                future = b.future
            verdicts = self._result(b, future)
            if verdicts is None:
                continue
            try:
                self.apply(b.contexts, verdicts)
            except Exception as exc:  # the ingest reports its own; never stop here
                self.stats.restart_log.append(f"apply failed: {exc!r}")
            with self.cond:
                self.inflight.popleft()
                self.applied = b.last_seq
                self.stats.messages += len(b.items)
                self.stats.batches += 1
                self.cond.notify_all()

    def _result(self, b: _Batch, future: Future[Any] | None) -> list[Verdict] | None:
        """The batch's verdicts, or None after restarting a broken pool (try again)."""
        if b.attempts >= MAX_ATTEMPTS:
            self.stats.local_batches += 1
            return self.local.batch(b.items, self.run)[0]
        if future is None:  # the pool was broken at hand-off: again, else restart
            with self.cond:
                self._send(b)
                future = b.future
        try:
            if future is None:
                raise BrokenProcessPool("the pool was broken at hand-off")
            for f in list(self.warming):  # a worker's start is not a hang
                f.result(START_S)
            verdicts, cpu_s = future.result(HUNG_S)
        except BrokenProcessPool:
            self._restart()
            return None
        except TimeoutError:  # a hung worker: killed, so that the pool breaks and restarts
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return None
        self.stats.worker_cpu_s += cpu_s
        return verdicts

    def _restart(self) -> None:
        """A worker died: a fresh pool, and every batch in flight sent again."""
        with self.cond:
            if self.closed:
                self.inflight.clear()
                return
            old, self.executor = self.executor, self._executor()
            self.warming = [
                self.executor.submit(verify_batch, pack([]), None) for _ in range(self.workers)
            ]
            self.stats.restarts += 1
            again = [b for b in self.inflight if not _succeeded(b.future)]
            for b in again:
                b.attempts += 1
                self._send(b)
            k = sum(len(b.items) for b in again)
        old.shutdown(wait=False, cancel_futures=True)
        said = (
            f"verifier: a worker process died; the pool was restarted and {k} messages in "
            "flight were handed over again"
        )
        self.stats.restart_log.append(said)
        if self.on_restart is not None:
            self.on_restart(said)

    # --- the gate ----------------------------------------------------------------------
    def drain(self, timeout: float, count_timeout: bool = True) -> int:
        """Wait until every message handed over so far has been applied, ``timeout``
        seconds at most; the messages still not applied (0: all). ``count_timeout``: a
        timeout is a gate's (counted in ``stats.drain_timeouts``)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            target = self.submitted
            self._flush()
            while self.applied < target and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stats.drain_timeouts += count_timeout
                    break
                self.cond.wait(min(left, 0.05))
            return max(target - self.applied, 0)

    def close(self) -> None:
        """Stop the threads and the workers (what is still in flight is dropped)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for th in self.threads:
            th.join(5.0)
        self.executor.shutdown(wait=True, cancel_futures=True)


def _succeeded(future: Future[Any] | None) -> bool:
    """Whether a batch's verdicts are back (those need not be sent again)."""
    return (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    )
