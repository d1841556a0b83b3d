"""ieee33 against pandapower's AC power flow (Baran & Wu 1989 published figures)."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from grid import AcPowerFlow, Feeder, FeederModel, validate_feeder
from grid.ac import voltage_error_pu


def test_pandapower_reproduces_the_published_case() -> None:
    """Baran & Wu (1989): 202.7 kW losses, minimum voltage 0.913 p.u. at bus 18."""
    net = pn.case33bw()
    pp.runpp(net, numba=False)
    assert abs(net.res_line["pl_mw"].sum() * 1000.0 - 202.7) < 0.05
    assert abs(net.res_bus["vm_pu"].min() - 0.913) < 0.0005
    assert int(net.res_bus["vm_pu"].idxmin()) + 1 == 18  # Baran & Wu numbering


def test_model_voltages_within_3_thousandths_of_ac(
    ieee33: Feeder, ieee33_model: FeederModel
) -> None:
    p, q = ieee33.base_injection_kw(), ieee33.base_injection_kvar()
    net = pn.case33bw()
    pp.runpp(net, numba=False)
    chk = ieee33_model.check(p, q, force_solve=True)
    assert chk.solved_with == "pyomo"
    err = chk.v_pu - net.res_bus["vm_pu"].to_numpy()
    assert np.abs(err).max() < 0.003
    assert abs(chk.losses_kw - 202.7) < 0.5
    assert ieee33.buses["bus"][int(np.argmin(chk.v_pu))] == "18"


def test_our_pandapower_network_is_case33bw(ieee33: Feeder) -> None:
    net = pn.case33bw()
    pp.runpp(net, numba=False)
    ac = AcPowerFlow(ieee33).run(ieee33.base_injection_kw(), ieee33.base_injection_kvar())
    assert np.abs(ac.v_pu - net.res_bus["vm_pu"].to_numpy()).max() < 1e-7
    assert abs(ac.losses_kw - 202.677) < 0.01


def test_away_from_the_operating_point_the_error_stays_small(
    ieee33: Feeder, ieee33_model: FeederModel
) -> None:
    """Off-peak background (0.59-0.96 of the peak) and a 300 kW PV export at the feeder end."""
    ac = AcPowerFlow(ieee33)
    for factor in (0.59, 0.96, 0.95):
        p = ieee33.background_injection_kw(factor)
        q = ieee33.background_injection_kvar(factor)
        p[17] += 300.0
        err = voltage_error_pu(ieee33_model.check(p, q, force_solve=True), ac.run(p, q))
        assert np.abs(err).max() < 0.003, factor


def test_validate_feeder_compares_off_the_linearisation_point(
    ieee33: Feeder, ieee33_model: FeederModel
) -> None:
    """The validation cases: the base case (the linearisation point, error zero), half and
    1.3 times the load, and a net PV export; off the point the errors are the measured
    figures of grid.lindistflow's docstring, not zero."""
    v = validate_feeder(ieee33, model=ieee33_model)
    assert list(v.buses.columns) == ["case", "bus", "v_model_pu", "v_ac_pu", "v_error_pu"]
    assert len(v.buses) == 4 * 33
    c = v.cases.set_index("case")
    assert list(c.index) == ["load x0.5", "load x1.0", "load x1.3", "pv"]
    assert c.at["load x1.0", "losses_ac_kw"] == pytest.approx(202.677, abs=0.01)
    assert c.at["load x1.0", "v_min_ac_pu"] == pytest.approx(0.91309, abs=1e-5)
    assert c.at["load x1.0", "max_abs_v_error_pu"] < 1e-6
    assert c.at["load x1.0", "max_abs_loading_error_frac"] < 1e-5
    off = c.drop(index="load x1.0")
    assert (off["max_abs_v_error_pu"] > 2e-4).all()
    assert (off["max_abs_loading_error_frac"] > 2e-3).all()
    # the figures the docstring states (rounded up)
    assert off["max_abs_v_error_pu"].tolist() == pytest.approx([0.0009, 0.0004, 0.0045], abs=1e-4)
    assert off["max_abs_loading_error_frac"].tolist() == pytest.approx(
        [0.012, 0.005, 0.029], abs=1e-3
    )
