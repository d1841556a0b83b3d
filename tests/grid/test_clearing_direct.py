"""The direct path's order columns (grid/clearing_direct.py): one HiGHS column per order,
copied from the Pyomo model's template slot, appended as the books grow; the same optimum
as the Pyomo model with its slot pools (the stock path), on hand-solved books with ties
and on random sequences of books that grow and shrink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grid import FeederModel, assign_households, load_feeder
from grid.clearing_model import MIN_POOL_SLOTS, ClearingModel, SlotUpdate, reserve_order_slots
from grid.highs_direct import stock_forced
from market.orders import Side

from .test_clearing import FEED_IN, RETAIL, H, _random_book, line_b_limit_kw

direct_only = pytest.mark.skipif(stock_forced(), reason="the direct path is forced off")

S, B = Side.SELL, Side.BUY


def assert_same(a, b, fills: bool = True) -> None:
    """Two clearings of one book agree (fills only where the optimum fixes them)."""
    if fills:
        np.testing.assert_allclose(a.order_filled_kwh, b.order_filled_kwh, atol=1e-7)
    np.testing.assert_allclose(a.curtailed_kw, b.curtailed_kw, atol=1e-7)
    np.testing.assert_allclose(a.deferred_kw, b.deferred_kw, atol=1e-7)
    np.testing.assert_allclose(a.p_kw, b.p_kw, atol=1e-7)
    np.testing.assert_allclose(a.nodal_price_per_kwh, b.nodal_price_per_kwh, atol=1e-7)
    assert a.p2p_price_per_kwh == pytest.approx(b.p2p_price_per_kwh, abs=1e-7, nan_ok=True)
    assert a.welfare == pytest.approx(b.welfare, abs=1e-7)
    assert a.import_kw == pytest.approx(b.import_kw, abs=1e-6)
    np.testing.assert_allclose(a.grid.v_pu, b.grid.v_pu, atol=1e-9)
    assert a.penalty_priced == b.penalty_priced


def tie_book(model: FeederModel):
    """The hand case of tests/grid/test_clearing.py with ties: S1 (bus 2, 0.10) as two
    orders of 30 and 20 kWh, B1 (bus 1, 0.25) as two of 10 and 20 kWh, S2 (bus 1, 0.12),
    and S3 (bus 1, 10 kWh) asking 0.10 like S1, one line away from it."""
    return model.clear_constrained(
        np.zeros(3), np.zeros(3),
        order_bus=np.array([2, 2, 1, 1, 1, 1]),
        order_side=np.array([S, S, S, B, B, S]),
        order_kwh=np.array([30.0, 20.0, 10.0, 10.0, 20.0, 10.0]),
        order_price_per_kwh=np.array([0.10, 0.10, 0.12, 0.25, 0.25, 0.10]),
        curtailable_kw=np.array([0.0, 0.0, 200.0]),
        retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN, interval_hours=H,
    )  # fmt: skip


@direct_only
def test_tied_book_clears_by_hand_on_both_paths(hand_file: Path) -> None:
    """By hand (``y = line_b_limit_kw(-40)``, the current limit of line b when bus 1 nets
    -40 kW, see below): bus 2's 200 kW export is curtailed to y whatever is sold; B1's
    120 kW are met by the sellers asking 0.10 (S1 at most y, S3 40 kW: 139.9 kW, enough),
    S2 (0.12) is not filled. S1 against S3 is a true tie (same ask, lossless network, both
    physical positions): only their sum, 30 kWh, is fixed. S1's two orders share S1's fill
    pro rata (3 : 2), B1's are filled. P2P price 0.10 (the marginal ask, with room on both
    sides); bus 1 nets 80 - 120 = -40 kW, so y - 40 kW are exported at feed-in:
    welfare 0.25 * 30 - 0.10 * 30 + 0.05 * (y - 40) * H."""
    f = load_feeder(str(hand_file), households=2)
    y = line_b_limit_kw(-40.0)
    out = []
    for direct in (True, False):
        model = FeederModel(f, thermal_margin_frac=0.0, direct_updates=direct)
        for _ in range(2):  # the second solve of the direct model is warm
            res = tie_book(model)
            fill = res.order_filled_kwh
            np.testing.assert_allclose(res.curtailed_kw, [0.0, 0.0, 200.0 - y], atol=1e-6)
            np.testing.assert_allclose(fill[[2, 3, 4]], [0.0, 10.0, 20.0], atol=1e-6)
            assert fill[0] + fill[1] + fill[5] == pytest.approx(30.0, abs=1e-6)
            assert fill[0] == pytest.approx(1.5 * fill[1], abs=1e-9)
            assert fill[0] + fill[1] <= y * H + 1e-6 and fill[5] <= 10.0 + 1e-9
            np.testing.assert_allclose(res.p_kw, [0.0, -40.0, y], atol=1e-6)
            assert res.p2p_price_per_kwh == pytest.approx(0.10, abs=1e-6)
            welfare = 0.25 * 30 - 0.10 * 30 + FEED_IN * (y - 40.0) * H
            assert res.welfare == pytest.approx(welfare, abs=1e-5)
            out.append(res)
        assert model._clearing.on_direct == direct
    assert_same(out[0], out[2], fills=False)


@direct_only
def test_order_columns_copy_the_template_slots_and_grow_with_the_books() -> None:
    """Every appended column has its template slot's entries (the link or balance row of
    its bus, and the P2P row, with Pyomo's coefficients); a (bus, kind) gets as many
    columns as the most orders of that kind the bus had in one book, and the Pyomo pools
    stay at their smallest size."""
    f = load_feeder("ieee33", households=200)
    model = FeederModel(f)
    counts = np.zeros(4 * f.n_bus, int)
    for n_ord, seed in [(50, 1), (200, 2), (30, 3)]:
        args, kw = _random_book(f, n_ord, seed, 12.0)
        model.clear_constrained(*args, **kw)
        bus, side, flex = args[2], args[3], kw["order_flexible"]
        key = bus * 4 + (side == B).astype(int) + 2 * flex.astype(int)
        counts = np.maximum(counts, np.bincount(key, minlength=len(counts)))
    cm = model._clearing
    d = cm._direct
    assert cm.fixed_slots == cm.flexible_slots == MIN_POOL_SLOTS
    # random prices are distinct: one column per order of the fullest book of each kind
    np.testing.assert_array_equal(d._count, counts)
    assert d.n_order_cols == counts.sum()
    a = d.highs.getLp().a_matrix_
    start, index, value = (np.asarray(v) for v in (a.start_, a.index_, a.value_))
    for key in np.flatnonzero(counts):
        t0, t1 = d._t_start[key], d._t_start[key + 1]
        assert t1 - t0 == 2  # a link or balance row, and the P2P row
        for col in d._table[key, : counts[key]]:
            s0, s1 = start[col], start[col + 1]
            np.testing.assert_array_equal(index[s0:s1], d._t_index[t0:t1])
            np.testing.assert_array_equal(value[s0:s1], d._t_value[t0:t1])


@direct_only
@pytest.mark.parametrize("seed", range(3))
def test_random_sequences_of_books_clear_as_on_the_stock_path(seed: int) -> None:
    """Randomized property: one direct model solving a sequence of books that grow and
    shrink (columns appended, columns of the previous book reset to size and cost 0) gives,
    book for book, what a stock model (Pyomo's solve on slot pools) gives. Prices come from
    a few levels, so many orders tie within and across buses."""
    f = load_feeder("ieee33", households=300)
    rng = np.random.default_rng(100 + seed)
    fast, stock = FeederModel(f), FeederModel(f, direct_updates=False)
    for _ in range(5):
        n_ord = int(rng.integers(5, 300))
        args, kw = _random_book(f, n_ord, int(rng.integers(1_000_000)), rng.uniform(0, 24))
        price = rng.choice([0.09, 0.12, 0.12, 0.2, 0.27], n_ord)
        args = (*args[:5], price, *args[6:])
        a = fast.clear_constrained(*args, **kw)
        b = stock.clear_constrained(*args, **kw)
        # the fills are not unique: orders of one side and price at different buses may be
        # interchangeable, and a bid equal to an ask trades at no gain, in any volume
        assert_same(a, b, fills=False)
    assert fast._clearing.on_direct and not stock._clearing.on_direct


def test_a_book_beyond_the_stock_pools_is_refused_clearly() -> None:
    """The stock path needs pools that hold the book (reserve_order_slots sizes them);
    a solve with more orders of one kind at a bus than its pool holds says so."""
    f = load_feeder("radial:6", households=6)
    model = FeederModel(f, direct_updates=False)
    reserve_order_slots(model, 1, 1)
    cm: ClearingModel = model._clearing
    zero = np.zeros(f.n_bus)
    rank = np.arange(MIN_POOL_SLOTS + 1)  # inflexible sells at bus 1 (key 4)
    up = SlotUpdate(np.full(len(rank), 4), rank, np.full(len(rank), 0.01), np.full(len(rank), 0.1),
                    zero, zero, zero, zero, zero, zero, 0.3, 0.1, 0.0, 0.6)  # fmt: skip
    with pytest.raises(ValueError, match=r"more order slots .* reserve_order_slots"):
        cm.solve(up)


@direct_only
def test_engine_sized_books_need_no_more_columns_than_orders() -> None:
    """10 households per bus on average: the direct model has one column per order of the
    fullest book per (bus, kind), where the slot pools would hold n_bus x 4 x the fullest
    bus's pool (rounded up to a power of two)."""
    f = load_feeder("ieee33", households=2000)
    bus = assign_households(f, 2000, 1)
    model = FeederModel(f)
    args, kw = _random_book(f, 2000, 1, 12.0)
    model.clear_constrained(*args, **kw)
    d = model._clearing._direct
    assert d.n_order_cols <= 2000
    per_bus = int(np.bincount(bus).max())
    assert d.n_order_cols < f.n_bus * 2 * per_bus  # what inflexible pools alone would hold


@pytest.mark.parametrize("seed", [0, 1])
def test_without_p2p_the_lp_has_no_order_columns(seed: int) -> None:
    """The no-P2P baseline (``p2p=False``) fills no order, so the orders need no LP column:
    its clearing equals the clearing of an empty book with the inflexible orders' energy
    as fixed injections and the same curtailable PV and deferrable load (with nothing
    filled the orders' link rows, ``c <= max(curtailable, sold)``, allow no more than the
    bounds); flexible orders do not flow. No order column is ever appended."""
    f = load_feeder("ieee33", households=300)
    args, kw = _random_book(f, 300, 20 + seed, 19.0 if seed else 12.0)
    p_fixed, q_fixed, bus, side, kwh, _, curt = args[:7]
    defer = kw["deferrable_kw"] if kw["deferrable_kw"] is not None else np.zeros(f.n_bus)
    model = FeederModel(f)
    res = model.clear_constrained(*args, **kw, p2p=False)
    assert (res.order_filled_kwh == 0).all()
    fixed = ~kw["order_flexible"]
    sold = np.bincount(bus[fixed & (side == S)], kwh[fixed & (side == S)] / H, f.n_bus)
    bought = np.bincount(bus[fixed & (side == B)], kwh[fixed & (side == B)] / H, f.n_bus)
    none = np.zeros(0)
    empty = FeederModel(f).clear_constrained(
        p_fixed + sold - bought, q_fixed, none.astype(int), none.astype(np.int8), none, none,
        curt, RETAIL, FEED_IN, H, deferrable_kw=defer,
    )  # fmt: skip
    np.testing.assert_allclose(res.curtailed_kw, empty.curtailed_kw, atol=1e-7)
    np.testing.assert_allclose(res.deferred_kw, empty.deferred_kw, atol=1e-7)
    np.testing.assert_allclose(res.p_kw, empty.p_kw, atol=1e-7)
    np.testing.assert_allclose(res.nodal_price_per_kwh, empty.nodal_price_per_kwh, atol=1e-7)
    assert res.welfare == pytest.approx(empty.welfare, abs=1e-7)
    assert res.residual_violations == empty.residual_violations
    np.testing.assert_allclose(res.grid.v_pu, empty.grid.v_pu, atol=1e-9)
    if model._clearing.on_direct:
        assert model._clearing._direct.n_order_cols == 0
