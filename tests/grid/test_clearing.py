"""Network-constrained clearing: a hand-solved 3-bus case and invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid import FeederModel, assign_households, load_feeder
from grid.background import rts_factor
from grid.highs_direct import stock_forced
from market.orders import Side

RETAIL, FEED_IN, H = 0.30, 0.05, 0.25
#: Allowed voltage band of the default model (0.95-1.05 with the 0.01 margin) [p.u.].
V_LO, V_HI = 0.96, 1.04
#: Line a of the hand feeder: 0.001 ohm at 0.4 kV on 1000 kVA = 0.00625 p.u.
R_A_PU = 0.001 / (0.4**2 * 1000.0 / 1000.0)


def line_b_limit_kw(p1_kw: float) -> float:
    """What line b (100 kVA, from bus 1) may carry when bus 1 injects ``p1_kw``, by hand.

    The thermal limit is on the current: ``|S_b| <= 100 kVA * V_1``, with ``V_1`` by the
    chord of ``sqrt(w)`` over the allowed band, ``V_LO + (w_1 - V_LO^2) / (V_LO + V_HI)``
    (conservative within the band, see grid.lindistflow). The feeder has no background,
    so the model is LinDistFlow: line a carries ``-(p1 + y)`` away from the slack when
    bus 2 exports ``y`` through line b, so ``w_1 = 1 + 2 r_a (p1 + y) / s_base``; solved
    for ``y = 100 * chord(w_1)``.
    """
    k = 2.0 * R_A_PU / 1000.0
    return (
        100.0
        * (V_LO + (1.0 + k * p1_kw - V_LO**2) / (V_LO + V_HI))
        / (1.0 - 100.0 * k / (V_LO + V_HI))
    )


#: Nodal price of bus 1 in the hand cases (see test_hand_solved_three_bus_case).
BUS1_PRICE = FEED_IN + (0.12 - 0.10 + FEED_IN) * (line_b_limit_kw(-79.0) - line_b_limit_kw(-80.0))


def hand_clear(model: FeederModel, p_fixed_kw: np.ndarray):
    return model.clear_constrained(
        p_fixed_kw,
        np.zeros(3),
        order_bus=np.array([2, 1, 1]),
        order_side=np.array([Side.SELL, Side.SELL, Side.BUY]),
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

    By hand (``y = line_b_limit_kw(-80) = 99.93 kW``, the current limit of line b):
    - line b carries bus 2's injection 200 - c2 <= y  ->  curtail c2 = 200 - y;
    - S1 can then deliver at most y = 24.98 kWh;
    - B1's 120 kW are matched with the cheapest sellers: S1 y, S2 120 - y = 5.02 kWh;
      S2 is marginal -> P2P price 0.12;
    - bus 1 nets 40 - 120 = -80 kW, bus 2 delivers y -> y - 80 kW exported at the slack;
    - nodal prices (value of one more kWh injected): slack, uncongested and exporting:
      the feed-in price 0.05; bus 2, behind the full line: one more kWh there must be
      curtailed and displaces 1 kWh of S1's P2P sale, worth 0.12 - 0.10 = 0.02 -> -0.02;
      bus 1: the feed-in price, plus what its kWh does to line b's limit: it raises V_1,
      so line b carries dy = y(-79) - y(-80) = 0.000625 kWh more of S1's energy, sold
      instead of S2's (0.02) and no longer curtailed (exported, 0.05): 0.05 + 0.07 dy;
    - welfare = P2P gains 0.25*30 - 0.10*yH - 0.12*(30 - yH) plus the export
      0.05 * (y - 80) * H (4.649).
    """
    f = load_feeder(str(hand_file), households=2)
    model = FeederModel(f, thermal_margin_frac=0.0)
    res = hand_clear(model, np.zeros(3))
    y = line_b_limit_kw(-80.0)
    assert y == pytest.approx(99.9324, abs=1e-4)
    np.testing.assert_allclose(res.order_filled_kwh, [y * H, 30.0 - y * H, 30.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 200.0 - y], atol=1e-6)
    np.testing.assert_allclose(res.nodal_price_per_kwh, [0.05, BUS1_PRICE, -0.02], atol=2e-6)
    assert res.p2p_price_per_kwh == pytest.approx(0.12, abs=1e-6)
    assert res.import_kw == pytest.approx(-(y - 80.0), abs=1e-6)
    welfare = 0.25 * 30 - 0.10 * y * H - 0.12 * (30 - y * H) + FEED_IN * (y - 80.0) * H
    assert res.welfare == pytest.approx(welfare, abs=1e-5)
    assert res.grid.violations == 0
    # loading is current over rated current: y / (100 kVA * V_1)
    v1 = np.sqrt(1.0 + 2.0 * R_A_PU * (-80.0 + y) / 1000.0)
    assert res.grid.loading_frac[1] == pytest.approx(y / (100.0 * v1), abs=1e-6)
    assert res.grid.loading_frac[1] < 1.0
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
        np.zeros(3), np.zeros(3), np.array([1, 2, 1, 2]),
        np.array([Side.SELL, Side.SELL, Side.BUY, Side.BUY]),
        np.array([5.0, 5.0, 4.0, 4.0]), np.array([0.10, 0.20, 0.15, 0.25]), np.full(3, 50.0),
        RETAIL, FEED_IN, H,
    )  # fmt: skip
    # asks 0.10, 0.20; bids 0.25, 0.15: 5 kWh of the 0.10 ask meet 4 kWh at 0.25 + 1 at 0.15
    np.testing.assert_allclose(res.order_filled_kwh, [5.0, 0.0, 1.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, 0.0, atol=1e-9)
    # 10 kWh sold, 8 bought: the feeder exports 8 kW, so energy is worth the feed-in price
    np.testing.assert_allclose(res.nodal_price_per_kwh, FEED_IN, atol=1e-5)


@pytest.mark.parametrize("side", [[True, False], [1, -1], ["sell", "buy"]])
def test_sides_other_than_side_codes_are_refused(hand_file: Path, side: list) -> None:
    """The book's sides are ``market.orders.Side`` codes: a bool mask, +1/-1 or strings
    (the encodings this module took before) are refused with the codes in the message."""
    model = _radial_model(load_feeder(str(hand_file), households=2))
    with pytest.raises(ValueError, match=r"Side codes \(BUY = 0, SELL = 1\)"):
        model.clear_constrained(
            np.zeros(3), np.zeros(3), np.array([1, 2]), np.array(side), np.array([5.0, 4.0]),
            np.array([0.10, 0.25]), np.full(3, 50.0), RETAIL, FEED_IN, H,
        )  # fmt: skip


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
    sell = rng.choice([-1, 1], n_ord) > 0
    side = np.where(sell, Side.SELL, Side.BUY)
    e = np.asarray(kwh)
    res = model.clear_constrained(
        np.zeros(f.n_bus), np.zeros(f.n_bus), bus, side, e, rng.uniform(0.08, 0.3, n_ord),
        np.bincount(bus[sell], weights=e[sell] / H, minlength=f.n_bus), RETAIL, FEED_IN, H,
    )  # fmt: skip
    fill = res.order_filled_kwh
    assert np.all(fill >= -1e-9) and np.all(fill <= e + 1e-9)
    assert fill[sell].sum() == pytest.approx(fill[~sell].sum(), abs=1e-6)
    # with no deferrable load a heavy buy may leave an undervoltage the model cannot fix:
    # then, and only then, the result says so
    assert (res.grid.violations == 0) == (res.residual_violations == 0)
    # curtailment only where it was allowed
    assert np.all(
        res.curtailed_kw <= np.bincount(bus[sell], weights=e[sell] / H, minlength=f.n_bus) + 1e-6
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
        order_side=np.array([Side.SELL, Side.SELL, Side.BUY, extra_side]),
        order_kwh=np.array([50.0, 10.0, 30.0, 10.0]),
        order_price_per_kwh=np.array([0.10, 0.12, 0.25, extra_price]),
        curtailable_kw=np.array([0.0, 0.0, 200.0]),
        retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN, interval_hours=H,
        order_flexible=np.array([False, False, False, True]),
    )  # fmt: skip


def test_flexible_charging_behind_a_full_line_relieves_it(hand_file: Path) -> None:
    """A battery at bus 2 bids 0.20 for 40 kW; it only charges as far as it is filled.

    By hand (``y = line_b_limit_kw(-80)`` as in the hand case): line b carries
    200 - c2 - xF <= y. Filling the battery (xF = 40 kW) lets curtailment fall to
    c2 = 160 - y, so S1 can deliver 40 + y kW; the buyers (B1 120 kW, battery 40 kW) need
    160 kW, the rest (120 - y kW) from S2 at 0.12. Bus 2 nets y, bus 1 40 - 120 = -80 kW:
    y - 80 kW exported. Welfare = 0.25*30 + 0.20*10 - 0.10*(40 + y)H - 0.12*(120 - y)H
    + 0.05*(y - 80)H (5.648).
    """
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    res = _flexible_case(model, extra_side=Side.BUY, extra_price=0.20)
    y = line_b_limit_kw(-80.0)
    np.testing.assert_allclose(
        res.order_filled_kwh, [(40 + y) * H, (120 - y) * H, 30.0, 10.0], atol=1e-6
    )
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 160.0 - y], atol=1e-6)
    np.testing.assert_allclose(res.p_kw, [0.0, -80.0, y], atol=1e-6)
    assert res.import_kw == pytest.approx(-(y - 80.0), abs=1e-6)
    welfare = 7.5 + 2.0 - 0.10 * (40 + y) * H - 0.12 * (120 - y) * H + FEED_IN * (y - 80) * H
    assert res.welfare == pytest.approx(welfare, abs=1e-5)
    np.testing.assert_allclose(res.nodal_price_per_kwh, [0.05, BUS1_PRICE, -0.02], atol=2e-6)


