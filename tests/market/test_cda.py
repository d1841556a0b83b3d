"""Continuous double auction: price-time priority by hand, and zero-intelligence traders."""

from __future__ import annotations

import numpy as np
import pytest

from market import Matching, clear_cda, clear_uniform, clearing_quality


def _arr(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _trades(m: Matching) -> list[tuple[int, int, float, float]]:
    return [
        (int(b), int(s), float(q), float(p))
        for b, s, q, p in zip(
            m.trade_buy, m.trade_sell, m.trade_kwh, m.buyer_price_per_kwh, strict=True
        )
    ]


def test_hand_solved_session() -> None:
    # Buys b0 2 kWh @ 0.30, b1 1 kWh @ 0.20; sells s0 1 kWh @ 0.25, s1 2 kWh @ 0.15.
    # Arrival s0, b1, b0, s1 (positions: buys 0, 1; sells 2, 3):
    #   s0 rests; b1 (0.20 < 0.25) rests; b0 meets s0: 1 kWh at 0.25 (the resting ask),
    #   b0 rests with 1 kWh; s1 meets b0: 1 kWh at 0.30, then b1: 1 kWh at 0.20.
    book = (_arr([2.0, 1.0]), _arr([0.30, 0.20]), _arr([1.0, 2.0]), _arr([0.25, 0.15]))
    m = clear_cda(*book, arrival=[2, 1, 0, 3])
    assert _trades(m) == [(0, 0, 1.0, 0.25), (0, 1, 1.0, 0.30), (1, 1, 1.0, 0.20)]
    np.testing.assert_array_equal(m.seller_price_per_kwh, m.buyer_price_per_kwh)
    assert m.volume_kwh == 3.0 and m.price_per_kwh == pytest.approx(0.25, abs=1e-15)
    # Welfare 2(0.30) + 0.20 - 0.25 - 2(0.15) = 0.25 against the optimum 2(0.30 - 0.15) =
    # 0.30: the dear ask s0 sold before the cheap s1 arrived, and b1 (0.20) bought
    # although its bid is below s0's ask.
    q = clearing_quality(*book, m)
    assert q.welfare == pytest.approx(0.25, abs=1e-12)
    assert q.optimal_welfare == pytest.approx(0.30, abs=1e-12)
    assert q.efficiency == pytest.approx(0.25 / 0.30, abs=1e-12)
    assert q.budget_surplus == 0.0


def test_price_priority_then_time_priority() -> None:
    # Asks 0.22 (s0), 0.18 (s1), 0.18 (s2) rest in that order; a bid for 2.5 kWh at
    # 0.30 takes the cheapest first, the earlier of the equal asks first:
    # s1 1 kWh, s2 1 kWh, then s0 0.5 kWh, each at its own price.
    book = (_arr([2.5]), _arr([0.30]), _arr([1.0, 1.0, 1.0]), _arr([0.22, 0.18, 0.18]))
    m = clear_cda(*book, arrival=[1, 2, 3, 0])
    assert _trades(m) == [(0, 1, 1.0, 0.18), (0, 2, 1.0, 0.18), (0, 0, 0.5, 0.22)]
    np.testing.assert_array_equal(m.sell_filled_kwh, [0.5, 1.0, 1.0])
    # positions: 0 is the bid, 1 + j is ask s_j; with s2 arriving before s1, s2 goes first
    m = clear_cda(*book, arrival=[3, 2, 1, 0])
    assert _trades(m) == [(0, 2, 1.0, 0.18), (0, 1, 1.0, 0.18), (0, 0, 0.5, 0.22)]


def test_resting_bids_trade_at_their_price_best_first() -> None:
    # Bids 0.20 then 0.28 rest; an ask at 0.10 for 1.5 kWh hits 0.28 first, then 0.20.
    book = (_arr([1.0, 1.0]), _arr([0.20, 0.28]), _arr([1.5]), _arr([0.10]))
    m = clear_cda(*book, arrival=[0, 1, 2])
    assert _trades(m) == [(1, 0, 1.0, 0.28), (0, 0, 0.5, 0.20)]


def test_seeded_arrival_is_reproducible() -> None:
    rng = np.random.default_rng(9)
    book = (
        rng.uniform(0.5, 2, 40),
        rng.uniform(0.1, 0.3, 40),
        rng.uniform(0.5, 2, 40),
        rng.uniform(0.1, 0.3, 40),
    )
    a = clear_cda(*book, np.random.default_rng(5))
    b = clear_cda(*book, np.random.default_rng(5))
    c = clear_cda(*book, np.random.default_rng(6))
    assert _trades(a) == _trades(b)
    assert _trades(a) != _trades(c)


def test_needs_an_arrival_order() -> None:
    book = (_arr([1.0]), _arr([0.3]), _arr([1.0]), _arr([0.1]))
    with pytest.raises(ValueError, match="arrival order or a random generator"):
        clear_cda(*book)
    with pytest.raises(ValueError, match="arrival has 3 entries for 2 orders"):
        clear_cda(*book, arrival=[0, 1, 1])


# ------------------------------------------------- zero-intelligence traders (Gode & Sunder)

N_TRADERS = 10
ROUNDS = 50
BOOKS = 200


def _session(
    values: np.ndarray, costs: np.ndarray, rng: np.random.Generator, constrained: bool
) -> float:
    """Realised surplus [currency] of one trading period of unit traders in the CDA.

    Gode & Sunder's protocol: traders quote again and again during the period until
    they have traded their unit. Here a period is ``ROUNDS`` gate windows; in each,
    every trader still holding its unit submits a fresh random quote, the quotes
    arrive in random order, and quotes that did not trade are withdrawn. ZI-C
    (budget-constrained) buyers bid uniformly in [0, value], sellers ask uniformly in
    [cost, 1]; ZI-U (unconstrained) traders quote uniformly in [0, 1] whatever their
    value, and may trade at a loss. Surplus is measured with the true values.
    """
    buyer_left = np.ones(len(values), dtype=bool)
    seller_left = np.ones(len(costs), dtype=bool)
    surplus = 0.0
    for _ in range(ROUNDS):
        bi, si = np.flatnonzero(buyer_left), np.flatnonzero(seller_left)
        if not (bi.size and si.size):
            break
        if constrained:
            bid, ask = rng.uniform(0.0, values[bi]), rng.uniform(costs[si], 1.0)
        else:
            bid, ask = rng.uniform(0.0, 1.0, bi.size), rng.uniform(0.0, 1.0, si.size)
        m = clear_cda(np.ones(bi.size), bid, np.ones(si.size), ask, rng)
        bought, sold = bi[m.buy_filled_kwh > 0.5], si[m.sell_filled_kwh > 0.5]
        surplus += values[bought].sum() - costs[sold].sum()
        buyer_left[bought] = False
        seller_left[sold] = False
    return float(surplus)


def _efficiency(constrained: bool) -> tuple[float, np.ndarray]:
    """Total realised over total maximal surplus across BOOKS seeded symmetric books
    (values and costs of N_TRADERS unit traders per side, i.i.d. uniform on [0, 1])."""
    realised = np.empty(BOOKS)
    best = np.empty(BOOKS)
    for seed in range(BOOKS):
        rng = np.random.default_rng([1993, seed])
        values, costs = rng.uniform(0, 1, N_TRADERS), rng.uniform(0, 1, N_TRADERS)
        opt = clear_uniform(np.ones(N_TRADERS), values, np.ones(N_TRADERS), costs)
        best[seed] = values @ opt.buy_filled_kwh - costs @ opt.sell_filled_kwh
        realised[seed] = _session(values, costs, rng, constrained)
    return float(realised.sum() / best.sum()), realised / best


def test_zi_constrained_traders_reach_high_efficiency() -> None:
    """Gode & Sunder (1993, J. Polit. Econ. 101(1)) report 97-99.9 % allocative
    efficiency for ZI-C traders in a CDA; assert at least 90 % over 200 books."""
    total, per_book = _efficiency(constrained=True)
    assert total >= 0.90, total
    assert np.median(per_book) >= 0.90
    assert (per_book <= 1 + 1e-12).all()  # never above the optimum
    assert (per_book >= 0).all()  # ZI-C never trades at a loss


def test_zi_unconstrained_traders_do_clearly_worse() -> None:
    total_u, per_book_u = _efficiency(constrained=False)
    total_c, _ = _efficiency(constrained=True)
    assert total_u < 0.5, total_u
    assert total_u < total_c - 0.4
    assert (per_book_u < 0).any()  # loss-making trades destroy surplus
