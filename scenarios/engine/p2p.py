"""A scenario's bilateral market (``[market.p2p]``) as the market's
:class:`~market.p2p_pairs.P2PRule`: partner pairs and neighbours over the community's
household rows (the owner codes the engine's array core receives), the electrical
distances between the households' buses (:func:`grid.distance.electrical_distance_pu`,
normalised by the largest between household buses) and which households sell PV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from grid import Feeder, assign_households, electrical_distance_pu
from market.p2p_pairs import P2PRule
from scenarios.config.preflight import scenario_feeder
from scenarios.config.schema import Scenario

if TYPE_CHECKING:
    import scipy.sparse as sps


def nearest(distance: np.ndarray, k: int) -> sps.csr_matrix:
    """The symmetric relation "one is among the other's ``k`` nearest" of an ``(n, n)``
    distance matrix (self excluded; ties broken by row position)."""
    import scipy.sparse as sps  # SciPy only for a bilateral market

    n = distance.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return sps.csr_matrix((n, n), dtype=bool)
    d = distance + np.diag(np.full(n, np.inf))
    near = np.argsort(d, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n), k)
    rel = sps.csr_matrix((np.ones(n * k, bool), (rows, near.ravel())), shape=(n, n))
    return (rel + rel.T).astype(bool).tocsr()


def distances(feeder: Feeder, household_bus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The feeder's bus distances normalised by the largest between household buses,
    and the ``(n, n)`` distances between the households."""
    d_bus = electrical_distance_pu(feeder)
    hb = feeder.household_buses
    d_max = float(d_bus[np.ix_(hb, hb)].max()) if len(hb) else 0.0
    bus_distance = d_bus / d_max if d_max > 0 else np.zeros_like(d_bus)
    return bus_distance, bus_distance[np.ix_(household_bus, household_bus)]


def scenario_neighbours(scenario: Scenario, n_households: int) -> sps.csr_matrix | None:
    """The ``[market.p2p] neighbours`` relation of the scenario's households on its feeder
    (None without the grid check): what ``compare`` counts preferred partners by."""
    k = scenario.market.p2p.neighbours
    if scenario.grid.check == "off" or k == 0:
        return None
    feeder = scenario_feeder(scenario, n_households)
    bus = assign_households(feeder, n_households, scenario.simulation.seed)
    return nearest(distances(feeder, bus)[1], k)


def p2p_rule(
    scenario: Scenario,
    agent_ids: Sequence[str],
    pv_kwp: np.ndarray,
    feeder: Feeder | None = None,
    household_bus: np.ndarray | None = None,
) -> P2PRule:
    """The scenario's partners, preferences and ADMM settings over the household rows
    (``feeder`` and each household's bus on it: the run's grid stage, None without one).

    Raises
    ------
    ValueError
        Distances are needed and there is no feeder, or a partner table names an id
        that is not a household (the schema checks both).
    """
    cfg = scenario.market.p2p
    n = len(agent_ids)
    household_distance = bus_distance = None
    if feeder is not None and household_bus is not None:
        household_bus = np.asarray(household_bus, dtype=np.int64)
        bus_distance, household_distance = distances(feeder, household_bus)
    elif cfg.needs_feeder:
        raise ValueError("market.p2p: partners or costs by distance need grid.check != 'off'")
    partners: sps.csr_matrix | None = None
    if isinstance(cfg.partners, int):
        assert household_distance is not None
        partners = nearest(household_distance, cfg.partners)
    elif isinstance(cfg.partners, dict):
        row = {a: i for i, a in enumerate(agent_ids)}
        pairs = [(a, b) for a, group in cfg.partners.items() for b in group]
        missing = sorted({x for pair in pairs for x in pair} - set(row))
        if missing:
            raise ValueError(f"market.p2p.partners: {missing} are not households")
        r = np.array([row[a] for a, _ in pairs], dtype=np.int64)
        c = np.array([row[b] for _, b in pairs], dtype=np.int64)
        import scipy.sparse as sps  # SciPy only for a bilateral market

        rel = sps.csr_matrix((np.ones(len(pairs), bool), (r, c)), shape=(n, n))
        partners = (rel + rel.T).astype(bool).tocsr()
    neighbours = None
    if household_distance is not None and cfg.neighbours > 0:
        neighbours = nearest(household_distance, cfg.neighbours)
    return P2PRule(
        partners=partners,
        neighbours=neighbours,
        household_bus=household_bus,
        bus_distance=bus_distance,
        green=np.asarray(pv_kwp) > 0,
        distance_per_kwh=cfg.distance_per_kwh,
        green_premium_per_kwh=cfg.green_premium_per_kwh,
        neighbour_premium_per_kwh=cfg.neighbour_premium_per_kwh,
        rho=cfg.rho,
        relaxation=cfg.relaxation,
        primal_tol_kwh=cfg.primal_tol_kwh,
        dual_tol_per_kwh=cfg.dual_tol_per_kwh,
        relative_tol=cfg.relative_tol,
        stopping=cfg.stopping,
        max_iterations=cfg.max_iterations,
        central_check=cfg.central_check,
    )
