"""Settlement: hand-solved bills, imbalance, and the energy and money balance."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from market.settlement import (
    Tariffs,
    committed_net_kwh,
    settle,
    trade_payments,
)

TARIFFS = Tariffs(retail_price_per_kwh=0.30, feed_in_price_per_kwh=0.10, grid_fee_per_kwh=0.02)


def test_hand_solved_interval() -> None:
    # h0 sells 2 kWh to h1 at 0.20; h0 had 3 kWh surplus, h1 a 5 kWh deficit, h2 a 1 kWh one.
    paid, received = trade_payments(
        3,
        buyer=np.array([1]),
        seller=np.array([0]),
        energy_kwh=np.array([2.0]),
        price_per_kwh=np.array([0.20]),
        seller_price_per_kwh=np.array([0.20]),
    )
    net = np.array([3.0, -5.0, -1.0])
    bill = settle(
        metered_net_kwh=net,
        committed_net_kwh=net,
        bought_kwh=np.array([0.0, 2.0, 0.0]),
        sold_kwh=np.array([2.0, 0.0, 0.0]),
        p2p_paid=paid,
        p2p_received=received,
        tariffs=TARIFFS,
    )
    np.testing.assert_allclose(bill.grid_export_kwh, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(bill.grid_import_kwh, [0.0, 3.0, 1.0])
    # h0: -1 x 0.10 - 0.40 received; h1: 3 x 0.30 + 0.40 + 2 x 0.02 fee; h2: 0.30
    np.testing.assert_allclose(bill.cost, [-0.50, 1.34, 0.30])
    # the no-P2P baseline's bill: no trades, the whole net position with the utility
    net, none = np.array([3.0, -5.0, -1.0]), np.zeros(3)
    baseline = settle(net, net, none, none, none, none, TARIFFS)
    np.testing.assert_allclose(baseline.cost, [-0.30, 1.50, 0.30])


def test_different_buyer_and_seller_prices() -> None:
    paid, received = trade_payments(
        2, np.array([0]), np.array([1]), np.array([1.0]), np.array([0.25]), np.array([0.15])
    )
    assert (paid[0], received[1]) == pytest.approx((0.25, 0.15))


@settings(max_examples=100, deadline=None)
@given(
    net=arrays(np.float64, 6, elements=st.floats(-5, 5)),
    trades=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(0.01, 2), st.floats(0.1, 0.28)),
        max_size=8,
    ),
)
def test_money_balance(net, trades) -> None:
    """Σ cost = Σ import × retail − Σ export × feed-in + fees, whatever the trades."""
    buyer = np.array([t[0] for t in trades], dtype=np.int64)
    seller = np.array([t[1] for t in trades], dtype=np.int64)
    kwh = np.array([t[2] for t in trades])
    price = np.array([t[3] for t in trades])
    paid, received = trade_payments(6, buyer, seller, kwh, price, price)
    bought = np.bincount(buyer, kwh, 6)
    sold = np.bincount(seller, kwh, 6)
    bill = settle(net, net, bought, sold, paid, received, TARIFFS)
    np.testing.assert_array_equal(bill.imbalance_kwh, 0.0)
    utility = (
        bill.grid_import_kwh.sum() * TARIFFS.retail_price_per_kwh
        - bill.grid_export_kwh.sum() * TARIFFS.feed_in_price_per_kwh
    )
    assert bill.cost.sum() == pytest.approx(utility + bill.fees.sum(), abs=1e-9)
    # energy balance per household
    np.testing.assert_allclose(
        net, sold - bought + bill.grid_export_kwh - bill.grid_import_kwh, atol=1e-9
    )
    assert (np.minimum(bill.grid_import_kwh, bill.grid_export_kwh) == 0).all()


IMBALANCE = Tariffs(
    retail_price_per_kwh=0.30,
    feed_in_price_per_kwh=0.10,
    grid_fee_per_kwh=0.02,
    imbalance_shortfall_price_per_kwh=0.40,
    imbalance_surplus_price_per_kwh=0.05,
)


def test_reading_without_orders_is_billed() -> None:
    """1 kWh of demand, no orders: committed 0, imbalance −1 kWh, billed 1 × retail (the
    default shortfall price), imported 1 kWh."""
    zero = np.zeros(1)
    bill = settle(np.array([-1.0]), zero, zero, zero, zero, zero, TARIFFS)
    assert bill.imbalance_kwh[0] == pytest.approx(-1.0)
    assert bill.grid_import_kwh[0] == pytest.approx(1.0)
    assert bill.grid_export_kwh[0] == 0.0
    assert bill.cost[0] == pytest.approx(0.30)
    assert bill.imbalance_cost[0] == pytest.approx(0.30)
    # with a shortfall price of its own
    assert settle(np.array([-1.0]), zero, zero, zero, zero, zero, IMBALANCE).cost[0] == (
        pytest.approx(0.40)
    )
    # 2 kWh of PV, no orders: a surplus at the surplus price (default feed-in)
    bill = settle(np.array([2.0]), zero, zero, zero, zero, zero, TARIFFS)
    assert (bill.imbalance_kwh[0], bill.grid_export_kwh[0]) == pytest.approx((2.0, 2.0))
    assert bill.cost[0] == pytest.approx(-0.20)
    assert settle(np.array([2.0]), zero, zero, zero, zero, zero, IMBALANCE).cost[0] == (
        pytest.approx(-0.10)
    )


def test_sale_without_energy_is_a_shortfall() -> None:
    """h0 sells 5 kWh to h1 at 0.20 but generates nothing: the sale is paid (5 × 0.20 =
    1.00 received), the 5 kWh shortfall bought at the shortfall price (5 × 0.40 = 2.00):
    h0 pays 1.00 and imports 5 kWh. h1 used the 5 kWh it bought: 5 × 0.20 + 5 × 0.02 fee."""
    paid, received = trade_payments(
        2, np.array([1]), np.array([0]), np.array([5.0]), np.array([0.20]), np.array([0.20])
    )
    committed = committed_net_kwh(
        2,
        household=np.array([0, 1]),
        is_buy=np.array([False, True]),
        flexible=np.array([False, False]),
        energy_kwh=np.array([5.0, 5.0]),
        filled_kwh=np.array([5.0, 5.0]),
    )
    np.testing.assert_allclose(committed, [5.0, -5.0])
    metered = np.array([0.0, -5.0])
    bought, sold = np.array([0.0, 5.0]), np.array([5.0, 0.0])
    bill = settle(metered, committed, bought, sold, paid, received, IMBALANCE)
    np.testing.assert_allclose(bill.imbalance_kwh, [-5.0, 0.0])
    np.testing.assert_allclose(bill.imbalance_cost, [2.00, 0.0])
    np.testing.assert_allclose(bill.grid_import_kwh, [5.0, 0.0])
    np.testing.assert_allclose(bill.grid_export_kwh, [0.0, 0.0])
    np.testing.assert_allclose(bill.cost, [1.00, 1.10])
    # the identity with metered values: m = sold − bought + export − import
    np.testing.assert_allclose(
        metered, sold - bought + bill.grid_export_kwh - bill.grid_import_kwh, atol=1e-12
    )
    # and with the default prices the shortfall costs retail: −1.00 + 5 × 0.30 = 0.50
    assert settle(metered, committed, bought, sold, paid, received, TARIFFS).cost[0] == (
        pytest.approx(0.50)
    )


def test_committed_exchange_and_imbalance_are_settled_apart() -> None:
    """A net sell order of 5 kWh filled 3 peer to peer (2 kWh committed to the utility at
    feed-in) plus a flexible buy of 2 kWh filled 1; the meter shows 1 kWh less injected
    than committed. Committed net 5 − 1 = 4; metered 3; imbalance −1. Export metered:
    3 − 3 + 1 = 1 kWh (2 committed, less the 1 kWh shortfall).
    Cost: −2 × 0.10 (feed-in) + 1 × 0.40 (shortfall) − 3 × 0.20 + 1 × 0.20 + 1 × 0.02."""
    committed = committed_net_kwh(
        1,
        household=np.array([0, 0]),
        is_buy=np.array([False, True]),
        flexible=np.array([False, True]),
        energy_kwh=np.array([5.0, 2.0]),
        filled_kwh=np.array([3.0, 1.0]),
    )
    assert committed[0] == pytest.approx(4.0)
    bill = settle(
        np.array([3.0]),
        committed,
        bought_kwh=np.array([1.0]),
        sold_kwh=np.array([3.0]),
        p2p_paid=np.array([0.20]),
        p2p_received=np.array([0.60]),
        tariffs=IMBALANCE,
    )
    assert bill.imbalance_kwh[0] == pytest.approx(-1.0)
    assert (bill.grid_export_kwh[0], bill.grid_import_kwh[0]) == pytest.approx((1.0, 0.0))
    assert bill.cost[0] == pytest.approx(-0.20 + 0.40 - 0.60 + 0.20 + 0.02)


@settings(max_examples=100, deadline=None)
@given(
    metered=arrays(np.float64, 6, elements=st.floats(-5, 5)),
    committed=arrays(np.float64, 6, elements=st.floats(-5, 5)),
    trades=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(0.01, 2), st.floats(0.1, 0.28)),
        max_size=8,
    ),
)
def test_money_balance_with_imbalance(metered, committed, trades) -> None:
    """Σ cost = utility (committed exchange at retail / feed-in) + imbalance money + fees,
    and the metered identity per household, whatever the commitments."""
    buyer = np.array([t[0] for t in trades], dtype=np.int64)
    seller = np.array([t[1] for t in trades], dtype=np.int64)
    kwh = np.array([t[2] for t in trades])
    price = np.array([t[3] for t in trades])
    paid, received = trade_payments(6, buyer, seller, kwh, price, price)
    bought = np.bincount(buyer, kwh, 6)
    sold = np.bincount(seller, kwh, 6)
    bill = settle(metered, committed, bought, sold, paid, received, IMBALANCE)
    np.testing.assert_allclose(
        metered, sold - bought + bill.grid_export_kwh - bill.grid_import_kwh, atol=1e-9
    )
    np.testing.assert_allclose(bill.imbalance_kwh, metered - committed, atol=1e-12)
    c = committed - sold + bought  # the committed exchange with the utility
    utility = (np.maximum(-c, 0) * 0.30).sum() - (np.maximum(c, 0) * 0.10).sum()
    imbalance = np.maximum(-bill.imbalance_kwh, 0) * 0.40 - np.maximum(bill.imbalance_kwh, 0) * 0.05
    np.testing.assert_allclose(bill.imbalance_cost, imbalance, atol=1e-12)
    assert bill.cost.sum() == pytest.approx(utility + imbalance.sum() + bill.fees.sum(), abs=1e-9)
