"""Array core of the uniform-price double auction: hand-solved books and properties."""

from __future__ import annotations

import math
import random

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from market.uniform import Matching, clear_uniform


def _arr(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _book(
    buys: list[tuple[float, float]], sells: list[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(energy_kwh, price_per_kwh) pairs per side -> the four arrays of clear_uniform."""
    return (
        _arr([q for q, _ in buys]),
        _arr([p for _, p in buys]),
        _arr([q for q, _ in sells]),
        _arr([p for _, p in sells]),
    )


def _trades(m: Matching) -> list[tuple[int, int, float]]:
    return [
        (int(b), int(s), float(q))
        for b, s, q in zip(m.trade_buy, m.trade_sell, m.trade_kwh, strict=True)
    ]


def _assert_no_trade(m: Matching, n_buy: int, n_sell: int) -> None:
    assert math.isnan(m.price_per_kwh)
    assert m.volume_kwh == 0.0
    assert m.trade_buy.shape == m.trade_sell.shape == m.trade_kwh.shape == (0,)
    assert m.trade_buy.dtype == m.trade_sell.dtype == np.int64
    assert m.trade_kwh.dtype == np.float64
    np.testing.assert_array_equal(m.buy_filled_kwh, np.zeros(n_buy))
    np.testing.assert_array_equal(m.sell_filled_kwh, np.zeros(n_sell))


# ---------------------------------------------------------------- hand-solved books


def test_simple_crossing_book() -> None:
    # Bids 0.30 (5), 0.25 (3), 0.10 (4): demand breakpoints 5, 8, 12.
    # Asks 0.12 (4), 0.20 (3), 0.28 (5): supply breakpoints 4, 7, 12.
    # Segments (0,4] b0/s0, (4,5] b0/s1, (5,7] b1/s1 cross; (7,8] b1/s2 has
    # 0.25 < 0.28. Volume 7; marginal bid 0.25 (b1), marginal ask 0.20 (s1).
    m = clear_uniform(*_book([(5, 0.30), (3, 0.25), (4, 0.10)], [(4, 0.12), (3, 0.20), (5, 0.28)]))
    assert m.price_per_kwh == pytest.approx(0.225, abs=1e-15)
    assert m.volume_kwh == 7.0
    assert _trades(m) == [(0, 0, 4.0), (0, 1, 1.0), (1, 1, 2.0)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [5.0, 2.0, 0.0])
    np.testing.assert_array_equal(m.sell_filled_kwh, [4.0, 3.0, 0.0])


def test_input_order_does_not_matter_without_ties() -> None:
    # The book of test_simple_crossing_book with both sides listed in another order.
    m = clear_uniform(*_book([(4, 0.10), (5, 0.30), (3, 0.25)], [(5, 0.28), (3, 0.20), (4, 0.12)]))
    assert m.price_per_kwh == pytest.approx(0.225, abs=1e-15)
    assert m.volume_kwh == 7.0
    assert _trades(m) == [(1, 2, 4.0), (1, 1, 1.0), (2, 1, 2.0)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [0.0, 5.0, 2.0])
    np.testing.assert_array_equal(m.sell_filled_kwh, [0.0, 3.0, 4.0])


def test_partial_fill_of_the_marginal_ask() -> None:
    # One bid of 10 kWh at 0.30 takes the 4 kWh ask at 0.10 and 6 of the 10 kWh at
    # 0.20; price (0.30 + 0.20) / 2.
    m = clear_uniform(*_book([(10, 0.30)], [(4, 0.10), (10, 0.20)]))
    assert m.price_per_kwh == pytest.approx(0.25, abs=1e-15)
    assert m.volume_kwh == 10.0
    assert _trades(m) == [(0, 0, 4.0), (0, 1, 6.0)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [10.0])
    np.testing.assert_array_equal(m.sell_filled_kwh, [4.0, 6.0])


def test_partial_fill_of_the_marginal_bid() -> None:
    # Asks 0.05 (2) and 0.40 (9); bids 0.35 (1.5) and 0.30 (4). Only the cheap ask
    # crosses: bid 0 takes 1.5, bid 1 takes the remaining 0.5.
    m = clear_uniform(*_book([(1.5, 0.35), (4, 0.30)], [(2, 0.05), (9, 0.40)]))
    assert m.price_per_kwh == pytest.approx(0.175, abs=1e-15)
    assert m.volume_kwh == 2.0
    assert _trades(m) == [(0, 0, 1.5), (1, 0, 0.5)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [1.5, 0.5])
    np.testing.assert_array_equal(m.sell_filled_kwh, [2.0, 0.0])


def test_equal_prices_on_both_sides_trade() -> None:
    m = clear_uniform(*_book([(2, 0.20)], [(2, 0.20)]))
    assert m.price_per_kwh == 0.20
    assert m.volume_kwh == 2.0
    assert _trades(m) == [(0, 0, 2.0)]


def test_tie_at_the_margin_trades_the_zero_surplus_units() -> None:
    # Bids 0.25 (3), 0.20 (2); asks 0.15 (2), 0.20 (4). The last segment pairs the
    # 0.20 bid with the 0.20 ask: zero surplus, and it trades (largest volume).
    m = clear_uniform(*_book([(3, 0.25), (2, 0.20)], [(2, 0.15), (4, 0.20)]))
    assert m.price_per_kwh == 0.20
    assert m.volume_kwh == 5.0
    assert _trades(m) == [(0, 0, 2.0), (0, 1, 1.0), (1, 1, 2.0)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [3.0, 2.0])
    np.testing.assert_array_equal(m.sell_filled_kwh, [2.0, 3.0])


def test_equal_bids_are_served_in_input_order() -> None:
    # Bids 0.20 (2), 0.25 (2), 0.20 (2) against one ask of 3 at 0.10: the 0.25 bid
    # first, then the first of the two 0.20 bids gets the remaining 1 kWh.
    m = clear_uniform(*_book([(2, 0.20), (2, 0.25), (2, 0.20)], [(3, 0.10)]))
    assert m.price_per_kwh == pytest.approx(0.15, abs=1e-15)
    assert m.volume_kwh == 3.0
    assert _trades(m) == [(1, 0, 2.0), (0, 0, 1.0)]
    np.testing.assert_array_equal(m.buy_filled_kwh, [1.0, 2.0, 0.0])


def test_equal_asks_are_served_in_input_order() -> None:
    m = clear_uniform(*_book([(2, 0.30)], [(1, 0.10), (1, 0.10), (1, 0.10)]))
    assert m.price_per_kwh == pytest.approx(0.20, abs=1e-15)
    assert _trades(m) == [(0, 0, 1.0), (0, 1, 1.0)]
    np.testing.assert_array_equal(m.sell_filled_kwh, [1.0, 1.0, 0.0])


def test_many_equal_prices_keep_input_order() -> None:
    # 6 bids and 6 asks all at 0.2 (many ties on both sides, exercising the tie
    # repair of the unstable sort): orders are served strictly in input order.
    m = clear_uniform(np.full(6, 1.0), np.full(6, 0.2), np.full(6, 1.0), np.full(6, 0.2))
    assert m.price_per_kwh == 0.2
    assert m.volume_kwh == 6.0
    assert _trades(m) == [(i, i, 1.0) for i in range(6)]


def test_no_crossing() -> None:
    m = clear_uniform(*_book([(2, 0.10), (1, 0.15)], [(2, 0.20), (3, 0.16)]))
    _assert_no_trade(m, 2, 2)


def test_empty_book() -> None:
    _assert_no_trade(clear_uniform(_arr([]), _arr([]), _arr([]), _arr([])), 0, 0)


def test_one_sided_books() -> None:
    _assert_no_trade(clear_uniform(*_book([(2, 0.30), (1, 0.20)], [])), 2, 0)
    _assert_no_trade(clear_uniform(*_book([], [(2, 0.10)])), 0, 1)


def test_single_order() -> None:
    _assert_no_trade(clear_uniform(*_book([(2, 0.30)], [])), 1, 0)


def test_single_buy_and_single_sell() -> None:
    m = clear_uniform(*_book([(1.5, 0.30)], [(2, 0.10)]))
    assert m.price_per_kwh == pytest.approx(0.20, abs=1e-15)
    assert m.volume_kwh == 1.5
    assert _trades(m) == [(0, 0, 1.5)]
    np.testing.assert_array_equal(m.sell_filled_kwh, [1.5])


def test_negative_and_zero_prices() -> None:
    # A seller paying to get rid of energy (-0.05) and a buyer bidding 0.
    m = clear_uniform(*_book([(1, 0.0)], [(1, -0.05)]))
    assert m.price_per_kwh == pytest.approx(-0.025, abs=1e-15)
    assert _trades(m) == [(0, 0, 1.0)]


def test_rounding_slivers_are_not_trades() -> None:
    # 0.1 + 0.2 != 0.3 in floating point: the demand breakpoint 0.30000000000000004
    # and the supply breakpoint 0.3 leave a 5.6e-17 kWh sliver between them, which is
    # not a trade. The fills are exactly the sums of the trades.
    m = clear_uniform(*_book([(0.1, 0.30), (0.2, 0.30)], [(0.3, 0.10), (1.0, 0.20)]))
    assert len(m.trade_kwh) == 2
    assert (m.trade_buy.tolist(), m.trade_sell.tolist()) == ([0, 1], [0, 0])
    assert m.trade_kwh.min() > 1e-3
    assert m.volume_kwh == pytest.approx(0.3, rel=1e-15)
    assert m.price_per_kwh == pytest.approx(0.20, abs=1e-15)
    np.testing.assert_array_equal(m.sell_filled_kwh, [m.trade_kwh.sum(), 0.0])


# ------------------------------------------------- same function, other input kinds


def test_scalars_lists_and_series() -> None:
    expected = clear_uniform(_arr([2.0]), _arr([0.3]), _arr([1.0]), _arr([0.1]))
    assert _trades(expected) == [(0, 0, 1.0)]
    assert expected.price_per_kwh == pytest.approx(0.2, abs=1e-15)
    for args in (
        (2.0, 0.3, 1.0, 0.1),
        ([2.0], [0.3], [1.0], [0.1]),
        ([2], [0.3], [1], [0.1]),
        tuple(pd.Series([v], index=["x"]) for v in (2.0, 0.3, 1.0, 0.1)),
    ):
        m = clear_uniform(*args)
        assert _trades(m) == _trades(expected)
        assert m.price_per_kwh == expected.price_per_kwh
        assert m.buy_filled_kwh.shape == (1,)


def test_large_book_invariants() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    bq, sq = rng.lognormal(0.0, 1.0, n), rng.lognormal(0.0, 1.0, n)
    bp, sp = rng.uniform(0.08, 0.32, n), rng.uniform(0.08, 0.32, n)
    m = clear_uniform(bq, bp, sq, sp)
    _check_invariants(bq, bp, sq, sp, m)
    assert 0.08 < m.price_per_kwh < 0.32
    assert m.volume_kwh > 0.25 * bq.sum()


# ------------------------------------------------------------- properties


def _check_invariants(
    bq: np.ndarray, bp: np.ndarray, sq: np.ndarray, sp: np.ndarray, m: Matching
) -> None:
    """Invariants that hold for every book."""
    n_buy, n_sell = len(bq), len(sq)
    n_trades = len(m.trade_kwh)
    assert m.trade_buy.shape == m.trade_sell.shape == (n_trades,)
    assert m.trade_buy.dtype == m.trade_sell.dtype == np.int64
    assert n_trades <= max(n_buy + n_sell - 1, 0)
    if n_trades == 0:
        _assert_no_trade(m, n_buy, n_sell)
        return
    assert np.all(m.trade_kwh > 0.0)
    assert m.trade_buy.min() >= 0 and m.trade_buy.max() < n_buy
    assert m.trade_sell.min() >= 0 and m.trade_sell.max() < n_sell
    # Fills are exactly the per-order sums of the trades and within the order.
    np.testing.assert_array_equal(
        m.buy_filled_kwh, np.bincount(m.trade_buy, weights=m.trade_kwh, minlength=n_buy)
    )
    np.testing.assert_array_equal(
        m.sell_filled_kwh, np.bincount(m.trade_sell, weights=m.trade_kwh, minlength=n_sell)
    )
    # Trade lengths are differences of cumulative sums, so a fill can exceed its order
    # by rounding only: a few ulps of the traded total (the core's sliver tolerance).
    total = m.trade_kwh.sum()
    ulps = 64 * np.finfo(np.float64).eps * max(1.0, total)
    assert np.all(m.buy_filled_kwh <= bq + ulps)
    assert np.all(m.sell_filled_kwh <= sq + ulps)
    # Energy balance.
    assert m.volume_kwh == total
    assert m.buy_filled_kwh.sum() == pytest.approx(total, rel=1e-12)
    assert m.sell_filled_kwh.sum() == pytest.approx(total, rel=1e-12)
    # Individual rationality: no buyer pays above its bid, no seller gets below its ask.
    assert np.all(bp[m.trade_buy] >= m.price_per_kwh)
    assert np.all(sp[m.trade_sell] <= m.price_per_kwh)
    # The price is the midpoint of the lowest accepted bid and the highest accepted ask.
    lowest_bid = bp[m.trade_buy].min()
    highest_ask = sp[m.trade_sell].max()
    assert m.price_per_kwh == 0.5 * (lowest_bid + highest_ask)
    # Priority: bids above the lowest accepted one are filled completely and bids
    # below it not at all (likewise asks); nothing that still crosses is left over.
    tol = 1e-9 * max(1.0, total)
    assert np.all(np.abs(m.buy_filled_kwh - bq)[bp > lowest_bid] <= tol)
    assert np.all(m.buy_filled_kwh[bp < lowest_bid] == 0.0)
    assert np.all(np.abs(m.sell_filled_kwh - sq)[sp < highest_ask] <= tol)
    assert np.all(m.sell_filled_kwh[sp > highest_ask] == 0.0)
    open_bids = bp[bq - m.buy_filled_kwh > tol]
    open_asks = sp[sq - m.sell_filled_kwh > tol]
    if open_bids.size and open_asks.size:
        assert open_bids.max() < open_asks.min()


def _lp_optimum(
    bq: np.ndarray, bp: np.ndarray, sq: np.ndarray, sp: np.ndarray, bonus_per_kwh: float = 0.0
) -> tuple[float, float]:
    """Welfare-optimal allocation of the book by HiGHS: (welfare, volume).

    max sum_i (b_i + bonus) x_i - sum_j a_j y_j  s.t.  sum x = sum y, 0 <= x <= q.
    The reported welfare excludes the bonus.
    """
    n_buy, n_sell = len(bq), len(sq)
    if n_buy == 0 or n_sell == 0:
        return 0.0, 0.0
    res = linprog(
        c=np.concatenate((-(bp + bonus_per_kwh), sp)),
        A_eq=np.concatenate((np.ones(n_buy), -np.ones(n_sell)))[None, :],
        b_eq=[0.0],
        bounds=list(zip(np.zeros(n_buy + n_sell), np.concatenate((bq, sq)), strict=True)),
        method="highs",
    )
    assert res.status == 0, res.message
    x = res.x[:n_buy]
    y = res.x[n_buy:]
    return float(bp @ x - sp @ y), float(x.sum())


def _welfare(bp: np.ndarray, sp: np.ndarray, m: Matching) -> float:
    return float(bp @ m.buy_filled_kwh - sp @ m.sell_filled_kwh)


_energy = st.floats(min_value=1e-3, max_value=100.0, allow_nan=False, allow_subnormal=False)


@st.composite
def _grid_books(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Books with prices on a 1-cent grid (so ties are frequent and every non-zero
    bid-ask difference is at least 0.01) and arbitrary positive energies."""
    n_buy = draw(st.integers(0, 12))
    n_sell = draw(st.integers(0, 12))
    cents = st.integers(-5, 40)
    bq = draw(hnp.arrays(np.float64, n_buy, elements=_energy))
    sq = draw(hnp.arrays(np.float64, n_sell, elements=_energy))
    bp = draw(hnp.arrays(np.int64, n_buy, elements=cents)) / 100.0
    sp = draw(hnp.arrays(np.int64, n_sell, elements=cents)) / 100.0
    return bq, bp, sq, sp


@st.composite
def _float_books(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Books with arbitrary float prices."""
    n_buy = draw(st.integers(0, 15))
    n_sell = draw(st.integers(0, 15))
    price = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, allow_subnormal=False)
    bq = draw(hnp.arrays(np.float64, n_buy, elements=_energy))
    sq = draw(hnp.arrays(np.float64, n_sell, elements=_energy))
    bp = draw(hnp.arrays(np.float64, n_buy, elements=price))
    sp = draw(hnp.arrays(np.float64, n_sell, elements=price))
    return bq, bp, sq, sp


@settings(max_examples=300, deadline=None)
@given(_grid_books())
def test_welfare_and_volume_match_the_lp_optimum(book: tuple[np.ndarray, ...]) -> None:
    """Uniform clearing is welfare-optimal, and its volume is the largest volume of
    all welfare-optimal allocations.

    What is exactly true: the welfare optimum of the LP can be degenerate. Units
    whose bid equals their ask add zero welfare, so every volume between the smallest
    and the largest optimal volume is optimal and HiGHS may return any of them. The
    uniform auction trades zero-surplus units (a bid and an ask at equal price trade),
    so its volume equals the *largest* optimal volume. That one is computed exactly by
    the LP with every bid raised by a bonus smaller than the price grid (0.004 < 0.01):
    then zero-surplus pairs gain and pairs with a negative surplus (<= -0.01) still
    lose. Without zero-surplus marginal ties the optimum is unique and both volumes
    coincide.
    """
    bq, bp, sq, sp = book
    m = clear_uniform(bq, bp, sq, sp)
    _check_invariants(bq, bp, sq, sp, m)
    scale = 1.0 + float(np.abs(bp) @ bq + np.abs(sp) @ sq)
    lp_welfare, lp_volume = _lp_optimum(bq, bp, sq, sp)
    assert _welfare(bp, sp, m) == pytest.approx(lp_welfare, abs=1e-7 * scale)
    assert m.volume_kwh >= lp_volume - 1e-7 * (1.0 + bq.sum())
    _, max_volume = _lp_optimum(bq, bp, sq, sp, bonus_per_kwh=0.004)
    assert m.volume_kwh == pytest.approx(max_volume, abs=1e-7 * (1.0 + bq.sum()))


@settings(max_examples=200, deadline=None)
@given(_float_books())
def test_welfare_matches_the_lp_optimum_for_any_prices(book: tuple[np.ndarray, ...]) -> None:
    bq, bp, sq, sp = book
    m = clear_uniform(bq, bp, sq, sp)
    _check_invariants(bq, bp, sq, sp, m)
    # HiGHS stops within its dual-feasibility tolerance (1e-7 per unit of reduced cost),
    # so its objective may be off by up to that much per kWh of the bounds
    scale = 1.0 + float(np.abs(bp) @ bq + np.abs(sp) @ sq) + float(bq.sum() + sq.sum())
    lp_welfare, _ = _lp_optimum(bq, bp, sq, sp)
    assert _welfare(bp, sp, m) == pytest.approx(lp_welfare, abs=1e-7 * scale)


def _reference_matching(
    bq: np.ndarray, bp: np.ndarray, sq: np.ndarray, sp: np.ndarray
) -> tuple[list[tuple[int, int, float]], float]:
    """Textbook two-pointer matching, written independently as an oracle: walk the
    bids down and the asks up (ties by input position), trade the smaller remaining
    quantity while the bid is >= the ask."""
    bids = sorted(range(len(bq)), key=lambda i: (-bp[i], i))
    asks = sorted(range(len(sq)), key=lambda j: (sp[j], j))
    left_b = {i: float(bq[i]) for i in bids}
    left_s = {j: float(sq[j]) for j in asks}
    trades: list[tuple[int, int, float]] = []
    ib = js = 0
    while ib < len(bids) and js < len(asks) and bp[bids[ib]] >= sp[asks[js]]:
        i, j = bids[ib], asks[js]
        q = min(left_b[i], left_s[j])
        trades.append((i, j, q))
        left_b[i] -= q
        left_s[j] -= q
        if left_b[i] == 0.0:
            ib += 1
        if left_s[j] == 0.0:
            js += 1
    if not trades:
        return [], math.nan
    price = 0.5 * (bp[trades[-1][0]] + sp[trades[-1][1]])
    return trades, float(price)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10).flatmap(
        lambda n_buy: st.integers(0, 10).flatmap(
            lambda n_sell: st.tuples(
                hnp.arrays(np.int64, n_buy, elements=st.integers(1, 80)),
                hnp.arrays(np.int64, n_buy, elements=st.integers(0, 10)),
                hnp.arrays(np.int64, n_sell, elements=st.integers(1, 80)),
                hnp.arrays(np.int64, n_sell, elements=st.integers(0, 10)),
            )
        )
    )
)
def test_trades_match_a_reference_two_pointer_matching(book: tuple[np.ndarray, ...]) -> None:
    # Energies in eighths of a kWh are exact in binary floating point, so the
    # cumulative sums and the reference's subtractions are exact and the trade lists
    # must agree exactly. Prices on a coarse grid make ties common.
    bq, bp, sq, sp = (book[0] / 8.0, book[1] / 20.0, book[2] / 8.0, book[3] / 20.0)
    m = clear_uniform(bq, bp, sq, sp)
    trades, price = _reference_matching(bq, bp, sq, sp)
    assert _trades(m) == trades
    if trades:
        assert m.price_per_kwh == price
    else:
        assert math.isnan(m.price_per_kwh)


def test_large_book_with_many_ties_matches_the_reference() -> None:
    # Hundreds of orders on three price levels per side: small books are sorted
    # stably anyway, so this is what exercises the tie repair of the core's sort.
    rng = np.random.default_rng(3)
    n = 400
    bq = rng.integers(1, 40, n) / 8.0
    sq = rng.integers(1, 40, n) / 8.0
    bp = rng.choice([0.18, 0.20, 0.22], n)
    sp = rng.choice([0.17, 0.20, 0.23], n)
    m = clear_uniform(bq, bp, sq, sp)
    trades, price = _reference_matching(bq, bp, sq, sp)
    assert len(trades) > 100
    assert _trades(m) == trades
    assert m.price_per_kwh == price == 0.20
    _check_invariants(bq, bp, sq, sp, m)


@settings(max_examples=100, deadline=None)
@given(_grid_books(), st.randoms(use_true_random=False))
def test_deterministic_and_permutation_invariant(
    book: tuple[np.ndarray, ...], rnd: random.Random
) -> None:
    bq, bp, sq, sp = book
    first = clear_uniform(bq, bp, sq, sp)
    again = clear_uniform(bq.copy(), bp.copy(), sq.copy(), sp.copy())
    for name in Matching.__slots__:
        a, b = getattr(first, name), getattr(again, name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        else:
            assert a == b or (math.isnan(a) and math.isnan(b))
    # Listing the orders in another order changes who gets the tied units, but not
    # the price or the volume (both are functions of the supply and demand curves).
    pb = np.array(rnd.sample(range(len(bq)), len(bq)), dtype=np.int64)
    ps = np.array(rnd.sample(range(len(sq)), len(sq)), dtype=np.int64)
    shuffled = clear_uniform(bq[pb], bp[pb], sq[ps], sp[ps])
    assert shuffled.volume_kwh == pytest.approx(first.volume_kwh, rel=1e-12, abs=1e-12)
    if math.isnan(first.price_per_kwh):
        assert math.isnan(shuffled.price_per_kwh)
    else:
        assert shuffled.price_per_kwh == first.price_per_kwh
