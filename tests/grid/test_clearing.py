"""Network-constrained clearing: a hand-solved 3-bus case and invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid import FeederModel, load_feeder

RETAIL, FEED_IN, H = 0.30, 0.05, 0.25


def hand_clear(model: FeederModel, p_fixed_kw: np.ndarray):
    return model.clear_constrained(
        p_fixed_kw,
        np.zeros(3),
        order_bus=np.array([2, 1, 1]),
        order_side=np.array([1, 1, -1]),
        order_kwh=np.array([50.0, 10.0, 30.0]),
        order_price_per_kwh=np.array([0.10, 0.12, 0.25]),
        curtailable_kw=np.array([0.0, 0.0, 200.0]),
        retail_price_per_kwh=RETAIL,
        feed_in_price_per_kwh=FEED_IN,
        interval_hours=H,
    )


def test_hand_solved_three_bus_case(hand_file: Path) -> None:
    """Slack 0 -- line a (1000 kVA) -- bus 1 -- line b (100 kVA) -- bus 2, 15-min interval.

    Orders: S1 sells 50 kWh (200 kW) at 0.10 at bus 2, its PV (200 kW) curtailable;
    S2 sells 10 kWh (40 kW) at 0.12 at bus 1; B1 buys 30 kWh (120 kW) at 0.25 at bus 1.
    Retail 0.30, feed-in 0.05. No thermal margin (``thermal_margin_frac=0``); the feeder
    has no background, so the model is LinDistFlow (lossless) and flows are sums of
    injections; voltages stay within 1.0-1.007 p.u., far from the limits.

    By hand:
    - line b carries bus 2's injection 200 - c2 <= 100 kW  ->  curtail c2 = 100 kW;
    - S1 can then deliver at most 200 - c2 = 100 kW = 25 kWh;
    - B1's 120 kW are matched with the cheapest sellers: S1 100 kW, S2 20 kW = 5 kWh;
      fills: S1 25 kWh, S2 5 kWh, B1 30 kWh; S2 is marginal -> P2P price 0.12;
    - bus 1 nets 40 - 120 = -80 kW, bus 2 delivers 100 kW -> 20 kW exported at the slack;
    - nodal prices (value of one more kWh injected): slack and bus 1, uncongested and
      exporting: the feed-in price 0.05; bus 2, behind the full line: one more kWh
      there must be curtailed and displaces 1 kWh of S1's P2P sale, worth
      0.12 - 0.10 = 0.02 -> -0.02;
    - welfare = P2P gains 0.25*30 - 0.10*25 - 0.12*5 = 4.40, plus the export
      0.05 * 20 kW * 0.25 h = 0.25  ->  4.65.
    """
    f = load_feeder(str(hand_file), households=2)
    model = FeederModel(f, thermal_margin_frac=0.0)
    res = hand_clear(model, np.zeros(3))
    np.testing.assert_allclose(res.order_filled_kwh, [25.0, 5.0, 30.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 100.0], atol=1e-6)
    np.testing.assert_allclose(res.nodal_price_per_kwh, [0.05, 0.05, -0.02], atol=1e-5)
    assert res.p2p_price_per_kwh == pytest.approx(0.12, abs=1e-6)
    assert res.import_kw == pytest.approx(-20.0, abs=1e-6)
    assert res.welfare == pytest.approx(4.65, abs=1e-5)
    assert res.grid.violations == 0
    assert res.grid.loading_frac[1] == pytest.approx(1.0, abs=1e-6)
    assert res.residual_violations == 0


def test_nodal_prices_are_marginal_values(hand_file: Path) -> None:
    """One more kW at a bus changes the welfare by the nodal price (finite difference)."""
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    base = hand_clear(model, np.zeros(3))
    for b in range(3):
        bump = np.zeros(3)
        bump[b] = 1.0
        moved = hand_clear(model, bump)
        assert (moved.welfare - base.welfare) / H == pytest.approx(
            base.nodal_price_per_kwh[b], abs=1e-5
        )


def test_uncongested_clearing_is_the_double_auction(hand_file: Path) -> None:
    """Without a binding limit nothing is curtailed and the best bids meet the best asks."""
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    res = model.clear_constrained(
        np.zeros(3), np.zeros(3), np.array([1, 2, 1, 2]), np.array(["sell", "sell", "buy", "buy"]),
        np.array([5.0, 5.0, 4.0, 4.0]), np.array([0.10, 0.20, 0.15, 0.25]), np.full(3, 50.0),
        RETAIL, FEED_IN, H,
    )  # fmt: skip
    # asks 0.10, 0.20; bids 0.25, 0.15: 5 kWh of the 0.10 ask meet 4 kWh at 0.25 + 1 at 0.15
    np.testing.assert_allclose(res.order_filled_kwh, [5.0, 0.0, 1.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, 0.0, atol=1e-9)
    # 10 kWh sold, 8 bought: the feeder exports 8 kW, so energy is worth the feed-in price
    np.testing.assert_allclose(res.nodal_price_per_kwh, FEED_IN, atol=1e-5)


@settings(max_examples=25, deadline=None, database=None)
@given(
    kwh=st.lists(st.floats(0.1, 40.0), min_size=2, max_size=8),
    seed=st.integers(0, 10_000),
)
def test_fills_balance_and_respect_orders(kwh: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    f = load_feeder("radial:12", households=12)
    model = _radial_model(f)
    n_ord = len(kwh)
    bus = rng.choice(f.household_buses, n_ord)
    side = rng.choice([-1, 1], n_ord)
    e = np.asarray(kwh)
    res = model.clear_constrained(
        np.zeros(f.n_bus), np.zeros(f.n_bus), bus, side, e, rng.uniform(0.08, 0.3, n_ord),
        np.bincount(bus[side > 0], weights=e[side > 0] / H, minlength=f.n_bus), RETAIL, FEED_IN, H,
    )  # fmt: skip
    fill = res.order_filled_kwh
    assert np.all(fill >= -1e-9) and np.all(fill <= e + 1e-9)
    assert fill[side > 0].sum() == pytest.approx(fill[side < 0].sum(), abs=1e-6)
    # with no deferrable load a heavy buy may leave an undervoltage the model cannot fix:
    # then, and only then, the result says so
    assert (res.grid.violations == 0) == (res.residual_violations == 0)
    # curtailment only where it was allowed
    assert np.all(
        res.curtailed_kw
        <= np.bincount(bus[side > 0], weights=e[side > 0] / H, minlength=f.n_bus) + 1e-6
    )


_MODELS: dict[str, FeederModel] = {}


def _radial_model(f) -> FeederModel:
    if f.name not in _MODELS:
        _MODELS[f.name] = FeederModel(f)
    return _MODELS[f.name]


def _flexible_case(model: FeederModel, extra_side: int, extra_price: float):
    """The hand case plus one flexible order of 10 kWh (40 kW) at bus 2."""
    return model.clear_constrained(
        np.zeros(3), np.zeros(3),
        order_bus=np.array([2, 1, 1, 2]),
        order_side=np.array([1, 1, -1, extra_side]),
        order_kwh=np.array([50.0, 10.0, 30.0, 10.0]),
        order_price_per_kwh=np.array([0.10, 0.12, 0.25, extra_price]),
        curtailable_kw=np.array([0.0, 0.0, 200.0]),
        retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN, interval_hours=H,
        order_flexible=np.array([False, False, False, True]),
    )  # fmt: skip


def test_flexible_charging_behind_a_full_line_relieves_it(hand_file: Path) -> None:
    """A battery at bus 2 bids 0.20 for 40 kW; it only charges as far as it is filled.

    By hand: line b carries 200 - c2 - xF <= 100 kW. Filling the battery (xF = 40 kW)
    lets curtailment fall to c2 = 60 kW, so S1 can deliver 140 kW = 35 kWh; the buyers
    (B1 120 kW, battery 40 kW) need 160 kW, the rest (20 kW = 5 kWh) from S2 at 0.12.
    Bus 2 nets 200 - 60 - 40 = 100 kW, bus 1 40 - 120 = -80 kW: 20 kW exported.
    Welfare = 0.25*30 + 0.20*10 - 0.10*35 - 0.12*5 + 0.05*20*0.25 = 5.65.
    """
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    res = _flexible_case(model, extra_side=-1, extra_price=0.20)
    np.testing.assert_allclose(res.order_filled_kwh, [35.0, 5.0, 30.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 60.0], atol=1e-6)
    np.testing.assert_allclose(res.p_kw, [0.0, -80.0, 100.0], atol=1e-6)
    assert res.import_kw == pytest.approx(-20.0, abs=1e-6)
    assert res.welfare == pytest.approx(5.65, abs=1e-5)
    np.testing.assert_allclose(res.nodal_price_per_kwh, [0.05, 0.05, -0.02], atol=1e-5)


def test_unfilled_flexible_order_does_not_flow(hand_file: Path) -> None:
    """A V2G offer at bus 2 asking 0.14 is not needed: nothing changes from the hand case.

    Were it a physical position, its 40 kW would have to be curtailed away as well.
    """
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    res = _flexible_case(model, extra_side=1, extra_price=0.14)
    np.testing.assert_allclose(res.order_filled_kwh, [25.0, 5.0, 30.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 100.0], atol=1e-6)
    np.testing.assert_allclose(res.p_kw, [0.0, -80.0, 100.0], atol=1e-6)
    assert res.welfare == pytest.approx(4.65, abs=1e-5)