def test_unfilled_flexible_order_does_not_flow(hand_file: Path) -> None:
    """A V2G offer at bus 2 asking 0.14 is not needed: nothing changes from the hand case.

    Were it a physical position, its 40 kW would have to be curtailed away as well.
    """
    model = FeederModel(load_feeder(str(hand_file), households=2), thermal_margin_frac=0.0)
    res = _flexible_case(model, extra_side=Side.SELL, extra_price=0.14)
    y = line_b_limit_kw(-80.0)
    np.testing.assert_allclose(res.order_filled_kwh, [y * H, 30 - y * H, 30.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 200.0 - y], atol=1e-6)
    np.testing.assert_allclose(res.p_kw, [0.0, -80.0, y], atol=1e-6)
    welfare = 0.25 * 30 - 0.10 * y * H - 0.12 * (30 - y * H) + FEED_IN * (y - 80.0) * H
    assert res.welfare == pytest.approx(welfare, abs=1e-5)


def peak_day(*hours: float) -> pd.DatetimeIndex:
    """Local times of the IEEE RTS annual peak day (Tuesday of week 51: 22 Dec 2026)."""
    return pd.Timestamp("2026-12-22") + pd.to_timedelta(list(hours), unit="h")


def _random_book(f, n_ord: int, seed: int, hour: float, flex_share: float = 0.3):
    """A random book on ``f``: background at ``hour`` of the annual peak day (IEEE RTS),
    PV sellers, flexible storage orders."""
    factor = rts_factor(peak_day(hour))[0]
    rng = np.random.default_rng(seed)
    bus = assign_households(f, n_ord, seed)
    pv = rng.choice([-1, 1], n_ord) > 0
    side = np.where(pv, Side.SELL, Side.BUY)
    kwh = rng.uniform(0.05, 6.0, n_ord)
    price = rng.uniform(0.08, 0.29, n_ord)
    flex = rng.uniform(size=n_ord) < flex_share
    curt = np.bincount(bus[pv], weights=kwh[pv] / H * rng.uniform(1.0, 1.5, pv.sum()),
                       minlength=f.n_bus)  # fmt: skip
    defer = np.bincount(bus, weights=rng.uniform(0, 5, n_ord), minlength=f.n_bus)
    args = (f.background_injection_kw(factor), f.background_injection_kvar(factor), bus, side, kwh,
            price, curt, RETAIL, FEED_IN, H)  # fmt: skip
    return args, {"order_flexible": flex, "deferrable_kw": defer if seed % 2 else None}


