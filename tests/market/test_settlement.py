"""Settlement: hand-solved bills and the money balance."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from market.settlement import Tariffs, settle, trade_payments

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
    bill = settle(
        net_kwh=np.array([3.0, -5.0, -1.0]),
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
    bill = settle(net, bought, sold, paid, received, TARIFFS)
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
