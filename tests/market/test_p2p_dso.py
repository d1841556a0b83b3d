"""Network charges on bilateral trades (market.p2p_dso) on a hand-built congested feeder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.p2p import clear_p2p
from market.p2p_dso import DSORule, Sensitivity, negotiate_with_dso, pair_line_sensitivity
from market.p2p_pairs import P2PRule, order_pairs

# feeder 0 (slack) - line 0 - bus 1 - line 1 - bus 2; path[k, l]: line l between slack and k
PATH = np.array([[0, 0], [1, 0], [1, 1]], dtype=np.float64)
RULE = P2PRule(primal_tol_kwh=1e-7, dual_tol_per_kwh=1e-7, relative_tol=0.0, max_iterations=20000)


def book(limit_kwh: float):
    """One buyer at the transformer (bus 0, 10 kWh at 0.30), seller A at the far end
    (bus 2, 10 kWh at 0.05), seller B at bus 1 (6 kWh at 0.10). Without charges the buyer
    takes all 10 kWh from A, so line 1 carries 10 kWh towards the slack."""
    bq, bp = np.array([10.0]), np.array([0.30])
    sq, sp = np.array([10.0, 6.0]), np.array([0.05, 0.10])
    pairs = order_pairs(1, 2, None, None, RULE)
    buy_bus, sell_bus = np.array([0])[pairs.buy], np.array([2, 1])[pairs.sell]
    sens = pair_line_sensitivity(PATH, buy_bus, sell_bus)
    limit = np.array([100.0, limit_kwh])

    def check(trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flow = sens @ trade
        sign = np.where(flow >= 0, 1.0, -1.0)
        return np.abs(flow) / limit - 1.0, sign[:, None] * sens

    return bq, bp, sq, sp, pairs, sens, check


def test_sensitivity_is_the_path_difference() -> None:
    # buyer at 0, seller at 2: both lines carry the trade towards the slack (-1 each)
    s = pair_line_sensitivity(PATH, np.array([0, 2]), np.array([2, 1]))
    np.testing.assert_array_equal(s, [[-1.0, 0.0], [-1.0, 1.0]])


def test_charges_restore_the_line_limit() -> None:
    bq, bp, sq, sp, pairs, sens, check = book(limit_kwh=5.0)
    dso = DSORule(max_outer=10, step_per_kwh=0.04)
    out = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, dso)
    flow = sens @ out.trade_kwh
    assert out.restored and out.outer_iterations <= dso.max_outer
    assert abs(flow[1]) <= 5.0 * (1 + 1e-5)
    # only the pair with the far-end seller crosses line 1: the only one charged
    far = pairs.sell == 0
    assert out.network_charge_per_kwh[far][0] > 0
    assert np.all(out.network_charge_per_kwh[~far] == 0)
    # money: the DSO's revenue is the charges times the energy
    assert out.revenue == pytest.approx(
        float(np.sum(out.network_charge_per_kwh * out.trade_kwh)), abs=1e-6
    )
    # every trade is individually rational net of the charge
    t = out.trade_kwh > 0
    assert np.all(out.price_per_kwh[t] >= sp[pairs.sell[t]] - 1e-9)
    assert np.all(out.price_per_kwh[t] + out.network_charge_per_kwh[t] <= bp[0] + 1e-6)
    assert out.trade_kwh.sum() == pytest.approx(10.0, abs=1e-4)  # B fills the rest
    # by hand: violation 10/5 - 1 = 1, so λ_line1 = 0.04 · 1 / 1 = 0.04 after the first
    # outer iteration; A's kWh then nets 0.30 - 0.05 - 0.04 = 0.21 > B's 0.20, A still
    # sells 10, λ = 0.08; A then nets 0.17 < 0.20: B sells its 6 kWh, A the other 4
    # (line 1 carries 4 <= 5), at a charge of 0.08: revenue 0.32
    assert out.outer_iterations == 3
    np.testing.assert_allclose(out.element_price, [0.0, 0.08])
    np.testing.assert_allclose(out.trade_kwh[far], [4.0], atol=1e-4)
    assert out.revenue == pytest.approx(0.32, abs=1e-5)
    assert out.convergence.converged and out.convergence.iterations > 0


def test_sensitivity_rows_by_function() -> None:
    """The check may give the sensitivity as a function of the broken elements' rows:
    the same outcome as the full matrix."""
    bq, bp, sq, sp, pairs, _, check = book(limit_kwh=5.0)

    def by_rows(trade: np.ndarray) -> tuple[np.ndarray, Sensitivity]:
        violation, full = check(trade)
        return violation, lambda rows: full[rows]

    dso = DSORule(max_outer=10, step_per_kwh=0.04)
    a = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, dso)
    b = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, by_rows, dso)
    np.testing.assert_array_equal(a.trade_kwh, b.trade_kwh)
    assert a.outer_iterations == b.outer_iterations == 3


def test_a_violation_no_trade_loads_stops_at_once() -> None:
    """A broken element no pair loads (zero sensitivity): one outer iteration, unrestored."""
    bq, bp, sq, sp, pairs, _, _ = book(limit_kwh=5.0)

    def check(trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.5]), np.zeros((1, pairs.n))

    out = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, DSORule())
    assert out.outer_iterations == 1 and not out.restored and out.revenue == 0.0


def test_no_charges_when_nothing_breaks() -> None:
    bq, bp, sq, sp, pairs, _, check = book(limit_kwh=50.0)
    out = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, DSORule())
    assert out.outer_iterations == 1 and out.restored
    assert np.all(out.network_charge_per_kwh == 0) and out.revenue == 0.0
    m = clear_p2p(bq, bp, sq, sp, rule=RULE)  # identical to the plain negotiation
    assert m.convergence is not None
    np.testing.assert_allclose(out.trade_kwh[out.trade_kwh > 0], m.trade_kwh)


def test_bad_rule_names_the_field() -> None:
    with pytest.raises(ValueError, match="max_outer = 0"):
        DSORule(max_outer=0)


def test_stops_when_the_charged_trades_are_gone() -> None:
    """Line 1 (limit 5) also carries 6 kWh that no trade makes (a fixed injection), so no
    charge can restore it: the charges push A's trade to 0 and the loop stops there,
    unrestored, instead of running to the cap. By hand (step 0.04): A sells 10, flow 16,
    g = 2.2, λ = 0.088; A nets 0.25 − 0.088 < B's 0.20: B 6, A 4, flow 10, g = 1, λ rises
    by 0.04 per negotiation: 0.128, 0.168, 0.208, 0.248, 0.288 > 0.25, when A no longer
    trades (flow 6, g = 0.2): seven negotiations."""
    bq, bp, sq, sp, pairs, sens, _ = book(limit_kwh=5.0)

    def check(trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flow = sens @ trade - np.array([0.0, 6.0])  # 6 kWh towards the slack, untraded
        sign = np.where(flow >= 0, 1.0, -1.0)
        return np.abs(flow) / np.array([100.0, 5.0]) - 1.0, sign[:, None] * sens

    dso = DSORule(max_outer=50, step_per_kwh=0.04)
    out = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, dso)
    far = pairs.sell == 0
    assert not out.restored
    assert out.outer_iterations == 7
    assert out.trade_kwh[far][0] == 0.0
    np.testing.assert_allclose(out.element_price, [0.0, 0.288])


@st.composite
def chain_books(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Buyers and sellers on a four-bus chain (slack 0 - 1 - 2 - 3), limits on the lines."""
    n_b, n_s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kwh = st.floats(0.5, 10.0)
    bq = np.array(draw(st.lists(kwh, min_size=n_b, max_size=n_b)))
    sq = np.array(draw(st.lists(kwh, min_size=n_s, max_size=n_s)))
    bp = np.array(draw(st.lists(st.floats(0.15, 0.35), min_size=n_b, max_size=n_b)))
    sp = np.array(draw(st.lists(st.floats(0.02, 0.15), min_size=n_s, max_size=n_s)))
    bus = st.integers(0, 3)
    b_bus = np.array(draw(st.lists(bus, min_size=n_b, max_size=n_b)))
    s_bus = np.array(draw(st.lists(bus, min_size=n_s, max_size=n_s)))
    limit = np.array(draw(st.lists(st.floats(0.5, 30.0), min_size=3, max_size=3)))
    return bq, bp, sq, sp, b_bus, s_bus, limit


