"""AC validation of the linear feeder model with pandapower's Newton-Raphson power flow.

The engine calls :class:`AcPowerFlow` for ``check = "pyomo+ac"`` (the same injections as
the linear check, ``voltage_error_pu`` per bus); ``p2pgrid validate-grid FEEDER`` calls
:func:`validate_feeder` and prints its tables.

The pandapower network is built from the :class:`~grid.feeders.Feeder` tables (lines as
series impedances without shunt capacitance, the transformer with ``pfe_kw = i0_percent
= 0`` and no tap), i.e. exactly the network the DistFlow model describes, so the
comparison measures the linearisation and nothing else.

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
                pfe_kw=0.0,
                i0_percent=0.0,
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
        Apparent power at the sending end over ``s_max_kva`` [-].
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
        pp.runpp(net, numba=False, calculate_voltage_angles=False, init="flat", tolerance_mva=1e-9)
        s_max = self.feeder.lines["s_max_kva"].to_numpy(float)
        p_from = np.empty(len(s_max))
        q_from = np.empty(len(s_max))
        rl, rt = net.res_line, net.res_trafo
        p_from[~self._is_trafo] = rl.loc[self._elem[~self._is_trafo], "p_from_mw"].to_numpy()
        q_from[~self._is_trafo] = rl.loc[self._elem[~self._is_trafo], "q_from_mvar"].to_numpy()
        p_from[self._is_trafo] = rt.loc[self._elem[self._is_trafo], "p_hv_mw"].to_numpy()
        q_from[self._is_trafo] = rt.loc[self._elem[self._is_trafo], "q_hv_mvar"].to_numpy()
        losses = rl["pl_mw"].sum() + (rt["pl_mw"].sum() if len(rt) else 0.0)
        return AcResult(
            v_pu=net.res_bus["vm_pu"].to_numpy(float).copy(),
            line_p_kw=p_from * 1000.0,
            loading_frac=np.hypot(p_from, q_from) * 1000.0 / s_max,
            losses_kw=float(losses) * 1000.0,
            import_kw=float(net.res_ext_grid["p_mw"].sum()) * 1000.0,
        )


def voltage_error_pu(check: GridCheck, ac: AcResult) -> np.ndarray:
    """Linear-model voltage minus AC voltage at every bus [p.u.], shape (n_bus,)."""
    return check.v_pu - ac.v_pu


@dataclass(frozen=True)
class FeederValidation:
    """Comparison of the linear model with AC for a feeder's validation case.

    Attributes
    ----------
    buses : pandas.DataFrame
        One row per bus: ``bus``, ``v_model_pu``, ``v_ac_pu``, ``v_error_pu``.
    summary : pandas.DataFrame
        One row per figure (``quantity``): ``model``, ``ac``, ``error``; quantities
        ``v_min_pu``, ``v_max_pu``, ``losses_kw``, ``import_kw``, ``max_line_loading_frac``,
        ``max_abs_v_error_pu``.
    """

    buses: pd.DataFrame
    summary: pd.DataFrame


def validate_feeder(
    feeder: Feeder,
    p_kw: np.ndarray | None = None,
    q_kvar: np.ndarray | None = None,
    *,
    model: Any = None,
) -> FeederValidation:
    """Compare the linear model with pandapower AC on one case of ``feeder``.

    The default case is the feeder's base case (background load at its peak); feeders
    without background load get 3 kW / 1 kvar of load on every household bus.
    """
    from grid.lindistflow import FeederModel

    if p_kw is None or q_kvar is None:
        p_kw, q_kvar = feeder.base_injection_kw(), feeder.base_injection_kvar()
        if not np.any(p_kw):
            hb = feeder.buses["household_bus"].to_numpy(bool)
            p_kw = np.where(hb, -VALIDATION_HOUSEHOLD_BUS_KW, 0.0)
            q_kvar = np.where(hb, -VALIDATION_HOUSEHOLD_BUS_KVAR, 0.0)
    fm = model if model is not None else FeederModel(feeder)
    chk = fm.check(np.asarray(p_kw, float), np.asarray(q_kvar, float), force_solve=True)
    ac = AcPowerFlow(feeder).run(p_kw, q_kvar)
    err = voltage_error_pu(chk, ac)
    buses = pd.DataFrame(
        {"bus": feeder.buses["bus"], "v_model_pu": chk.v_pu, "v_ac_pu": ac.v_pu, "v_error_pu": err}
    )
    rows = [
        ("v_min_pu", chk.v_min_pu, float(ac.v_pu.min())),
        ("v_max_pu", chk.v_max_pu, float(ac.v_pu.max())),
        ("losses_kw", chk.losses_kw, ac.losses_kw),
        ("import_kw", chk.import_kw, ac.import_kw),
        ("max_line_loading_frac", chk.max_line_loading_frac, float(ac.loading_frac.max())),
    ]
    summary = pd.DataFrame(rows, columns=["quantity", "model", "ac"])
    summary["error"] = summary["model"] - summary["ac"]
    summary.loc[len(summary)] = [
        "max_abs_v_error_pu",
        float(np.abs(err).max()),
        0.0,
        float(np.abs(err).max()),
    ]
    return FeederValidation(buses=buses, summary=summary)
