"""A batch run's audit ledger (``p2pgrid run FILE --out DIR --ledger``): ``DIR/ledger/``.

The batch engine hands every interval to :class:`BatchLedger`: the plan that went into
the market step, the step's random state before clearing, and the step's result. It
builds the same payloads the live market publishes (:mod:`scenarios.results.payloads`:
every household's settlement, the anonymous ``market/result`` with the feeder's bus and
line rows and the book curve) and enters them through the one ledger writer
(:class:`scenarios.audit.ledger.AuditWriter`), with a checkpoint at the end of every day
and at the end of the run. The batch households sign nothing: their input leaves carry
no signed messages, and ``private/`` stays empty.

The market operator's key is generated for the run and kept as ``DIR/ledger/market.key``
(the operator's *private* key: keep it, never publish it; the verifier needs only the
public key in ``keys.json`` and in every checkpoint).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from agents.households.community import Plan
from scenarios.audit.keys import MARKET_KEY, KeyPair, Registry
from scenarios.audit.leaves import order_where, rng_to_json
from scenarios.audit.ledger import DEFAULT_EVERY, MARKET_KEY_FILE, AuditWriter
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.interval import IntervalResult
from scenarios.results.payloads import book_curve, result_payload, settlement_payloads

LEDGER_DIR = "ledger"


def batch_counts(plan: Plan) -> dict[str, int]:
    """A batch interval's ``counts`` in its ``market/result``: every household reports."""
    return {"households": len(plan.generation_kwh), "orders": len(plan.energy_kwh)}


class BatchLedger:
    """The audit ledger of one batch run."""

    def __init__(
        self, scenario: Scenario, out_dir: Path, stamps: pd.DatetimeIndex, grid: GridStage | None
    ) -> None:
        directory = Path(out_dir) / LEDGER_DIR
        if directory.exists():  # a run into the same folder replaces its results
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        key = KeyPair.new(MARKET_KEY)
        key.save(directory / MARKET_KEY_FILE)
        every = int(getattr(scenario.live, "checkpoint_every", DEFAULT_EVERY))
        self.writer = AuditWriter(
            directory,
            scenario,
            Registry(),
            key,
            run=f"batch-{uuid.uuid4().hex[:12]}",
            every=every,
            origin="batch",
        )
        self.stamps = stamps
        self.grid = grid
        self.ipd = scenario.simulation.intervals_per_day

    @staticmethod
    def rng_state(rng: Any) -> dict[str, Any]:
        """The step's random state (before clearing), as the ledger records it."""
        return rng_to_json(rng.bit_generator.state)

    def record(
        self, t: int, plan: Plan, rng_before: Mapping[str, Any], res: IntervalResult
    ) -> None:
        """Enter interval ``t`` (``plan``: as it went into the step); checkpoint at the end
        of each day."""
        where = order_where(plan)
        ids = self.writer.ids
        grid_rows = (
            self.grid.rows(res.outcome)
            if self.grid is not None and res.outcome is not None
            else None
        )
        clearing = result_payload(
            t, self.stamps[t].isoformat(), res, grid_rows, batch_counts(plan), book_curve(plan)
        )
        settlements = settlement_payloads(t, ids, res, where, set())
        self.writer.interval(t, plan, settlements, clearing, rng_before, where=where)
        self.writer.checkpoint(force=t % self.ipd == self.ipd - 1)

    def close(self) -> None:
        self.writer.close()
