"""The feeder model: linearised DistFlow in Pyomo, solved by HiGHS on a persistent interface.

:class:`FeederModel` builds, once per feeder, a Pyomo model of the linearised DistFlow
equations of :mod:`grid.distflow` (branch flows ``P``, ``Q`` and squared voltages ``w`` as
variables, the injections as mutable ``Param``) with

- voltage limits on ``w`` tightened by a safety margin:
  ``(v_min_pu + v_margin_pu)^2 <= w <= (v_max_pu - v_margin_pu)^2``;
- branch thermal limits (lines and the transformer) on the *current*: a branch is loaded
  ``|S_from| / (V_from s_max)`` (current over rated current, :func:`grid.distflow.loading_frac`),
  which is what ``loading_frac`` means in the check, in ``lines.parquet`` and in the AC
  comparison. The model keeps ``|S| <= (1 - thermal_margin_frac) s_max V_from`` as a
  12-sided polygon inscribed in that circle with vertices on the P axis (exact at unity
  power factor, at most 3.4 % conservative elsewhere), and ``V_from`` replaced by the chord
  of ``sqrt(w)`` over the allowed band ``[v_lo, v_hi]`` (the tightened limits):
  ``V ~ v_lo + (w - v_lo^2) / (v_lo + v_hi)``. ``sqrt`` is concave, so within the band the
  chord lies below ``V`` and the limit is conservative, by at most
  ``(v_hi - v_lo)^2 / (4 (v_lo + v_hi))`` of the rating (0.08 % for 0.95-1.05 with the
  default margin, 0.4 % for 0.90-1.10); below ``v_lo`` (a voltage limit already broken)
  it is not;
- elastic (penalised) slacks on every limit, so that an interval over a limit still
  solves and reports by how much.

The model is solved with :class:`pyomo.contrib.solver.solvers.highs.Highs`, Pyomo's
persistent HiGHS interface: after the first solve only the mutable parameters are pushed
to HiGHS (``auto_updates``: no search for new/removed variables, constraints, parameters
or objectives), and HiGHS warm-starts from the previous basis.

``check`` first runs a *screen*: the same linear equations solved symbolically once
(:class:`grid.distflow.LinearMap`), vectorised over buses and intervals. An interval whose
voltages are at least ``screen_band_pu`` inside the tightened limits and whose branches are
loaded below ``screen_loading_frac`` is reported from the screen; every other interval is
solved by the Pyomo model, which is the authority.

Accuracy (default margin ``v_margin_pu = 0.01``). The linearisation is exact at its
operating point (the feeder's base case on ieee33; zero injections on LV feeders, where it
is LinDistFlow) and its error grows with the distance from it. Measured against
pandapower's AC power flow with ``p2pgrid validate-grid FEEDER`` (cases: the validation
load scaled by 0.5, 1.0, 1.3, and ``pv``, a net export of half of it; on LV feeders the
validation load loads the most loaded branch to its rating; ``tests/grid/test_ieee33_ac.py``
keeps the ieee33 figures), largest absolute error over buses / branches:

=====================  ==========  ==========  ==========  ==========
voltage [p.u.]          x0.5        x1.0        x1.3        pv
=====================  ==========  ==========  ==========  ==========
ieee33                  0.0009      0           0.0004      0.0045
radial:60               0.0003      0.0015      0.0026      0.0003
simbench semiurb4       0.0003      0.0015      0.0026      0.0003
=====================  ==========  ==========  ==========  ==========

=====================  ==========  ==========  ==========  ==========
loading [-]             x0.5        x1.0        x1.3        pv
=====================  ==========  ==========  ==========  ==========
ieee33                  0.012       0           0.005       0.029
radial:60               0.010       0.043       0.075       0.003
simbench semiurb4       0.006       0.025       0.044       0.003
=====================  ==========  ==========  ==========  ==========

Beyond these cases the error grows about with the square of the distance: at twice the
validation load 0.006-0.007 p.u. and 0.07-0.19 of loading (ieee33, radial:60, semiurb4), at
twice the export 0.014 p.u. on ieee33; issue 11 reports 0.006 p.u. on ieee33 and
0.0096 p.u. on semiurb4 in overloaded intervals (before re-clearing). In whole runs the
recorded states (after re-clearing, ``check = "pyomo+ac"``) stay within 0.0006 p.u.
(ieee33-summer, 2 days, ``v_min_pu = 0.90``) and 0.0015 p.u. (semiurb4 with 120-200
households, summer and winter). So ``v_margin_pu = 0.01`` covers the states the model
accepts (they are near the limits, hence not far from the point) but is about the error of
a badly overloaded interval, not a bound with room to spare.

The LV loading error is the losses, which a linearisation around zero flow leaves out of
the sending-end flows (its flows are too small by them): 2.5-4.3 % of the rating at full
load. ``thermal_margin_frac`` (default 0.05) of each rating is kept free for it, so a branch
the model loads to its limit of 0.95 is at most about 0.99 in AC; a planner who needs
certainty runs ``check = "pyomo+ac"``.

Transformer no-load (iron) losses are a shunt at the transformer's LV bus
(:func:`grid.distflow.tree_of`): they are in ``losses_kw``, in the import and in the
transformer's flow.
"""

