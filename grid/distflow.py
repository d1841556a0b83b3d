"""DistFlow equations of a radial feeder: tree matrices, exact sweep, linearisation.

Branch ``l`` runs from parent bus ``i`` to child bus ``j``; ``P_l``, ``Q_l`` are the
sending-end flows, ``w`` the squared voltage magnitude and ``ell_l = (P_l^2+Q_l^2)/w_i``
the squared current, all in per unit on ``feeder.s_base_kva``. The DistFlow equations of
Baran & Wu (1989) are, with ``p_j``, ``q_j`` the net injections (export positive)::

    P_l = -p_j + sum_{m child of j} P_m + r_l ell_l
    Q_l = -q_j + sum_{m child of j} Q_m + x_l ell_l
    w_j = w_i - 2 (r_l P_l + x_l Q_l) + (r_l^2 + x_l^2) ell_l

where ``p_j``, ``q_j`` include the consumption ``g_j w_j``, ``b_j w_j`` of a shunt at
bus ``j`` (a transformer's magnetising branch, see :func:`tree_of`), linear in ``w``. For
a radial feeder they are the exact AC branch-flow equations.
*LinDistFlow* (Baran & Wu 1989b) drops ``ell``. Here ``ell`` is instead replaced by its
first-order Taylor expansion around an operating point ``(P0, Q0, w0)`` solved exactly
(by a backward/forward sweep)::

    ell ~ ell0 + 2 P0/w0_i (P - P0) + 2 Q0/w0_i (Q - Q0) - ell0/w0_i (w_i - w0_i)

which keeps the model linear, is exact at the operating point and carries the first-order
change of the losses and of the loss-induced voltage drop. At a zero operating point it
*is* LinDistFlow. The voltages, flows and losses of the linearised equations for given
injections are an affine map of the injections, precomputed here (``LinearMap``) and used
by the screen of :class:`grid.lindistflow.FeederModel`.

References
----------
M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss
reduction and load balancing", IEEE Trans. Power Delivery 4(2), 1401-1407, 1989.
M. E. Baran and F. F. Wu, "Optimal sizing of capacitors placed on a radial distribution
system", IEEE Trans. Power Delivery 4(1), 735-743, 1989 (LinDistFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grid.feeders import Feeder


@dataclass(frozen=True)
class Tree:
    """Per-unit branch data and incidence matrices of a radial feeder.

    Attributes
    ----------
    from_bus, to_bus : ndarray of int, shape (n_line,)
    r_pu, x_pu : ndarray, shape (n_line,)
        Series impedance on ``s_base_kva`` and the voltage of ``to_bus``.
    s_max_pu : ndarray, shape (n_line,)
        Rated apparent power at 1 p.u. voltage, i.e. the rated current [p.u.]: the
        loading of a branch is ``sqrt(P^2+Q^2) / (V_from * s_max)`` (:func:`loading_frac`).
    g_shunt_pu, b_shunt_pu : ndarray, shape (n_bus,)
        Shunt conductance and (inductive, consuming) susceptance at each bus [p.u.]:
        the bus draws ``g w`` active and ``b w`` reactive power.
    path : ndarray, shape (n_bus, n_line)
        ``path[j, l] = 1`` if branch ``l`` lies on the path from the slack to bus ``j``.
    s_base_kva : float
    slack : int
    """

    from_bus: np.ndarray
    to_bus: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    s_max_pu: np.ndarray
    g_shunt_pu: np.ndarray
    b_shunt_pu: np.ndarray
    path: np.ndarray
    s_base_kva: float
    slack: int

    @property
    def n_bus(self) -> int:
        return self.path.shape[0]

    @property
    def n_line(self) -> int:
        return self.path.shape[1]


def tree_of(feeder: Feeder) -> Tree:
    """Per-unit data and path matrix of ``feeder`` (lines oriented away from the slack).

    A transformer's no-load (iron) losses ``pfe_kw`` and magnetising current
    ``i0_percent`` (of its rated current, pandapower's convention) become a shunt at its
    LV bus, ``to_bus``: ``g = pfe_kw / s_base``, ``b = sqrt((i0/100 sn_kva)^2 -
    pfe_kw^2) / s_base``, so that it draws ``pfe_kw`` at 1 p.u. and the transformer branch
    carries the magnetising current, as the HV-side current of pandapower's T model does
    (which puts the shunt halfway along the series impedance: its iron loss differs by
    the voltage drop over half the transformer, about 2 % of it at full load).
    """
    ln = feeder.lines
    frm = ln["from_bus"].to_numpy(int)
    to = ln["to_bus"].to_numpy(int)
    vn = feeder.buses["vn_kv"].to_numpy(float)[to]
    z_base_ohm = vn**2 * 1000.0 / feeder.s_base_kva
    n, nl = feeder.n_bus, feeder.n_line
    line_into = np.full(n, -1)
    line_into[to] = np.arange(nl)
    path = np.zeros((n, nl))
    for j in range(n):
        b = j
        while b != feeder.slack_bus:
            k = line_into[b]
            path[j, k] = 1.0
            b = frm[k]
    g = np.zeros(n)
    b = np.zeros(n)
    trafo = (ln["kind"] == "trafo").to_numpy()
    if trafo.any():
        pfe = np.nan_to_num(ln["pfe_kw"].to_numpy(float)[trafo])
        i0_kva = np.nan_to_num(ln["i0_percent"].to_numpy(float)[trafo]) / 100.0
        i0_kva *= ln["sn_kva"].to_numpy(float)[trafo]
        np.add.at(g, to[trafo], pfe / feeder.s_base_kva)
        q0 = np.sqrt(np.maximum(i0_kva**2 - pfe**2, 0.0))
        np.add.at(b, to[trafo], q0 / feeder.s_base_kva)
    return Tree(
        from_bus=frm,
        to_bus=to,
        r_pu=ln["r_ohm"].to_numpy(float) / z_base_ohm,
        x_pu=ln["x_ohm"].to_numpy(float) / z_base_ohm,
        s_max_pu=ln["s_max_kva"].to_numpy(float) / feeder.s_base_kva,
        g_shunt_pu=g,
        b_shunt_pu=b,
        path=path,
        s_base_kva=feeder.s_base_kva,
        slack=feeder.slack_bus,
    )


def loading_frac(
    tree: Tree, p_line_pu: np.ndarray, q_line_pu: np.ndarray, w_pu: np.ndarray
) -> np.ndarray:
    """Thermal loading of every branch: current over rated current [-], shape (..., n_line).

    ``|S_from| / (V_from s_max)``: the sending-end current in per unit of the rating
    (``s_max`` is the rating at 1 p.u. voltage). Without shunt admittance along a branch
    the current is the same at both ends; this is pandapower's ``loading_percent / 100``
    for lines and (with ``trafo_loading="current"``, its default) for transformers.
    """
    v_from = np.sqrt(np.maximum(w_pu[..., tree.from_bus], 1e-12))
    return np.hypot(p_line_pu, q_line_pu) / (v_from * tree.s_max_pu)


@dataclass(frozen=True)
class FlowState:
    """Branch flows and voltages in per unit (see module docstring)."""

    p_line_pu: np.ndarray
    q_line_pu: np.ndarray
    w_pu: np.ndarray
    ell_pu: np.ndarray


def solve_distflow(
    tree: Tree,
    p_pu: np.ndarray,
    q_pu: np.ndarray,
    w_slack_pu: float,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> FlowState:
    """Solve the full (non-linear) DistFlow equations by a backward/forward sweep.

    Parameters
    ----------
    p_pu, q_pu : ndarray, shape (n_bus,)
        Net injections [p.u.], export positive.
    w_slack_pu : float
        Squared slack voltage [p.u.^2].

    Raises
    ------
    RuntimeError
        If the sweep does not converge (voltage collapse or a far too weak feeder).
    """
    sub = tree.path.T  # (n_line, n_bus): bus j is downstream of branch l
    down = tree.path[tree.to_bus].T  # (n_line, n_line): branch m is downstream of (or is) l
    ell = np.zeros(tree.n_line)
    w = np.full(tree.n_bus, w_slack_pu)
    for _ in range(max_iter):
        pl = -sub @ (p_pu - tree.g_shunt_pu * w) + down @ (tree.r_pu * ell)
        ql = -sub @ (q_pu - tree.b_shunt_pu * w) + down @ (tree.x_pu * ell)
        w_new = w_slack_pu - 2.0 * tree.path @ (tree.r_pu * pl + tree.x_pu * ql)
        w_new += tree.path @ ((tree.r_pu**2 + tree.x_pu**2) * ell)
        if np.any(w_new <= 0.0):
            raise RuntimeError("DistFlow sweep diverged (voltage collapse)")
        ell_new = (pl**2 + ql**2) / w_new[tree.from_bus]
        done = np.max(np.abs(w_new - w)) < tol and np.max(np.abs(ell_new - ell)) < tol
        w, ell = w_new, ell_new
        if done:
            return FlowState(pl, ql, w, ell)
    raise RuntimeError(f"DistFlow sweep did not converge in {max_iter} iterations")


@dataclass(frozen=True)
class Linearisation:
    """Coefficients of the linearised squared current ``ell ~ c0 + gP P + gQ Q + gw w_from``."""

    c0: np.ndarray
    g_p: np.ndarray
    g_q: np.ndarray
    g_w: np.ndarray
    point: FlowState


def linearise(tree: Tree, point: FlowState) -> Linearisation:
    """First-order Taylor expansion of ``ell = (P^2+Q^2)/w_i`` at ``point``."""
    w_i = point.w_pu[tree.from_bus]
    g_p = 2.0 * point.p_line_pu / w_i
    g_q = 2.0 * point.q_line_pu / w_i
    g_w = -point.ell_pu / w_i
    c0 = point.ell_pu - g_p * point.p_line_pu - g_q * point.q_line_pu - g_w * w_i
    return Linearisation(c0=c0, g_p=g_p, g_q=g_q, g_w=g_w, point=point)


@dataclass(frozen=True)
class LinearMap:
    """The linearised DistFlow solution as an affine map of the injections.

    ``z = z0 + H @ concat(p_pu, q_pu)`` with ``z = concat(P_line, Q_line, w)``.
    """

    z0: np.ndarray
    h: np.ndarray
    n_line: int
    n_bus: int

    def solve(
        self, p_pu: np.ndarray, q_pu: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flows ``P, Q`` [p.u.] and squared voltages ``w`` for injections of shape (..., n_bus)."""
        u = np.concatenate([p_pu, q_pu], axis=-1)
        z = self.z0 + u @ self.h.T
        nl = self.n_line
        return z[..., :nl], z[..., nl : 2 * nl], z[..., 2 * nl :]


def linear_map(tree: Tree, lin: Linearisation, w_slack_pu: float) -> LinearMap:
    """Solve the linearised DistFlow equations symbolically in the injections."""
    nl, n = tree.n_line, tree.n_bus
    sub = tree.path.T
    down = tree.path[tree.to_bus].T
    r, x = tree.r_pu, tree.x_pu
    sel = np.zeros((nl, n))
    sel[np.arange(nl), tree.from_bus] = 1.0
    # ell = c0 + E @ z with z = [P, Q, w]
    e = np.hstack([np.diag(lin.g_p), np.diag(lin.g_q), lin.g_w[:, None] * sel])
    big = np.zeros((2 * nl + n, 2 * nl + n))
    rhs0 = np.zeros(2 * nl + n)
    g = np.zeros((2 * nl + n, 2 * n))
    big[:nl, :nl] = np.eye(nl)
    big[:nl] -= down @ (r[:, None] * e)
    big[:nl, 2 * nl :] -= sub * tree.g_shunt_pu  # shunt draw g w downstream of the branch
    rhs0[:nl] = down @ (r * lin.c0)
    g[:nl, :n] = -sub
    big[nl : 2 * nl, nl : 2 * nl] = np.eye(nl)
    big[nl : 2 * nl] -= down @ (x[:, None] * e)
    big[nl : 2 * nl, 2 * nl :] -= sub * tree.b_shunt_pu
    rhs0[nl : 2 * nl] = down @ (x * lin.c0)
    g[nl : 2 * nl, n:] = -sub
    zz = r**2 + x**2
    big[2 * nl :, 2 * nl :] = np.eye(n)
    big[2 * nl :, :nl] += 2.0 * tree.path * r
    big[2 * nl :, nl : 2 * nl] += 2.0 * tree.path * x
    big[2 * nl :] -= tree.path @ (zz[:, None] * e)
    rhs0[2 * nl :] = w_slack_pu + tree.path @ (zz * lin.c0)
    inv = np.linalg.inv(big)
    return LinearMap(z0=inv @ rhs0, h=inv @ g, n_line=nl, n_bus=n)
