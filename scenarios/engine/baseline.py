"""The no-P2P baseline: the same households on the same feeder, with the utility as the
only counterparty (DESIGN.md "Energy and money must balance").

Every interval the baseline community (the same households, devices and profiles, with
self-consumption storage and no flexible storage orders) nets its own PV, load and
storage exactly as the run's community does, and its net positions go through the run's
:class:`~scenarios.engine.interval.MarketStep` with ``p2p=False``: nothing is matched, the
feeder check is the run's, and where a limit would break the same re-clearing curtails
PV and defers EV charging by the same rules, only without P2P trades
(:func:`grid.clearing.clear_constrained` with ``p2p=False``). So savings compare a
feasible run with a feasible baseline.

The baseline checks on a twin of the run's :class:`~scenarios.engine.grid_stage.GridStage`
(:meth:`~scenarios.engine.grid_stage.GridStage.twin`: the same feeder, buses and AC network,
its own persistent feeder model, so that the run's solves never warm-start from the
baseline's and the run's results do not depend on it; the screen skips the solve where
an interval is far inside the limits) and writes no bus or line tables: those are the
run's. Its verdict per interval goes to
``intervals.parquet`` (``baseline_violations``, ``baseline_curtailed_kwh``, with
``pyomo+ac`` the ``baseline_ac_*`` columns) and from there into ``kpis.json``.
"""

from __future__ import annotations

import numpy as np

from agents.households.community import Community
from agents.households.table import Households
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.interval import IntervalResult, MarketStep


class Baseline:
    """The baseline community and its market step (no market, the same feeder rules)."""

    def __init__(self, scenario: Scenario, households: Households, grid: GridStage | None) -> None:
        self.community = Community(households, scenario.simulation.interval_hours, None)
        stage = grid.twin() if grid is not None else None
        self.step = MarketStep(scenario, households.n, stage, p2p=False)

    def run(
        self,
        observed: tuple,
        bg_p: np.ndarray | None = None,
        bg_q: np.ndarray | None = None,
        t: int | None = None,
    ) -> IntervalResult:
        """One interval (``t``): plan, check on the feeder (dim / curtail / defer),
        settle, advance."""
        plan = self.community.plan(*observed)
        res = self.step.run(plan, self.community.outcome, bg_p, bg_q, t)
        self.community.commit(res.flows)
        return res