@pytest.mark.skipif(stock_forced(), reason="the fast path is forced off")
def test_direct_updates_give_the_pyomo_clearing() -> None:
    """The fast path writes bounds, costs and right-hand sides straight into the HiGHS model
    that the persistent interface built and reads the solution back in bulk; it must return
    what Pyomo's own solve returns, including across a growth of the order-slot pools (the
    Pyomo path's) and of the order columns (the direct path's, which keeps the smallest
    pools and appends a column per order)."""
    f = load_feeder("ieee33", households=300)
    fast, pure = FeederModel(f), FeederModel(f, direct_updates=False)
    cases = [(40, 0, 12.0), (300, 1, 18.0), (300, 2, 12.5), (600, 3, 19.0), (600, 4, 3.0),
             (150, 5, 13.0), (600, 6, 18.5), (20, 7, 12.0)]  # fmt: skip
    congested = priced = 0
    for n_ord, seed, hour in cases:
        args, kw = _random_book(f, n_ord, seed, hour)
        a = fast.clear_constrained(*args, **kw)
        b = pure.clear_constrained(*args, **kw)
        np.testing.assert_allclose(a.order_filled_kwh, b.order_filled_kwh, atol=1e-7)
        np.testing.assert_allclose(a.curtailed_kw, b.curtailed_kw, atol=1e-7)
        np.testing.assert_allclose(a.deferred_kw, b.deferred_kw, atol=1e-7)
        np.testing.assert_allclose(a.nodal_price_per_kwh, b.nodal_price_per_kwh, atol=1e-7)
        assert a.p2p_price_per_kwh == pytest.approx(b.p2p_price_per_kwh, abs=1e-7)
        assert a.welfare == pytest.approx(b.welfare, abs=1e-7)
        assert a.import_kw == pytest.approx(b.import_kw, abs=1e-6)
        np.testing.assert_allclose(a.grid.v_pu, b.grid.v_pu, atol=1e-9)
        assert a.residual_violations == b.residual_violations
        assert a.penalty_priced == b.penalty_priced
        congested += int(a.deferred_kw.sum() + a.curtailed_kw.sum() > 1.0)
        priced += int(not a.penalty_priced and np.ptp(a.nodal_price_per_kwh) > 1e-3)
    assert congested >= 2  # the books do bind limits
    assert priced >= 1  # and some prices differ between buses
    assert fast._clearing._highs is not None and pure._clearing._highs is None
    assert pure._clearing.fixed_slots > 4  # the pools grew on the way
    assert fast._clearing.fixed_slots == 4  # the direct path appends columns instead
    assert fast._clearing._direct.n_order_cols >= 600


