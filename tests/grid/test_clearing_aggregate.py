"""Orders the clearing LP cannot tell apart share one column (grid.clearing.aggregate_orders);
the LP warm-started from the previous interval gives the cold solution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grid import FeederModel
from grid.clearing import aggregate_orders
from grid.feeders import Feeder
from market.orders import Side

RETAIL, FEED_IN, H = 0.30, 0.05, 0.25


def clear(model: FeederModel, book: pd.DataFrame, p_fixed: np.ndarray, curt: np.ndarray):
    n = model.feeder.n_bus
    return model.clear_constrained(
        p_fixed,
        np.zeros(n),
        order_bus=book.bus.to_numpy(),
        order_side=book.side.to_numpy(),
        order_kwh=book.kwh.to_numpy(),
        order_price_per_kwh=book.price.to_numpy(),
        curtailable_kw=curt,
        retail_price_per_kwh=RETAIL,
        feed_in_price_per_kwh=FEED_IN,
        interval_hours=H,
        deferrable_kw=np.zeros(n),
        order_flexible=book.flexible.to_numpy(),
    )


def merged(book: pd.DataFrame) -> pd.DataFrame:
    """The book with every set of indistinguishable orders as one order (by pandas)."""
    return book.groupby(["bus", "side", "flexible", "price"], as_index=False, sort=False).kwh.sum()


def assert_same(a, b) -> None:
    np.testing.assert_allclose(a.curtailed_kw, b.curtailed_kw, atol=1e-7)
    np.testing.assert_allclose(a.p_kw, b.p_kw, atol=1e-7)
    np.testing.assert_allclose(a.nodal_price_per_kwh, b.nodal_price_per_kwh, atol=1e-7)
    assert a.import_kw == pytest.approx(b.import_kw, abs=1e-7)
    assert a.p2p_price_per_kwh == pytest.approx(b.p2p_price_per_kwh, abs=1e-7, nan_ok=True)
    assert a.welfare == pytest.approx(b.welfare, abs=1e-7)


def test_aggregate_orders_groups_by_bus_side_flexibility_price() -> None:
    bus = np.array([3, 3, 3, 3, 5, 3])
    sell = np.array([True, True, False, True, True, True])
    flex = np.array([False, False, False, True, False, False])
    price = np.array([0.12, 0.12, 0.12, 0.12, 0.12, 0.13])
    kw = np.array([1.0, 3.0, 2.0, 4.0, 5.0, 6.0])
    group, a_bus, a_sell, a_flex, a_price, a_kw = aggregate_orders(bus, sell, flex, price, kw)
    # only orders 0 and 1 are alike: 5 columns, the first two orders share one of 4 kW
    assert len(a_kw) == 5 and group[0] == group[1]
    assert len(set(group.tolist())) == 5
    g = group[0]
    assert (a_bus[g], a_sell[g], a_flex[g], a_price[g], a_kw[g]) == (3, True, False, 0.12, 4.0)
    assert a_kw.sum() == kw.sum()


def test_tied_sellers_behind_a_full_line_are_filled_pro_rata(ieee33: Feeder) -> None:
    """Three tied sellers at the feeder's end (bus 17) with exports that break its voltage:
    the LP fills the column as one order of 12 kWh; 2, 4 and 6 kWh get 1/6, 1/3, 1/2 of it."""
    model = FeederModel(ieee33)
    n = ieee33.n_bus
    book = pd.DataFrame(
        {
            "bus": [17, 17, 17, 1],
            "side": [Side.SELL] * 3 + [Side.BUY],
            "kwh": [2.0, 4.0, 6.0, 200.0],
            "price": [0.10, 0.10, 0.10, 0.25],
            "flexible": [False] * 4,
        }
    )
    p_fixed = np.zeros(n)
    p_fixed[17] = 800.0  # unsold PV export at the far end
    curt = np.zeros(n)
    curt[17] = 900.0
    res = clear(model, book, p_fixed, curt)
    one = clear(FeederModel(ieee33), merged(book), p_fixed, curt)
    assert_same(res, one)
    total = one.order_filled_kwh[0]
    assert 0 < total
    np.testing.assert_allclose(res.order_filled_kwh[:3], total * np.array([2, 4, 6]) / 12, 1e-12)


def random_book(rng: np.random.Generator, n_bus: int, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bus": rng.integers(1, n_bus, n),
            "side": rng.choice([Side.SELL, Side.BUY], n),
            "kwh": rng.uniform(0.1, 20.0, n).round(2),
            # few price levels, so that many orders tie
            "price": rng.choice([0.06, 0.10, 0.10, 0.15, 0.28], n),
            "flexible": rng.random(n) < 0.2,
        }
    )


@pytest.mark.parametrize("seed", range(6))
def test_random_books_clear_as_their_merged_book(ieee33: Feeder, seed: int) -> None:
    """Randomized property: a book and the book with its ties merged (by pandas) give the
    same curtailment, injections, prices, welfare and traded energy, and the orders of a
    merged order are filled pro rata to their energy."""
    rng = np.random.default_rng(seed)
    n = ieee33.n_bus
    book = random_book(rng, n, 120)
    p_fixed = rng.uniform(0, 150, n) * (rng.random(n) < 0.5)
    curt = np.maximum(p_fixed, 0.0)
    res = clear(FeederModel(ieee33), book, p_fixed, curt)
    m = merged(book)
    one = clear(FeederModel(ieee33), m, p_fixed, curt)
    assert_same(res, one)
    # within a merged order every order is filled to the same fraction of its energy
    frac = book.assign(frac=res.order_filled_kwh / book.kwh)
    spread = frac.groupby(["bus", "side", "flexible", "price"]).frac.agg(np.ptp)
    assert spread.max() < 1e-9
    assert res.order_filled_kwh.sum() == pytest.approx(one.order_filled_kwh.sum(), abs=1e-6)


def test_warm_start_gives_the_cold_solution(ieee33: Feeder) -> None:
    """On the direct path HiGHS re-solves from the previous interval's basis (the model's
    structure is fixed, only bounds, costs and right-hand sides change): every interval of
    a sequence has the optimum of a fresh model (cold, from no basis): the same welfare,
    curtailment, injections and prices."""
    rng = np.random.default_rng(7)
    n = ieee33.n_bus
    warm = FeederModel(ieee33)
    for _ in range(5):
        book = random_book(rng, n, 60)
        p_fixed = rng.uniform(0, 200, n) * (rng.random(n) < 0.6)
        curt = np.maximum(p_fixed, 0.0)
        a = clear(warm, book, p_fixed, curt)
        b = clear(FeederModel(ieee33), book, p_fixed, curt)
        # the fills of single orders are not unique: orders of one side and price at
        # different buses are interchangeable where no limit separates them, and warm and
        # cold solves may end at different vertices of that optimal face
        assert_same(a, b)
