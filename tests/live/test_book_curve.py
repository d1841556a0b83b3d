"""The anonymous book curve of ``market/result`` never shows a single order."""

import numpy as np

from scenarios.results.payloads import ORDERS_PER_LEVEL, _levels


def test_steps_pool_orders_at_their_marginal_price_by_hand() -> None:
    assert ORDERS_PER_LEVEL == 5
    price = np.array([0.30, 0.10, 0.25, 0.20, 0.29, 0.15, 0.28, 0.12, 0.22, 0.18, 0.11, 0.27])
    energy = np.arange(1.0, 13.0)  # 1 .. 12 kWh
    # bids by falling price: 0.30 0.29 0.28 0.27 0.25 | 0.22 0.20 0.18 0.15 0.12 0.11 0.10
    bids = _levels(energy, price, descending=True)
    assert bids == [[1 + 5 + 7 + 12 + 3, 0.25], [9 + 4 + 10 + 6 + 8 + 11 + 2, 0.10]]
    # asks by rising price: 0.10 0.11 0.12 0.15 0.18 | 0.20 0.22 0.25 0.27 0.28 0.29 0.30
    asks = _levels(energy, price, descending=False)
    assert asks == [[2 + 11 + 8 + 6 + 10, 0.18], [4 + 9 + 3 + 12 + 7 + 5 + 1, 0.30]]


def test_a_side_with_fewer_orders_than_a_step_shows_none() -> None:
    assert _levels(np.ones(4), np.array([0.1, 0.2, 0.3, 0.4]), descending=True) == []
