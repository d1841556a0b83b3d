"""Re-running a ledger's intervals and corrections through the market's own code.

Every interval entry is replayed from its input leaves alone: the plan is rebuilt
(:func:`scenarios.audit.leaves.plan_from_inputs`: each order back at its position), the
market step's random generator is set to the state recorded before clearing, and the
plan goes through :meth:`scenarios.engine.interval.MarketStep.run` (clear, grid check and
re-clear, settle) with :func:`agents.households.community.device_flows` for the
households' flows (a batch run's :meth:`~agents.households.community.Community.outcome`
gives the same energies; only states of charge differ, and no payload carries them).
The settlements and the anonymous ``market/result`` are rebuilt by the functions that
built them (:mod:`scenarios.results.payloads`) and compared field by field
(:mod:`scenarios.audit.compare`); the households' conduct (estimated readings, rejected
messages) from the header and the input leaves feeds their reliability scores, whose
window runs on over the whole ledger, sessions included. A correction is re-derived from
the version it supersedes and its metered energy by :func:`scenarios.audit.rebill.rebill`.

Determinism. The feeder's re-clearing solves a persistent Pyomo/HiGHS model that
warm-starts from its previous solve, so the sequence of solves matters. The replay makes
the same sequence: the intervals in ledger order, one
:class:`~scenarios.engine.grid_stage.GridStage` of its own per ``session`` (swapped into
the replay's one market step; the batch run's no-P2P baseline solves on a twin with a
model of its own, :meth:`~scenarios.engine.grid_stage.GridStage.twin`, so it never
touched the run's), and, for a live ledger (``origin = "live"`` in the genesis), the
market's start-up solve (:meth:`~scenarios.engine.grid_stage.GridStage.prepare`) at the
start of each session, as a restarted market made. The feeder's background load is
computed as the origin computed it (a batch run per window of
:data:`scenarios.engine.inputs.WINDOW_DAYS` days, the live market per interval).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.households.community import device_flows
from market.reliability import Conduct
from scenarios.audit.leaves import plan_from_inputs, rng_from_json, where_from_inputs
from scenarios.audit.rebill import rebill
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.inputs import WINDOW_DAYS, timeline
from scenarios.engine.interval import IntervalResult, MarketStep
from scenarios.results.payloads import book_curve, result_payload, settlement_payloads


class Replayer:
    """Replays one ledger's entries, in order.

    Parameters
    ----------
    scenario : the ledger's ``scenario.json``
    origin : the genesis's ``origin`` (``"batch"`` or ``"live"``)
    """

    def __init__(self, scenario: Scenario, origin: str) -> None:
        self.scenario = scenario
        self.origin = origin
        self.n = scenario.community.households
        self.ids = household_ids(self.n)
        self.row = {a: i for i, a in enumerate(self.ids)}
        self.stamps = timeline(scenario)
        self.ipd = scenario.simulation.intervals_per_day
        self.session: int | None = None
        self.grid: GridStage | None = None
        self.step: MarketStep | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="p2pgrid-replay-")
        self._background: tuple[int, np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        if self.grid is not None:
            self.grid.close()
        self._scratch.cleanup()

    def _start(self, session: int) -> MarketStep:
        """A new session: a grid stage of its own (a new feeder model, as a restarted
        market builds), solved once first for a live ledger (as the market does before
        its first gate). The market step itself is kept: what a restarted market
        restores from its ledger (the random state, set per interval anyway, and any
        state the step carries over intervals) is what the replay's step holds."""
        if self.grid is not None:
            self.grid.close()
        self.grid = None
        if self.scenario.grid.check != "off":
            self.grid = GridStage(self.scenario, self.n, Path(self._scratch.name))
            if self.origin == "live":
                self.grid.prepare()
        if self.step is None:
            self.step = MarketStep(self.scenario, self.n, self.grid)
        else:
            self.step.grid = self.grid
        self.session = session
        self._background = None
        return self.step

    def _step(self, session: int) -> MarketStep:
        if self.step is None or session != self.session:
            return self._start(session)
        return self.step

    def background(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Interval ``t``'s background injections, computed as the origin computed them."""
        assert self.grid is not None
        if self.origin == "live":
            p, q = self.grid.background(self.stamps[t : t + 1])
            return p[0], q[0]
        days = self.scenario.simulation.days
        first_day = (t // self.ipd) // WINDOW_DAYS * WINDOW_DAYS
        t0 = first_day * self.ipd
        if self._background is None or self._background[0] != t0:
            n_window = min(WINDOW_DAYS, days - first_day) * self.ipd
            p, q = self.grid.background(self.stamps[t0 : t0 + n_window])
            self._background = (t0, p, q)
        _, p, q = self._background
        return p[t - t0], q[t - t0]

    def interval(
        self,
        header: Mapping[str, Any],
        inputs: Sequence[Mapping[str, Any]],
        recorded: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], IntervalResult]:
        """Interval ``header["t"]`` again: its ``market/result``, every household's
        settlement payload, and the step's result."""
        t = int(header["t"])
        step = self._step(int(header.get("session", 0)))
        plan = plan_from_inputs(self.n, self.row, inputs)
        where = where_from_inputs(self.row, inputs)
        step.rng.bit_generator.state = rng_from_json(header["rng"])
        estimated = {self.row[a] for a in header.get("estimated", []) if a in self.row}
        rejected = {self.row[leaf["agent"]]: int(leaf.get("rejected", 0)) for leaf in inputs}
        conduct = Conduct.of(self.n, estimated, rejected)
        if self.grid is not None:
            res = step.run(plan, device_flows, *self.background(t), t=t, conduct=conduct)
        else:
            res = step.run(plan, device_flows, t=t, conduct=conduct)
        grid_rows = self.grid.rows(res.outcome) if self.grid is not None and res.outcome else None
        counts = recorded.get("counts", {}) if isinstance(recorded, Mapping) else {}
        clearing = result_payload(
            t, self.stamps[t].isoformat(), res, grid_rows, counts, book_curve(plan)
        )
        return clearing, settlement_payloads(t, self.ids, res, where, estimated), res

    def correction(
        self, t: int, session: int, previous: Mapping[str, Any], metered: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The version after ``previous`` with the metered energy of the correction's
        input leaf (``demand_kwh`` = import, ``generation_kwh`` = export)."""
        step = self._step(session)
        reading = metered.get("reading") or {}
        return rebill(
            dict(previous),
            float(reading["demand_kwh"]),
            float(reading["generation_kwh"]),
            step.fees.tariffs(t),
        )