from __future__ import annotations

import math
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.solvers.highs import Highs

from grid.distflow import (
    FlowState,
    Linearisation,
    LinearMap,
    Tree,
    linear_map,
    linearise,
    loading_frac,
    solve_distflow,
    tree_of,
)
from grid.feeders import Feeder
from grid.results import ConstrainedClearing, GridCheck

#: Sides of the thermal-limit polygon.
POLYGON_SIDES = 12
#: Penalty on a voltage-limit slack [currency/h per p.u.^2 of squared voltage].
PENALTY_VOLTAGE = 1.0e6
#: Penalty on a thermal-limit slack [currency/h per p.u. of power].
PENALTY_THERMAL = 1.0e6
#: Tolerance when counting violations [p.u. and fraction].
VIOLATION_TOL = 1e-6


def make_solver() -> Highs:
    """A persistent HiGHS solver with change detection reduced to parameter updates."""
    opt = Highs()
    au = opt.config.auto_updates
    au.check_for_new_or_removed_constraints = False
    au.check_for_new_or_removed_vars = False
    au.check_for_new_or_removed_params = False
    au.check_for_new_objective = False
    au.update_constraints = False
    au.update_vars = False
    au.update_named_expressions = False
    au.update_objective = False
    au.update_parameters = True
    opt.config.load_solutions = False
    opt.config.raise_exception_on_nonoptimal_result = True
    return opt


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


