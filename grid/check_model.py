"""The Pyomo check model of a feeder and its solve: the network with fixed injections,
solved on Pyomo's persistent HiGHS interface or, after the first solve, straight in the
HiGHS instance Pyomo built (the direct path of :mod:`grid.highs_direct`).

:class:`CheckSolve` is the part of :class:`grid.lindistflow.FeederModel` that builds and
solves this model and turns its flows and squared voltages into a
:class:`grid.results.GridCheck`; the feeder model provides the network, the
linearisation and the limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from grid.distflow import Linearisation, Tree, loading_frac
from grid.feeders import Feeder
from grid.highs_direct import direct_model, make_solver
from grid.limits import Limits
from grid.network import add_network
from grid.results import GridCheck

if TYPE_CHECKING:
    import pyomo.core as pyo


class CheckSolve:
    """Builds and solves the check model of :class:`grid.lindistflow.FeederModel`."""

    feeder: Feeder
    tree: Tree
    lin: Linearisation
    limits: Limits
    v_lo_pu: float
    v_hi_pu: float
    w_slack_pu: float
    thermal_margin_frac: float
    direct_updates: bool
    _check_model: pyo.ConcreteModel | None
    _check_solver: Any
    _direct: dict[str, Any] | None

    # ------------------------------------------------------------------ building
    def _build_check_model(self) -> pyo.ConcreteModel:
        import pyomo.core as pyo

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
        bus_bad = self.limits.bus_violation(v)
        line_bad = self.limits.line_violation(loading)
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
            solved_with=solved_with,  # type: ignore[arg-type]  # "screen" or "pyomo" by callers
        )

    # ------------------------------------------------------------------ solve
    def solve_check(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> GridCheck:
        """Solve the Pyomo check model for fixed injections [kW, kvar] (built, and Pyomo
        imported, by the first call)."""
        if self._check_model is None:
            self._check_model = self._build_check_model()
            self._check_solver = make_solver()
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
        m, s = self._check_model, self.feeder.s_base_kva
        assert m is not None  # built by the solve before
        direct = direct_model(self._check_solver)
        if direct is None:  # the stock path (grid.highs_direct)
            self.direct_updates = False
            return
        highs = direct.highs
        highs.setOptionValue("output_flag", False)
        rows = direct.rows([*m.bal_p.values(), *m.bal_q.values()])
        lower = np.asarray(highs.getLp().row_lower_)[rows]
        # row bound = -injection - constant part of the row body
        inj = np.concatenate([np.asarray(p_kw, float), np.asarray(q_kvar, float)]) / s
        cols = direct.cols(m._value_vars, np.int64)
        self._direct = {"highs": highs, "rows": rows, "offset": -lower - inj, "cols": cols}

    def _solve_check_direct(self, p_pu: np.ndarray, q_pu: np.ndarray) -> GridCheck:
        import highspy

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
