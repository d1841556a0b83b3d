"""The partner structure the decentralised p2p peers share (:mod:`live.p2p_peers`):
public scenario data, never the book: who partners whom, the partner graph's diameter
(how far the termination flood must run, :mod:`live.p2p_peer`) and the pairs'
differentiation costs (:class:`~market.p2p_pairs.P2PRule`, with the feeder's distances).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sps
from scipy.sparse.csgraph import shortest_path

from scenarios.config.schema import Scenario
from scenarios.engine.p2p import p2p_rule

log = logging.getLogger("live.p2p")
"""The decentralised peers' warnings (the command line shows them as ``warning:``)."""


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


def stopping_note(scenario: Scenario) -> str | None:
    """What to warn of when the scenario's ``[market.p2p] stopping`` is ``"rms"`` (set,
    or the default): the peers stop by the pairwise rule all the same (:func:`scenario_rule`),
    so a batch run of the same file stops otherwise; None when it says ``"pairwise"``."""
    p2p = scenario.market.p2p
    if p2p.stopping == "pairwise":
        return None
    how = "as the scenario sets it" if "stopping" in p2p.model_fields_set else "the default"
    return (
        f'[market.p2p] stopping = "{p2p.stopping}" ({how}), but the decentralised peers stop '
        "by the pairwise rule (no peer can compute the root-mean-square residuals over all "
        "pairs; each pair tests its own): a batch run to compare against must set "
        '[market.p2p] stopping = "pairwise"'
    )


def scenario_rule(scenario: Scenario, ids: list[str], pv_kwp: np.ndarray) -> Any:
    """The scenario's :class:`~market.p2p_pairs.P2PRule`, with the feeder's distances
    when the grid check is on (public: the feeder model and the households' buses), and
    ``stopping = "pairwise"`` whatever the scenario says: no peer can compute the global
    root-mean-square residuals, each pair's two partners can test their own pair. When
    the scenario says ``"rms"``, :func:`stopping_note` is logged as a warning (``log``)."""
    note = stopping_note(scenario)
    if note is not None:
        log.warning(note)
    feeder = bus = None
    if scenario.grid.check != "off":
        from grid import assign_households
        from scenarios.config.preflight import scenario_feeder

        feeder = scenario_feeder(scenario, len(ids))
        bus = assign_households(feeder, len(ids), scenario.simulation.seed)
    return replace(p2p_rule(scenario, ids, pv_kwp, feeder, bus), stopping="pairwise")
