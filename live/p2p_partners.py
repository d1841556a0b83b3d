"""The partner structure the decentralised p2p peers share (:mod:`live.p2p_peers`):
public scenario data, never the book: who partners whom, the partner graph's diameter
(how far the termination flood must run, :mod:`live.p2p_peer`) and the pairs'
differentiation costs (:class:`~market.p2p_pairs.P2PRule`, with the feeder's distances).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sps
from scipy.sparse.csgraph import shortest_path

from scenarios.config.schema import Scenario
from scenarios.engine.p2p import p2p_rule


def partner_rows(partners: sps.csr_matrix | None, n: int) -> tuple[list[list[int]], int]:
    """Each household's partner rows and the partner graph's diameter (at least 1)."""
    if partners is None:
        return [[j for j in range(n) if j != i] for i in range(n)], 1
    m = partners.tocsr()
    rows = [sorted(int(j) for j in m.indices[m.indptr[i] : m.indptr[i + 1]] if j != i)
            for i in range(n)]  # fmt: skip
    d = shortest_path(m.astype(float), unweighted=True, directed=False)
    finite = d[np.isfinite(d)]
    return rows, max(int(finite.max()) if finite.size else 1, 1)


def scenario_rule(scenario: Scenario, ids: list[str], pv_kwp: np.ndarray) -> Any:
    """The scenario's :class:`~market.p2p_pairs.P2PRule`, with the feeder's distances
    when the grid check is on (public: the feeder model and the households' buses), and
    ``stopping = "pairwise"`` whatever the scenario says: no peer can compute the global
    root-mean-square residuals, each pair's two partners can test their own pair."""
    feeder = bus = None
    if scenario.grid.check != "off":
        from grid import assign_households
        from scenarios.config.preflight import scenario_feeder

        feeder = scenario_feeder(scenario, len(ids))
        bus = assign_households(feeder, len(ids), scenario.simulation.seed)
    return replace(p2p_rule(scenario, ids, pv_kwp, feeder, bus), stopping="pairwise")
