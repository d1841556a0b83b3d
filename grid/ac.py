"""AC validation of the linear feeder model with pandapower's Newton-Raphson power flow.

The engine calls :class:`AcPowerFlow` for ``check = "pyomo+ac"`` (the same injections as
the linear check, ``voltage_error_pu`` per bus); ``p2pgrid validate-grid FEEDER`` calls
:func:`validate_feeder` and prints its tables.

The pandapower network is built from the :class:`~grid.feeders.Feeder` tables: lines as
series impedances without shunt capacitance, the transformer with its no-load losses
``pfe_kw`` and magnetising current ``i0_percent`` (pandapower's T model) and no tap.
Loadings are pandapower's own ``loading_percent / 100``: current over rated current
(``max_i_ka`` of a line, ``trafo_loading="current"`` for the transformer), the same
quantity as the linear model's ``loading_frac``.

Reference: L. Thurner et al., "pandapower - an Open-Source Python Tool for Convenient
Modeling, Analysis, and Optimization of Electric Power Systems", IEEE Trans. Power
Systems 33(6), 6510-6521, 2018.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from grid.feeders import Feeder
from grid.results import GridCheck

#: Load per household bus of the validation case of feeders without background load.
VALIDATION_HOUSEHOLD_BUS_KW = 3.0
VALIDATION_HOUSEHOLD_BUS_KVAR = 1.0


def _zero_if_nan(x: float) -> float:
    return 0.0 if math.isnan(float(x)) else float(x)


def to_pandapower(feeder: Feeder) -> Any:
    """A pandapower network of ``feeder`` with one (zero) load per bus, in bus order."""
    import pandapower as pp

    net = pp.create_empty_network(name=feeder.name)
    for row in feeder.buses.itertuples():
        pp.create_bus(net, vn_kv=row.vn_kv, name=row.bus, index=row.Index)
    pp.create_ext_grid(net, bus=feeder.slack_bus, vm_pu=feeder.v_slack_pu, va_degree=0.0)
    vn = feeder.buses["vn_kv"].to_numpy(float)
    for row in feeder.lines.itertuples():
        if row.kind == "trafo":
            pp.create_transformer_from_parameters(
                net,
                hv_bus=row.from_bus,
                lv_bus=row.to_bus,
                sn_mva=row.sn_kva / 1000.0,
                vn_hv_kv=vn[row.from_bus],
                vn_lv_kv=vn[row.to_bus],
                vkr_percent=row.vkr_percent,
                vk_percent=row.vk_percent,
                pfe_kw=_zero_if_nan(row.pfe_kw),
                i0_percent=_zero_if_nan(row.i0_percent),
                name=row.line,
            )
        else:
            pp.create_line_from_parameters(
                net,
                from_bus=row.from_bus,
                to_bus=row.to_bus,
                length_km=1.0,
                r_ohm_per_km=row.r_ohm,
                x_ohm_per_km=row.x_ohm,
                c_nf_per_km=0.0,
                max_i_ka=row.s_max_kva / (math.sqrt(3.0) * vn[row.to_bus] * 1000.0),
                name=row.line,
            )
    pp.create_loads(net, buses=np.arange(feeder.n_bus), p_mw=0.0, q_mvar=0.0)
    return net


@dataclass(frozen=True)
class AcResult:
    """AC power flow result for one interval (pandapower ``runpp``).

    Attributes
    ----------
    v_pu : ndarray, shape (n_bus,)
    line_p_kw : ndarray, shape (n_line,)
        Sending-end active flow, positive away from the slack [kW].
    loading_frac : ndarray, shape (n_line,)
        Current over rated current, pandapower's ``loading_percent / 100`` [-].
    losses_kw : float
    import_kw : float
        Power from the upstream grid [kW].
    """

    v_pu: np.ndarray
    line_p_kw: np.ndarray
    loading_frac: np.ndarray
    losses_kw: float
    import_kw: float


class AcPowerFlow:
    """pandapower AC power flow of a feeder, network built once, injections changed per call."""

    def __init__(self, feeder: Feeder) -> None:
        self.feeder = feeder
        self.net = to_pandapower(feeder)
        ln = feeder.lines
        self._is_trafo = (ln["kind"] == "trafo").to_numpy()
        self._elem = np.zeros(len(ln), int)
        self._elem[~self._is_trafo] = self.net.line.index.to_numpy()
        self._elem[self._is_trafo] = self.net.trafo.index.to_numpy()

    def run(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> AcResult:
        """Run ``runpp`` for net injections ``p_kw``, ``q_kvar`` [kW, kvar], export positive."""
        import pandapower as pp

        net = self.net
        net.load["p_mw"] = -np.asarray(p_kw, float) / 1000.0
        net.load["q_mvar"] = -np.asarray(q_kvar, float) / 1000.0
        pp.runpp(
            net,
            numba=False,
            calculate_voltage_angles=False,
            init="flat",
            tolerance_mva=1e-9,
            trafo_loading="current",
        )
        n_line = self.feeder.n_line
        p_from = np.empty(n_line)
        loading = np.empty(n_line)
        rl, rt = net.res_line, net.res_trafo
        line, trafo = self._elem[~self._is_trafo], self._elem[self._is_trafo]
        p_from[~self._is_trafo] = rl.loc[line, "p_from_mw"].to_numpy()
        p_from[self._is_trafo] = rt.loc[trafo, "p_hv_mw"].to_numpy()
        loading[~self._is_trafo] = rl.loc[line, "loading_percent"].to_numpy() / 100.0
        loading[self._is_trafo] = rt.loc[trafo, "loading_percent"].to_numpy() / 100.0
        losses = rl["pl_mw"].sum() + (rt["pl_mw"].sum() if len(rt) else 0.0)
        return AcResult(
            v_pu=net.res_bus["vm_pu"].to_numpy(float).copy(),
            line_p_kw=p_from * 1000.0,
            loading_frac=loading,
            losses_kw=float(losses) * 1000.0,
            import_kw=float(net.res_ext_grid["p_mw"].sum()) * 1000.0,
        )


def voltage_error_pu(check: GridCheck, ac: AcResult) -> np.ndarray:
    """Linear-model voltage minus AC voltage at every bus [p.u.], shape (n_bus,)."""
    return check.v_pu - ac.v_pu


#: The cases of :func:`validate_feeder`: name, factor on the active and on the reactive
#: part of the validation load. ``pv`` is half the load with PV producing the full load
#: at every loaded bus: a net export of half the load, the reactive load halved.
VALIDATION_CASES: tuple[tuple[str, float, float], ...] = (
    ("load x0.5", 0.5, 0.5),
    ("load x1.0", 1.0, 1.0),
    ("load x1.3", 1.3, 1.3),
    ("pv", -0.5, 0.5),
)


@dataclass(frozen=True)
class FeederValidation:
    """Comparison of the linear model with AC on a feeder's validation cases.

    Attributes
    ----------
    cases : pandas.DataFrame
        One row per case (:data:`VALIDATION_CASES`): ``case``, ``v_min_model_pu``,
        ``v_min_ac_pu``, ``max_abs_v_error_pu``, ``max_loading_model_frac``,
        ``max_loading_ac_frac``, ``max_abs_loading_error_frac`` (over all branches, both
        current over rated current), ``losses_model_kw``, ``losses_ac_kw``,
        ``import_model_kw``, ``import_ac_kw``.
    buses : pandas.DataFrame
        One row per case and bus: ``case``, ``bus``, ``v_model_pu``, ``v_ac_pu``,
        ``v_error_pu``.
    """

    cases: pd.DataFrame
    buses: pd.DataFrame


def validation_load(feeder: Feeder, model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The load ``validate_feeder`` scales [kW, kvar] (injections, load negative).

    The feeder's base case (its own loads at their peak, on ieee33 the published case); on
    feeders without background
    load, the same load on every household bus (3 kW : 1 kvar) sized so that the most
    loaded branch carries its rating in the model's linear flows.
    """
    p, q = feeder.base_injection_kw(), feeder.base_injection_kvar()
    if np.any(p):
        return p, q
    hb = feeder.buses["household_bus"].to_numpy(bool)
    p = np.where(hb, -VALIDATION_HOUSEHOLD_BUS_KW, 0.0)
    q = np.where(hb, -VALIDATION_HOUSEHOLD_BUS_KVAR, 0.0)
    _, loading, _ = model.screen(p, q)
    k = 1.0 / float(loading.max())
    return p * k, q * k


