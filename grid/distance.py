"""Electrical distance between the buses of a radial feeder.

The distance between two buses is the magnitude of the series impedance of the unique
path between them, in per unit of the feeder's base (``s_base_kva`` and each
branch's ``to_bus`` voltage), so that branches at different voltage levels (and a
transformer between them) add up::

    d(a, b) = | Σ_{branches on the path a–b} (r_ohm + j x_ohm) / z_base |,
    z_base = vn_kv(to_bus)² / (s_base_kva / 1000)   [ohm]

It is what the distance-based grid fee (:mod:`market.fees`) charges by.
"""

from __future__ import annotations

import numpy as np

from grid.feeders import Feeder

__all__ = ["electrical_distance_pu", "path_branches"]


def path_branches(feeder: Feeder) -> np.ndarray:
    """Which branches lie on the path from the slack to each bus.

    Returns
    -------
    numpy.ndarray
        ``(n_bus, n_line)`` bool; row ``b`` marks the branches between the slack and bus
        ``b`` (none for the slack itself).
    """
    lines = feeder.lines
    from_bus = lines["from_bus"].to_numpy(np.int64)
    to_bus = lines["to_bus"].to_numpy(np.int64)
    n_bus, n_line = feeder.n_bus, feeder.n_line
    children: list[list[int]] = [[] for _ in range(n_bus)]
    for line in range(n_line):
        children[from_bus[line]].append(line)
    on_path = np.zeros((n_bus, n_line), dtype=bool)
    stack = [feeder.slack_bus]
    while stack:  # depth-first from the slack; a radial feeder is a tree
        bus = stack.pop()
        for line in children[bus]:
            child = to_bus[line]
            on_path[child] = on_path[bus]
            on_path[child, line] = True
            stack.append(child)
    return on_path


def electrical_distance_pu(feeder: Feeder) -> np.ndarray:
    """Path impedance magnitude between every pair of buses [p.u.].

    Parameters
    ----------
    feeder : Feeder
        A radial feeder.

    Returns
    -------
    numpy.ndarray
        ``(n_bus, n_bus)`` symmetric, zero on the diagonal. With ``P`` the branch
        incidence of :func:`path_branches` and ``z`` the branch impedances [p.u.], the
        path between ``a`` and ``b`` is ``P[a] XOR P[b]``, so its impedance is
        ``Z[a] + Z[b] − 2 (P[a] ∧ P[b]) · z`` with ``Z = P z`` (one matrix product).
    """
    lines = feeder.lines
    vn_kv = feeder.buses["vn_kv"].to_numpy(np.float64)[lines["to_bus"].to_numpy(np.int64)]
    z_base = vn_kv**2 / (feeder.s_base_kva / 1000.0)
    z = (lines["r_ohm"].to_numpy(np.float64) + 1j * lines["x_ohm"].to_numpy(np.float64)) / z_base
    on_path = path_branches(feeder).astype(np.float64)
    to_root = on_path @ z
    shared = (on_path * z) @ on_path.T
    dist = np.abs(to_root[:, None] + to_root[None, :] - 2.0 * shared)
    np.fill_diagonal(dist, 0.0)
    return dist