class FeederModel:
    """The persistent grid model of one feeder: ``check`` and ``clear_constrained``.

    Parameters
    ----------
    feeder : Feeder
    v_min_pu, v_max_pu : float
        Voltage limits of the scenario [p.u.].
    v_margin_pu : float
        Safety margin taken off both voltage limits in the linear model [p.u.]
        (default 0.01, see the module docstring).
    operating_point_kw, operating_point_kvar : ndarray, shape (n_bus,), optional
        Injections to linearise around [kW, kvar]; default the feeder's base case
        (``feeder.base_injection_kw()``: the background load at its peak; zero on LV feeders).
    screen_band_pu : float
        An interval is taken from the screen only if every voltage is at least this far
        inside the tightened limits [p.u.] ...
    screen_loading_frac : float
        ... and every branch is loaded below this fraction of its rating.
    thermal_margin_frac : float
        Fraction of every branch rating kept free (default 0.05): the model limits and
        counts as violations loadings above ``1 - thermal_margin_frac``, because a
        linearisation around zero flow (LV feeders) leaves the losses out of the
        sending-end flow (2.5-4.3 % of the rating at full load, see the module docstring).
    direct_updates : bool
        Fast path of the check solve (default True): after the first solve through
        Pyomo's persistent interface, which builds and owns the HiGHS model, the only
        per-interval change (the bounds of the ``2 n_bus`` bus-balance rows) is written
        straight into that HiGHS instance and the solution read from it, skipping
        Pyomo's per-solve bookkeeping (about 2/3 of the time). ``False`` uses the
        interface's own ``solve`` every time (``update_parameters`` only). The same switch
        governs :meth:`clear_constrained` (order sizes, prices, caps and injections
        written into its HiGHS model in bulk, see :class:`grid.clearing.ClearingModel`).
    """

    def __init__(
        self,
        feeder: Feeder,
        v_min_pu: float = 0.95,
        v_max_pu: float = 1.05,
        v_margin_pu: float = 0.01,
        *,
        operating_point_kw: np.ndarray | None = None,
        operating_point_kvar: np.ndarray | None = None,
        screen_band_pu: float = 0.01,
        screen_loading_frac: float = 0.9,
        thermal_margin_frac: float = 0.05,
        direct_updates: bool = True,
    ) -> None:
        if not 0 < v_min_pu + v_margin_pu < v_max_pu - v_margin_pu:
            raise ValueError(
                f"voltage limits leave no room: v_min_pu={v_min_pu}, v_max_pu={v_max_pu}, "
                f"v_margin_pu={v_margin_pu}"
            )
        self.feeder = feeder
        self.v_min_pu = float(v_min_pu)
        self.v_max_pu = float(v_max_pu)
        self.v_margin_pu = float(v_margin_pu)
        self.screen_band_pu = float(screen_band_pu)
        self.screen_loading_frac = float(screen_loading_frac)
        self.thermal_margin_frac = float(thermal_margin_frac)
        self.loading_limit_frac = 1.0 - self.thermal_margin_frac
        self.tree: Tree = tree_of(feeder)
        s = feeder.s_base_kva
        p0 = (
            feeder.base_injection_kw()
            if operating_point_kw is None
            else np.asarray(operating_point_kw, float)
        )
        q0 = (
            feeder.base_injection_kvar()
            if operating_point_kvar is None
            else np.asarray(operating_point_kvar, float)
        )
        self.w_slack_pu = feeder.v_slack_pu**2
        self.operating_point: FlowState = solve_distflow(self.tree, p0 / s, q0 / s, self.w_slack_pu)
        self.lin: Linearisation = linearise(self.tree, self.operating_point)
        self.map: LinearMap = linear_map(self.tree, self.lin, self.w_slack_pu)
        self.v_lo_pu = self.v_min_pu + self.v_margin_pu
        self.v_hi_pu = self.v_max_pu - self.v_margin_pu
        self._check_model = self._build_check_model()
        self._check_solver = make_solver()
        self.direct_updates = bool(direct_updates)
        self._direct: dict[str, Any] | None = None
        self._clearing: Any = None  # grid.clearing.ClearingModel, built on first use

    # ------------------------------------------------------------------ building
    def _build_check_model(self) -> pyo.ConcreteModel:
        m = pyo.ConcreteModel(name=f"check {self.feeder.name}")
        m.p_grid = pyo.Var()
        slack = self.tree.slack
        m.dec_p = pyo.Expression(
            range(self.tree.n_bus), rule=lambda m, j: m.p_grid if j == slack else 0.0
        )
        add_network(m, self.tree, self.lin, (self.v_lo_pu, self.v_hi_pu), self.thermal_margin_frac)
        self.set_limits(m)
        m.obj = pyo.Objective(expr=m.penalty, sense=pyo.minimize)
        return m

    def set_limits(self, m: pyo.ConcreteModel) -> None:
        """Write the tightened voltage limits and the slack voltage into model ``m``."""
        m.w_lo.set_value(self.v_lo_pu**2)
        m.w_hi.set_value(self.v_hi_pu**2)
        m.w_slack.set_value(self.w_slack_pu)

    # ------------------------------------------------------------------ results
    def state(
        self, p_line_pu: np.ndarray, q_line_pu: np.ndarray, w_pu: np.ndarray, solved_with: str
    ) -> GridCheck:
        """Assemble a :class:`GridCheck` from per-unit flows and squared voltages."""
        t, s = self.tree, self.feeder.s_base_kva
        v = np.sqrt(np.maximum(w_pu, 0.0))
        loading = loading_frac(t, p_line_pu, q_line_pu, w_pu)
        iron_kw = float(t.g_shunt_pu @ w_pu) * s
        series_kw = float(np.sum(t.r_pu * (p_line_pu**2 + q_line_pu**2) / w_pu[t.from_bus])) * s
        losses_kw = series_kw + iron_kw
        out_of_slack = t.from_bus == t.slack
        # shunts sit at the LV bus of a transformer, never at the slack: all flows out
        import_pu = float(np.sum(p_line_pu[out_of_slack]))
        bus_bad = (v < self.v_lo_pu - VIOLATION_TOL) | (v > self.v_hi_pu + VIOLATION_TOL)
        line_bad = loading > self.loading_limit_frac + VIOLATION_TOL
        return GridCheck(
            v_pu=v,
            line_p_kw=p_line_pu * s,
            line_q_kvar=q_line_pu * s,
            loading_frac=loading,
            losses_kw=losses_kw,
            import_kw=import_pu * s,
            v_min_pu=float(v.min()),
            v_max_pu=float(v.max()),
            max_line_loading_frac=float(loading.max()),
            bus_violation=bus_bad,
            line_violation=line_bad,
            violations=int(bus_bad.sum() + line_bad.sum()),
            solved_with=solved_with,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ screen / check
    def screen(
        self, p_kw: np.ndarray, q_kvar: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised screen of one or many intervals.

        Parameters
        ----------
        p_kw, q_kvar : ndarray, shape (..., n_bus)
            Net injections [kW, kvar], export positive, background included.

        Returns
        -------
        v_pu : ndarray, shape (..., n_bus)
            Voltages of the linearised model [p.u.].
        loading_frac : ndarray, shape (..., n_line)
        needs_solve : ndarray of bool, shape (...)
            True where the interval is near or over a limit and must go through
            :meth:`check` 's Pyomo solve.
        """
        s = self.feeder.s_base_kva
        pl, ql, w = self.map.solve(np.asarray(p_kw, float) / s, np.asarray(q_kvar, float) / s)
        v = np.sqrt(np.maximum(w, 0.0))
        loading = loading_frac(self.tree, pl, ql, w)
        band = self.screen_band_pu
        near = (v.min(axis=-1) < self.v_lo_pu + band) | (v.max(axis=-1) > self.v_hi_pu - band)
        near |= loading.max(axis=-1) > self.screen_loading_frac
        return v, loading, near

    def check(
        self, p_kw: np.ndarray, q_kvar: np.ndarray, *, force_solve: bool = False
    ) -> GridCheck:
        """Voltages, flows, loadings, losses and violations for one interval's injections.

        Parameters
        ----------
        p_kw, q_kvar : ndarray, shape (n_bus,)
            Total net injection per bus [kW, kvar], positive = export to the feeder,
            background included.
        force_solve : bool
            Skip the screen and solve with Pyomo.
        """
        p = np.asarray(p_kw, float)
        q = np.asarray(q_kvar, float)
        self._check_shape(p, q)
        if not force_solve:
            s = self.feeder.s_base_kva
            pl, ql, w = self.map.solve(p / s, q / s)
            chk = self.state(pl, ql, w, "screen")
            band = self.screen_band_pu
            if (
                chk.v_min_pu >= self.v_lo_pu + band
                and chk.v_max_pu <= self.v_hi_pu - band
                and chk.max_line_loading_frac <= self.screen_loading_frac
            ):
                return chk
        return self.solve_check(p, q)

    def solve_check(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> GridCheck:
        """Solve the Pyomo check model for fixed injections [kW, kvar]."""
        m, s = self._check_model, self.feeder.s_base_kva
        if self._direct is not None:
            return self._solve_check_direct(
                np.asarray(p_kw, float) / s, np.asarray(q_kvar, float) / s
            )
        for j, (pj, qj) in enumerate(zip(p_kw, q_kvar, strict=True)):
            m.p_inj[j].set_value(float(pj) / s)
            m.q_inj[j].set_value(float(qj) / s)
        res = self._check_solver.solve(m)
        pl, ql, w = self.values(res, m)
        if self.direct_updates:
            self._init_direct(p_kw, q_kvar)
        return self.state(pl, ql, w, "pyomo")

    def _init_direct(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> None:
        """Map the balance rows and flow/voltage columns of the HiGHS model Pyomo built."""
        opt, m, s = self._check_solver, self._check_model, self.feeder.s_base_kva
        try:
            highs = opt._solver_model
            row_of = opt._pyomo_con_to_solver_con_map
            col_of = opt._pyomo_var_to_solver_var_map
        except AttributeError:  # another Pyomo version: stay on the public path
            self.direct_updates = False
            return
        highs.setOptionValue("output_flag", False)
        rows = np.array([row_of[c] for c in [*m.bal_p.values(), *m.bal_q.values()]], dtype=np.int32)
        lower = np.asarray(highs.getLp().row_lower_)[rows]
        # row bound = -injection - constant part of the row body
        inj = np.concatenate([np.asarray(p_kw, float), np.asarray(q_kvar, float)]) / s
        cols = np.array([col_of[id(v)] for v in m._value_vars], dtype=np.int64)
        self._direct = {"highs": highs, "rows": rows, "offset": -lower - inj, "cols": cols}

    def _solve_check_direct(self, p_pu: np.ndarray, q_pu: np.ndarray) -> GridCheck:
        d = self._direct
        assert d is not None
        bound = -np.concatenate([p_pu, q_pu]) - d["offset"]
        highs = d["highs"]
        highs.changeRowsBounds(len(bound), d["rows"], bound, bound)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS: {highs.modelStatusToString(highs.getModelStatus())}")
        z = np.asarray(highs.getSolution().col_value)[d["cols"]]
        nl = self.tree.n_line
        return self.state(z[:nl], z[nl : 2 * nl], z[2 * nl :], "pyomo")

    def values(self, res: Any, m: pyo.ConcreteModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flows ``P``, ``Q`` and squared voltages ``w`` [p.u.] from the results ``res``."""
        if not hasattr(m, "_value_vars"):
            m._value_vars = list(m.P.values()) + list(m.Q.values()) + list(m.w.values())
        prim = res.solution_loader.get_vars(m._value_vars)
        z = np.fromiter((prim[v] for v in m._value_vars), float, len(m._value_vars))
        nl = self.tree.n_line
        return z[:nl], z[nl : 2 * nl], z[2 * nl :]

    def _check_shape(self, *arrays: np.ndarray) -> None:
        for a in arrays:
            if a.shape != (self.feeder.n_bus,):
                raise ValueError(
                    f"expected an array of shape ({self.feeder.n_bus},), got {a.shape}"
                )
            if not np.isfinite(a).all():
                raise ValueError("injections must be finite")

    # ------------------------------------------------------------------ clearing
    def clear_constrained(
        self,
        p_fixed_kw: np.ndarray,
        q_fixed_kvar: np.ndarray,
        order_bus: np.ndarray,
        order_side: np.ndarray,
        order_kwh: np.ndarray,
        order_price_per_kwh: np.ndarray,
        curtailable_kw: np.ndarray,
        retail_price_per_kwh: float,
        feed_in_price_per_kwh: float,
        interval_hours: float,
        *,
        deferrable_kw: np.ndarray | None = None,
        order_flexible: np.ndarray | None = None,
        curtailment_cost_per_kwh: float = 0.0,
        deferral_cost_per_kwh: float | None = None,
        p2p: bool = True,
    ) -> ConstrainedClearing:
        """Network-constrained clearing of one interval; see :mod:`grid.clearing`."""
        from grid.clearing import clear_constrained

        return clear_constrained(
            self,
            p_fixed_kw,
            q_fixed_kvar,
            order_bus,
            order_side,
            order_kwh,
            order_price_per_kwh,
            curtailable_kw,
            retail_price_per_kwh,
            feed_in_price_per_kwh,
            interval_hours,
            deferrable_kw=deferrable_kw,
            order_flexible=order_flexible,
            curtailment_cost_per_kwh=curtailment_cost_per_kwh,
            deferral_cost_per_kwh=deferral_cost_per_kwh,
            p2p=p2p,
        )
