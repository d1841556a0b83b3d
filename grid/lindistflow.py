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
solved by the Pyomo model, which is the authority. The Pyomo models (check and clearing)
are built, and Pyomo imported, by the first interval that needs one: a run the screen
settles throughout never imports Pyomo (its import, with the ``scipy.stats`` it pulls in,
takes longer than a small run's simulation; ``bench/bench_startup.py``). They import
``pyomo.core`` (the modelling layer) and the HiGHS interface class directly, not
``pyomo.environ``, whose solver plugins they do not use (0.17 s less CPU).

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
radial:600              0.0007      0.0028      0.0050      0.0006
simbench semiurb4       0.0003      0.0015      0.0026      0.0003
=====================  ==========  ==========  ==========  ==========

=====================  ==========  ==========  ==========  ==========
loading [-]             x0.5        x1.0        x1.3        pv
=====================  ==========  ==========  ==========  ==========
ieee33                  0.012       0           0.005       0.029
radial:60               0.010       0.043       0.075       0.003
radial:600              0.012       0.050       0.089       0.001
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
load, 5.0 % on the 6 %-vk transformers of ``radial:N`` above 210 households (800 kVA and
up: radial:300 0.0495, radial:600 0.050, ``tests/grid/test_large_radial.py``).
``thermal_margin_frac`` (default 0.05) of each rating is kept free for it, so a branch
the model loads to its limit of 0.95 is at most about 0.99 in AC (0.995 on radial:600); a
planner who needs certainty runs ``check = "pyomo+ac"``.

Transformer no-load (iron) losses are a shunt at the transformer's LV bus
(:func:`grid.distflow.tree_of`): they are in ``losses_kw``, in the import and in the
transformer's flow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grid.check_model import CheckSolve
from grid.clearing import clear_constrained
from grid.clearing_model import ClearingModel
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
from grid.limits import THERMAL_MARGIN_FRAC, V_MARGIN_PU, V_MAX_PU, V_MIN_PU, Limits
from grid.results import ConstrainedClearing, GridCheck


class FeederModel(CheckSolve):
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
        written into its HiGHS model in bulk, see :class:`grid.clearing_model.ClearingModel`).
        The fast path is taken only where :func:`grid.highs_direct.direct_model` allows it
        (a tested Pyomo version, ``P2PGRID_STOCK_THIRD_PARTY`` not set); otherwise the
        model stays on the stock path, with the same solutions.
    """

    def __init__(
        self,
        feeder: Feeder,
        v_min_pu: float = V_MIN_PU,
        v_max_pu: float = V_MAX_PU,
        v_margin_pu: float = V_MARGIN_PU,
        *,
        operating_point_kw: np.ndarray | None = None,
        operating_point_kvar: np.ndarray | None = None,
        screen_band_pu: float = 0.01,
        screen_loading_frac: float = 0.9,
        thermal_margin_frac: float = THERMAL_MARGIN_FRAC,
        direct_updates: bool = True,
    ) -> None:
        self.feeder = feeder
        #: the limits the model holds and counts violations of (:mod:`grid.limits`)
        self.limits = Limits(
            float(v_min_pu), float(v_max_pu), float(v_margin_pu), float(thermal_margin_frac)
        )
        self.v_min_pu = self.limits.v_min_pu
        self.v_max_pu = self.limits.v_max_pu
        self.v_margin_pu = self.limits.v_margin_pu
        self.screen_band_pu = float(screen_band_pu)
        self.screen_loading_frac = float(screen_loading_frac)
        self.thermal_margin_frac = self.limits.thermal_margin_frac
        self.loading_limit_frac = self.limits.loading_limit_frac
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
        self.v_lo_pu = self.limits.v_lo_pu
        self.v_hi_pu = self.limits.v_hi_pu
        # built by the first interval the screen does not settle (CheckSolve.solve_check):
        # a run whose every interval passes the screen never imports Pyomo
        self._check_model = None
        self._check_solver = None
        self.direct_updates = bool(direct_updates)
        self._direct: dict[str, Any] | None = None
        self._clearing: ClearingModel | None = None  # built on first use

    @classmethod
    def with_limits(cls, feeder: Feeder, limits: Limits, **options: Any) -> FeederModel:
        """The model of ``feeder`` holding ``limits`` (``options`` as for the constructor)."""
        return cls(
            feeder,
            limits.v_min_pu,
            limits.v_max_pu,
            limits.v_margin_pu,
            thermal_margin_frac=limits.thermal_margin_frac,
            **options,
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

    def screen_violations(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> np.ndarray:
        """Limits the injections break in the screen, per interval (shape ``(...)``):
        exact for the linear model, vectorised over intervals."""
        v, loading, _ = self.screen(p_kw, q_kvar)
        bus_bad = self.limits.bus_violation(v)
        line_bad = self.limits.line_violation(loading)
        return bus_bad.sum(axis=-1) + line_bad.sum(axis=-1)

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
