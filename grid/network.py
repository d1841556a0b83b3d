"""The linearised DistFlow network as Pyomo constraints, shared by the check and the clearing.

:func:`add_network` adds the branch flows, squared voltages, bus balances, voltage and
thermal limits (a polygon inscribed in the loading circle) and their penalised slacks to a
Pyomo model; :class:`grid.lindistflow.FeederModel` builds its check model on it and
:class:`grid.clearing_model.ClearingModel` its clearing model. The formulation is described in
:mod:`grid.lindistflow`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from grid.distflow import Linearisation, Tree

if TYPE_CHECKING:
    import pyomo.core as pyo

#: Sides of the thermal-limit polygon.
POLYGON_SIDES = 12
#: Penalty on a voltage-limit slack [currency/h per p.u.^2 of squared voltage].
PENALTY_VOLTAGE = 1.0e6
#: Penalty on a thermal-limit slack [currency/h per p.u. of power].
PENALTY_THERMAL = 1.0e6


def add_network(
    m: pyo.ConcreteModel,
    tree: Tree,
    lin: Linearisation,
    v_band_pu: tuple[float, float],
    thermal_margin_frac: float = 0.0,
) -> None:
    """Add the linearised DistFlow network to ``m`` (all quantities in p.u.).

    ``v_band_pu`` is the allowed voltage band ``(v_lo, v_hi)`` over which the thermal
    limits take the chord of ``V_from = sqrt(w_from)`` (see the module docstring).

    Adds ``m.p_inj``/``m.q_inj`` (mutable injections), ``m.w_lo``/``m.w_hi`` (mutable
    squared-voltage limits), variables ``P``, ``Q``, ``w`` (``w`` of the slack fixed to
    ``m.w_slack``), the penalised slacks, and the active/reactive bus balances
    ``m.bal_p[j]``/``m.bal_q[j]`` written as
    ``inflow - r ell - outflow + m.dec_p[j] == -p_inj[j]``, where ``m.dec_p`` is an
    expression the caller may fill with decision terms (curtailment, import, ...).
    The penalty cost of the slacks is ``m.penalty``.
    """
    import pyomo.core as pyo  # imported by the first model built (see grid.lindistflow)

    n, nl = tree.n_bus, tree.n_line
    buses, lines = range(n), range(nl)
    slack = tree.slack
    m.p_inj = pyo.Param(buses, mutable=True, initialize=0.0)
    m.q_inj = pyo.Param(buses, mutable=True, initialize=0.0)
    m.w_lo = pyo.Param(mutable=True, initialize=0.0)
    m.w_hi = pyo.Param(mutable=True, initialize=4.0)
    m.w_slack = pyo.Param(mutable=True, initialize=1.0)
    m.P = pyo.Var(lines)
    m.Q = pyo.Var(lines)
    m.w = pyo.Var(buses)
    m.s_hi = pyo.Var(buses, bounds=(0, None))
    m.s_lo = pyo.Var(buses, bounds=(0, None))
    m.s_line = pyo.Var(lines, bounds=(0, None))
    m.fix_slack = pyo.Constraint(expr=m.w[slack] == m.w_slack)
    r, x = tree.r_pu, tree.x_pu
    frm, to = tree.from_bus, tree.to_bus

    def ell(l_: int) -> Any:
        return (
            float(lin.c0[l_])
            + float(lin.g_p[l_]) * m.P[l_]
            + float(lin.g_q[l_]) * m.Q[l_]
            + float(lin.g_w[l_]) * m.w[int(frm[l_])]
        )

    m.ell = pyo.Expression(lines, rule=lambda m, l_: ell(l_))
    into: dict[int, list[int]] = {j: [] for j in buses}
    out: dict[int, list[int]] = {j: [] for j in buses}
    for l_ in lines:
        into[int(to[l_])].append(l_)
        out[int(frm[l_])].append(l_)
    if not hasattr(m, "dec_p"):
        m.dec_p = pyo.Expression(buses, initialize=0.0)

    g_sh, b_sh = tree.g_shunt_pu, tree.b_shunt_pu

    def bal_p(m: Any, j: int) -> Any:
        arrive = sum(m.P[l_] - float(r[l_]) * m.ell[l_] for l_ in into[j])
        leave = sum(m.P[l_] for l_ in out[j])
        shunt = float(g_sh[j]) * m.w[j] if g_sh[j] else 0.0
        return arrive - leave - shunt + m.dec_p[j] == -m.p_inj[j]

    def bal_q(m: Any, j: int) -> Any:
        arrive = sum(m.Q[l_] - float(x[l_]) * m.ell[l_] for l_ in into[j])
        leave = sum(m.Q[l_] for l_ in out[j])
        extra = m.q_grid if j == slack else 0.0
        shunt = float(b_sh[j]) * m.w[j] if b_sh[j] else 0.0
        return arrive - leave - shunt + extra == -m.q_inj[j]

    m.q_grid = pyo.Var()
    m.bal_p = pyo.Constraint(buses, rule=bal_p)
    m.bal_q = pyo.Constraint(buses, rule=bal_q)

    def drop(m: Any, l_: int) -> Any:
        i, j = int(frm[l_]), int(to[l_])
        zz = float(r[l_] ** 2 + x[l_] ** 2)
        return (
            m.w[j]
            == m.w[i] - 2.0 * (float(r[l_]) * m.P[l_] + float(x[l_]) * m.Q[l_]) + zz * m.ell[l_]
        )

    m.drop = pyo.Constraint(lines, rule=drop)
    non_slack = [j for j in buses if j != slack]
    m.v_hi = pyo.Constraint(non_slack, rule=lambda m, j: m.w[j] - m.s_hi[j] <= m.w_hi)
    m.v_lo = pyo.Constraint(non_slack, rule=lambda m, j: m.w[j] + m.s_lo[j] >= m.w_lo)
    angles = [2.0 * math.pi * (k + 0.5) / POLYGON_SIDES for k in range(POLYGON_SIDES)]
    shrink = math.cos(math.pi / POLYGON_SIDES)
    m.sides = pyo.Set(initialize=range(POLYGON_SIDES))
    v_lo, v_hi = (float(v) for v in v_band_pu)

    def thermal(m: Any, l_: int, k: int) -> Any:
        # |S| <= s V_from, V_from by its chord v_lo + (w - v_lo^2) / (v_lo + v_hi)
        a = angles[k]
        s_lim = float(tree.s_max_pu[l_]) * shrink * (1.0 - thermal_margin_frac)
        return math.cos(a) * m.P[l_] + math.sin(a) * m.Q[l_] - m.s_line[l_] - s_lim / (
            v_lo + v_hi
        ) * m.w[int(frm[l_])] <= s_lim * v_lo * v_hi / (v_lo + v_hi)

    m.thermal = pyo.Constraint(lines, m.sides, rule=thermal)
    m.penalty = pyo.Expression(
        expr=PENALTY_VOLTAGE * (pyo.quicksum(m.s_hi.values()) + pyo.quicksum(m.s_lo.values()))
        + PENALTY_THERMAL * pyo.quicksum(m.s_line.values())
    )
