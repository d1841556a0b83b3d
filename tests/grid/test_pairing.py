"""Pairing the fills of the network-constrained clearing: properties over random books.

The constrained clearing can fill any order (it balances P2P volume and relieves the
feeder); ``pair_fills`` must turn those fills into trades that respect every order's
own limit, never pair a household with itself, and lose no volume that some
individually rational pairing could trade.
"""

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from grid.pairing import pair_fills
from market.orders import OrderKind, Orders

N_HH = 6
#: two device codes besides the net position (battery and EV in a run)
KINDS = [OrderKind.NET, 1, 2]


@st.composite
def _stressed(draw: st.DrawFn, one_side: bool = False) -> tuple[Orders, np.ndarray, float]:
    """Orders (at most one per household, side and kind), arbitrary fills of them (the
    network may force any), prices on a 1-cent grid, and a P2P dual price."""
    keys = draw(
        st.lists(
            st.tuples(
                st.integers(0, N_HH - 1),
                st.booleans(),
                st.sampled_from(KINDS),
            ),
            min_size=1,
            max_size=14,
            unique=True,
        )
    )
    if one_side:  # each household on one side only (no self-supply)
        side_of = draw(hnp.arrays(bool, N_HH))
        keys = list(dict.fromkeys((h, bool(side_of[h]), k) for h, _, k in keys))
    n = len(keys)
    household = np.array([k[0] for k in keys])
    is_buy = np.array([k[1] for k in keys])
    kind = np.array([k[2] for k in keys], np.int8)
    energy = draw(hnp.arrays(np.float64, n, elements=st.floats(0.01, 5.0)))
    frac = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.3, 1.0])))
    price = draw(hnp.arrays(np.int64, n, elements=st.integers(5, 35))) / 100.0
    dual = draw(st.sampled_from([0.02, 0.12, 0.2, 0.4, float("nan")]))
    return Orders.build(household, is_buy, energy, price, kind), energy * frac, dual


def _limit(plan: Orders, household: np.ndarray, buy: bool, kind: np.ndarray) -> np.ndarray:
    """The limit of the order (household, side, kind) of each trade."""
    key = {
        (int(h), bool(b), int(k)): p
        for h, b, k, p in zip(
            plan.household, plan.is_buy, plan.kind, plan.price_per_kwh, strict=True
        )
    }
    return np.array([key[(int(h), buy, int(k))] for h, k in zip(household, kind, strict=True)])


@settings(max_examples=300, deadline=None)
@given(_stressed())
def test_every_trade_respects_its_own_orders_limits(case) -> None:
    plan, filled, dual = case  # the orders, their fills, the P2P dual
    p = pair_fills(plan, filled, dual, N_HH)
    assert (p.energy_kwh > 0).all()
    assert (p.buyer != p.seller).all()
    bid = _limit(plan, p.buyer, True, p.buy_kind)
    ask = _limit(plan, p.seller, False, p.sell_kind)
    assert (p.price_per_kwh <= bid).all() and (p.price_per_kwh >= ask).all()
    np.testing.assert_array_equal(p.price_per_kwh, p.seller_price_per_kwh)
    # no order trades more than the clearing filled it
    for side, who, kinds in ((True, p.buyer, p.buy_kind), (False, p.seller, p.sell_kind)):
        for h, b, k, f in zip(plan.household, plan.is_buy, plan.kind, filled, strict=True):
            if b == side:
                traded = p.energy_kwh[(who == h) & (kinds == k)].sum()
                assert traded <= f + 1e-9


@settings(max_examples=200, deadline=None)
@given(_stressed(one_side=True))
def test_the_paired_volume_is_the_most_any_rational_pairing_trades(case) -> None:
    """Against an LP over every (buy, sell) pair whose bid >= ask: max sum x, each order's
    trades within its fill."""
    plan, filled, dual = case  # the orders, their fills, the P2P dual
    p = pair_fills(plan, filled, dual, N_HH)
    buy = np.flatnonzero(plan.is_buy & (filled > 0))
    sell = np.flatnonzero(~plan.is_buy & (filled > 0))
    pairs = [(i, j) for i in buy for j in sell if plan.price_per_kwh[i] >= plan.price_per_kwh[j]]
    if not pairs:
        assert p.energy_kwh.sum() == 0.0
        return
    rows = np.zeros((len(filled), len(pairs)))
    for c, (i, j) in enumerate(pairs):
        rows[i, c] = rows[j, c] = 1.0
    lp = linprog(-np.ones(len(pairs)), A_ub=rows, b_ub=filled, bounds=(0, None), method="highs")
    assert lp.status == 0
    assert abs(p.energy_kwh.sum() + lp.fun) < 1e-9