def test_recleared_grid_state_is_the_check_of_the_result() -> None:
    """``grid`` is read from the clearing model's own flows and voltages: it must equal the
    check of the resulting injections."""
    f = load_feeder("ieee33", households=300)
    model = FeederModel(f)
    for seed, hour in [(11, 12.0), (12, 18.0), (13, 19.5)]:
        args, kw = _random_book(f, 300, seed, hour)
        res = model.clear_constrained(*args, **kw)
        chk = model.check(res.p_kw, res.q_kvar, force_solve=True)
        np.testing.assert_allclose(res.grid.v_pu, chk.v_pu, atol=1e-7)
        np.testing.assert_allclose(res.grid.line_p_kw, chk.line_p_kw, atol=1e-4)
        assert res.grid.violations == chk.violations


def test_flexible_and_inflexible_orders_share_a_bus(hand_file: Path) -> None:
    """The pools of a bus keep the kinds apart: the hand case's flexible battery at bus 2
    next to an inflexible buy of the same size gives the same fills on both paths."""
    f = load_feeder(str(hand_file), households=2)
    for direct in (True, False):
        model = FeederModel(f, thermal_margin_frac=0.0, direct_updates=direct)
        for _ in range(2):  # the second call goes through the direct path
            res = model.clear_constrained(
                np.zeros(3), np.zeros(3),
                order_bus=np.array([2, 1, 1, 2, 2]),
                order_side=np.array([Side.SELL, Side.SELL, Side.BUY, Side.BUY, Side.BUY]),
                order_kwh=np.array([50.0, 10.0, 30.0, 10.0, 2.5]),
                order_price_per_kwh=np.array([0.10, 0.12, 0.25, 0.20, 0.01]),
                curtailable_kw=np.array([0.0, 0.0, 200.0]),
                retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN, interval_hours=H,
                order_flexible=np.array([False, False, False, True, False]),
            )  # fmt: skip
            # the inflexible 10 kW buy at bus 2 (bid 0.01) consumes anyway and relieves
            # the line by 10 kW: curtailment 150 - y, S1 delivers 50 + y kW; it is not
            # filled (y = line_b_limit_kw(-80) as in the hand case)
            y = line_b_limit_kw(-80.0)
            np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 150.0 - y], atol=1e-6)
            np.testing.assert_allclose(
                res.order_filled_kwh, [(50 + y) * H, (110 - y) * H, 30.0, 10.0, 0.0], atol=1e-6
            )