def validate_feeder(feeder: Feeder, *, model: Any = None) -> FeederValidation:
    """Compare the linear model with pandapower AC on the cases of :data:`VALIDATION_CASES`.

    Every case scales :func:`validation_load`; ``load x1.0`` of a feeder with background
    load is the model's linearisation point (error zero by construction), the others are
    not.
    """
    from grid.lindistflow import FeederModel

    fm = model if model is not None else FeederModel(feeder)
    p0, q0 = validation_load(feeder, fm)
    ac_flow = AcPowerFlow(feeder)
    rows, per_bus = [], []
    for name, kp, kq in VALIDATION_CASES:
        p, q = p0 * kp, q0 * kq
        chk = fm.check(p, q, force_solve=True)
        ac = ac_flow.run(p, q)
        err = voltage_error_pu(chk, ac)
        rows.append(
            {
                "case": name,
                "v_min_model_pu": chk.v_min_pu,
                "v_min_ac_pu": float(ac.v_pu.min()),
                "max_abs_v_error_pu": float(np.abs(err).max()),
                "max_loading_model_frac": chk.max_line_loading_frac,
                "max_loading_ac_frac": float(ac.loading_frac.max()),
                "max_abs_loading_error_frac": float(
                    np.abs(chk.loading_frac - ac.loading_frac).max()
                ),
                "losses_model_kw": chk.losses_kw,
                "losses_ac_kw": ac.losses_kw,
                "import_model_kw": chk.import_kw,
                "import_ac_kw": ac.import_kw,
            }
        )
        per_bus.append(
            pd.DataFrame(
                {
                    "case": name,
                    "bus": feeder.buses["bus"],
                    "v_model_pu": chk.v_pu,
                    "v_ac_pu": ac.v_pu,
                    "v_error_pu": err,
                }
            )
        )
    return FeederValidation(cases=pd.DataFrame(rows), buses=pd.concat(per_bus, ignore_index=True))
