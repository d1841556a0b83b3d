"""What nodal prices mean at a binding limit, and that prices of the penalty are not reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from grid import FeederModel, load_feeder
from market.orders import Side

from .conftest import HAND_FEEDER

RETAIL, FEED_IN, H = 0.30, 0.05, 0.25
#: Series resistance of lines a and b of the hand feeder [ohm].
R_A, R_B = 0.001, 0.01


@pytest.fixture()
def strong_line_model(tmp_path: Path) -> FeederModel:
    """The hand feeder with line b rated 2000 kVA: only the voltage at bus 2 can bind."""
    data = copy.deepcopy(HAND_FEEDER)
    data["lines"][1]["s_max_kva"] = 2000
    path = tmp_path / "hand3v.json"
    path.write_text(json.dumps(data))
    return FeederModel(load_feeder(str(path), households=2), thermal_margin_frac=0.0)


def _clear(model: FeederModel, load2_kw: float, deferrable2_kw: float):
    """A fixed load at bus 2, a small P2P trade at bus 1, EV charging deferrable at bus 2."""
    return model.clear_constrained(
        np.array([0.0, 0.0, -load2_kw]), np.zeros(3),
        order_bus=np.array([1, 1]), order_side=np.array([Side.SELL, Side.BUY]),
        order_kwh=np.array([5.0, 5.0]), order_price_per_kwh=np.array([0.10, 0.20]),
        curtailable_kw=np.zeros(3), retail_price_per_kwh=RETAIL,
        feed_in_price_per_kwh=FEED_IN, interval_hours=H,
        deferrable_kw=np.array([0.0, 0.0, deferrable2_kw]),
    )  # fmt: skip


def _load_at_the_limit(model: FeederModel) -> float:
    """Load at bus 2 that puts it exactly at the tightened limit 0.96 p.u. [kW]."""
    _, _, w = model.map.solve(np.array([0.0, 0.0, -1.0]) / 1000.0, np.zeros(3))
    w0 = model.map.z0[-1]
    return float((0.96**2 - w0) / (w[-1] - w0))


def test_price_at_a_binding_voltage_is_the_relief_scaled_by_sensitivity(
    strong_line_model: FeederModel,
) -> None:
    """Bus 2 is 5 kW past its under-voltage limit; 10 kW of EV charging there may be deferred
    at 2 x retail = 0.60 per kWh. By hand: 5 kW are deferred; one more kWh injected at bus 2
    saves one kWh of deferral: 0.60. At bus 1 one kWh moves bus 2's voltage only
    r_a / (r_a + r_b) = 1/11 as much (LinDistFlow, no reactive flow): it saves 1/11 kWh of
    deferral, net of the import it replaces 0.60 - 0.30, on top of the retail price:
    0.30 + 0.30 / 11 = 0.3273. The slack imports: 0.30."""
    m = strong_line_model
    res = _clear(m, _load_at_the_limit(m) + 5.0, 10.0)
    assert res.deferred_kw[2] == pytest.approx(5.0, abs=1e-6)
    assert not res.penalty_priced and res.residual_violations == 0
    ratio = R_A / (R_A + R_B)
    np.testing.assert_allclose(
        res.nodal_price_per_kwh, [RETAIL, RETAIL + (2 * RETAIL - RETAIL) * ratio, 2 * RETAIL],
        atol=1e-6,
    )  # fmt: skip


def test_prices_of_the_penalty_are_not_reported(strong_line_model: FeederModel) -> None:
    """Bus 2 5 kW past its limit with nothing to defer: the limit stays broken, its shadow
    price is the penalty weight (1e6 per p.u.^2 of squared voltage), and the duals price
    that, not energy (0.30, 12.8 and 137.8 per kWh at the three buses): the prices are NaN."""
    m = strong_line_model
    res = _clear(m, _load_at_the_limit(m) + 5.0, 0.0)
    assert res.residual_violations == 1
    assert res.penalty_priced
    assert np.isnan(res.nodal_price_per_kwh).all()
    # the interval itself is still cleared: the P2P trade at bus 1 goes through
    np.testing.assert_allclose(res.order_filled_kwh, [5.0, 5.0], atol=1e-9)
    # one kW less and the limit holds: energy prices again
    ok = _clear(m, _load_at_the_limit(m) - 1.0, 0.0)
    assert not ok.penalty_priced
    np.testing.assert_allclose(ok.nodal_price_per_kwh, RETAIL, atol=1e-9)