@settings(max_examples=40, deadline=None)
@given(chain_books())
def test_charges_are_rational_and_balance_money(book: tuple[np.ndarray, ...]) -> None:
    """Random books on a chain: the charges are ≥ 0 and only on pairs that load a broken
    line, the DSO's revenue is Σ charge × trade, every trade is within its seller's ask and
    its buyer's limit net of the charge (to the ADMM tolerance), a restored outcome keeps
    every limit, and the loop never exceeds its cap."""
    bq, bp, sq, sp, b_bus, s_bus, limit = book
    path = np.tril(np.ones((4, 3)), -1)  # line l feeds bus l + 1
    pairs = order_pairs(len(bq), len(sq), None, None, RULE)
    sens = pair_line_sensitivity(path, b_bus[pairs.buy], s_bus[pairs.sell])

    def check(trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flow = sens @ trade
        return np.abs(flow) / limit - 1.0, np.where(flow >= 0, 1.0, -1.0)[:, None] * sens

    dso = DSORule(max_outer=15, step_per_kwh=0.05)
    out = negotiate_with_dso(bq, bp, sq, sp, pairs, RULE, check, dso)
    assert 1 <= out.outer_iterations <= dso.max_outer
    charge, trade = out.network_charge_per_kwh, out.trade_kwh
    assert (charge >= 0).all()
    assert (charge[~(np.abs(sens) > 0).any(axis=0)] == 0).all()  # pairs that cross no line
    assert out.revenue == pytest.approx(float(charge @ trade), abs=1e-9)
    t = trade > 1e-4
    ask, bid = sp[pairs.sell[t]], bp[pairs.buy[t]]
    assert (out.price_per_kwh[t] >= ask - 1e-9).all()
    assert (out.price_per_kwh[t] + charge[t] <= bid + 1e-4).all()
    assert (np.bincount(pairs.buy, trade, len(bq)) <= bq + 1e-6).all()
    assert (np.bincount(pairs.sell, trade, len(sq)) <= sq + 1e-6).all()
    if out.restored:
        assert (np.abs(sens @ trade) <= limit * (1 + 1e-6)).all()
