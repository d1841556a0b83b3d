"""The registers of a meter's natively signed records (OCMF) against the metered energy
the ledger's input leaves hold: ``ledger verify``'s check that the market billed what
the meter signed.

A meter-backed household's input leaf holds its meter's energy of the interval
(``demand_kwh`` = import, ``generation_kwh`` = export, :mod:`live.plan`) and, in
``signed``, the records its meter's tracker took as energy, in the order taken. Fed in
that order, across the whole chain, into a fresh
:class:`~agents.meters.tracker.MeterTracker` (the market's own arithmetic: a counter
difference spread over the time between two records in proportion to time, a counter
that goes backwards a reset), the records give the energy of every interval they
bracket — a record at or before its start and one at or after its end, in one run of
records. A run ends at a record that does not verify or has been erased, at a record
without a time the meter vouches for (``TM`` status ``U``: the market stamped it on
arrival) and at a new ``session`` of the market (a restarted market continues from its
saved state, which may hold a record it took but never committed). That energy is
compared, within :data:`TOLERANCE_KWH`, with the household's last version of the
interval: its interval leaf, or the correction that replaced its estimate.

Not compared: an interval whose last version is an estimate, and every later interval
of that household (an estimate that stood is paid back from later energy,
:attr:`~agents.meters.tracker.MeterTracker.debt`); an interval onto which a long gap was
lumped (:data:`~agents.meters.tracker.SPREAD_INTERVALS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.meters.base import MeterPayloadError, Sample
from agents.meters.tracker import MeterTracker

TOLERANCE_KWH = 1e-6
"""How far the leaf's energy may be from the records' (the replay's energy tolerance)."""


@dataclass(frozen=True)
class Version:
    """A household's metered energy of an interval, as one ledger entry holds it."""

    seq: int
    session: int
    estimated: bool
    import_kwh: float
    export_kwh: float


@dataclass
class Registers:
    """Collects the records and the versions over the chain; :meth:`problems` compares.

    start_s : unix time of interval 0 [s]; interval_s : interval length [s]
    """

    start_s: float
    interval_s: float
    records: dict[str, list[tuple[int, Sample | None]]] = field(default_factory=dict)
    """Agent id → ``(session, sample)`` per record referenced, in chain order (None: a
    record that cannot be used, which ends a run)."""
    versions: dict[tuple[str, int], Version] = field(default_factory=dict)
    """(agent, t) → its last version so far."""
    compared: int = 0
    """Intervals whose energy was compared with the records' (after :meth:`problems`)."""

    def record(self, agent: str, session: int, sample: Sample | None) -> None:
        self.records.setdefault(agent, []).append((session, sample))

    def version(self, agent: str, seq: int, session: int, leaf: Mapping[str, Any]) -> None:
        """An input leaf of ``agent`` in entry ``seq`` (an interval or a correction)."""
        reading = leaf.get("reading") or {}
        self.versions[(agent, int(leaf["t"]))] = Version(
            seq,
            session,
            bool(leaf.get("estimated")),
            float(reading.get("demand_kwh", 0.0)),
            float(reading.get("generation_kwh", 0.0)),
        )

    def problems(self) -> list[tuple[int, int, str]]:
        """``(seq, t, what)`` of every interval whose energy is not its records'."""
        out = []
        stands: dict[str, float] = {}  # agent → its first interval settled on an estimate
        for (a, t), last in self.versions.items():
            if last.estimated:
                stands[a] = min(stands.get(a, math.inf), t)
        for agent, records in self.records.items():
            stood = stands.get(agent, math.inf)
            for (t, session), (imp, exp) in sorted(self.energy(records).items()):
                v = self.versions.get((agent, t))
                if v is None or v.session != session or t >= stood:
                    continue
                self.compared += 1
                if (
                    abs(v.import_kwh - imp) > TOLERANCE_KWH
                    or abs(v.export_kwh - exp) > TOLERANCE_KWH
                ):
                    out.append(
                        (
                            v.seq,
                            t,
                            f"{agent}: its meter's signed records give import {imp:.6f} kWh, "
                            f"export {exp:.6f} kWh; the ledger has {v.import_kwh:.6f} kWh, "
                            f"{v.export_kwh:.6f} kWh",
                        )
                    )
        return out

    def energy(
        self, records: list[tuple[int, Sample | None]]
    ) -> dict[tuple[int, int], tuple[float, float]]:
        """``(t, session)`` → ``(import, export)`` [kWh] of every interval a run of
        ``records`` brackets (see the module)."""
        out: dict[tuple[int, int], tuple[float, float]] = {}
        run: list[Sample] = []
        session = -1
        for s, sample in [*records, (-1, None)]:
            if run and (s != session or sample is None or sample.time_s is None):
                out |= {(t, session): e for t, e in self._bracketed(run).items()}
                run = []
            session = s
            if sample is not None and sample.time_s is not None:
                run.append(sample)
        return out

    def _bracketed(self, run: list[Sample]) -> dict[int, tuple[float, float]]:
        tracker = MeterTracker(self.start_s, self.interval_s)
        lumped: set[int] = set()
        first = run[0].time_s
        assert first is not None
        for sample in run:
            before, prev = tracker.lumped, tracker.last
            try:
                tracker.add(sample)
            except MeterPayloadError:  # out of order: the run ends before it
                break
            if tracker.lumped > before and prev is not None and prev.time_s is not None:
                lumped |= set(range(self._index(prev.time_s), self._index(sample.time_s) + 1))
        last = tracker.last.time_s if tracker.last is not None else None
        if last is None:
            return {}
        out = {}
        for t, (imp, exp) in tracker.energy.items():
            t0 = self.start_s + t * self.interval_s
            if t not in lumped and t0 >= first - 1e-6 and t0 + self.interval_s <= last + 1e-6:
                out[t] = (imp, exp)
        return out

    def _index(self, time_s: float | None) -> int:
        assert time_s is not None
        return math.floor((time_s - self.start_s) / self.interval_s)
