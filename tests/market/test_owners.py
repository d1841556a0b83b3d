"""No agent trades with itself, in every mechanism: hand-solved books and properties."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import market
from market import ARRAY_MECHANISMS, clear_cda, clear_uniform
from market.owners import separate_owners

NAMES = ("uniform", "pay_as_bid", "mcafee", "cda")

# a: buy 1 kWh at 0.30 and sell 1 kWh at 0.10 (net buy and battery sell, say);
# b: buy 1 at 0.25; c: sell 1 at 0.12.
BOOK = (np.ones(2), np.array([0.30, 0.25]), np.ones(2), np.array([0.10, 0.12]))
BUY_OWNER, SELL_OWNER = np.array(["a", "b"]), np.array(["a", "c"])


def _pairs(m: market.Matching) -> list[tuple[str, str, float, float, float]]:
    return [
        (
            str(BUY_OWNER[b]),
            str(SELL_OWNER[s]),
            float(q),
            round(float(pb), 12),
            round(float(ps), 12),
        )
        for b, s, q, pb, ps in zip(
            m.trade_buy,
            m.trade_sell,
            m.trade_kwh,
            m.buyer_price_per_kwh,
            m.seller_price_per_kwh,
            strict=True,
        )
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # merit order pairs a's 0.30 bid with a's own 0.10 ask; swapped with b/c instead,
        # at the uniform price (0.25 + 0.12) / 2 = 0.185; the fills do not change
        ("uniform", [("a", "c", 1.0, 0.185, 0.185), ("b", "a", 1.0, 0.185, 0.185)]),
        # each order keeps its own price: a pays 0.30, c gets 0.12, b pays 0.25, a gets 0.10
        ("pay_as_bid", [("a", "c", 1.0, 0.30, 0.12), ("b", "a", 1.0, 0.25, 0.10)]),
    ],
)
def test_self_trade_is_re_paired_at_the_same_fills(name: str, expected: list) -> None:
    m = ARRAY_MECHANISMS[name](*BOOK, None, buy_owner=BUY_OWNER, sell_owner=SELL_OWNER)
    assert _pairs(m) == expected
    plain = ARRAY_MECHANISMS[name](*BOOK, None)
    assert ("a", "a") in [(b, s) for b, s, *_ in _pairs(plain)]  # what it was before
    np.testing.assert_array_equal(m.buy_filled_kwh, plain.buy_filled_kwh)
    np.testing.assert_array_equal(m.sell_filled_kwh, plain.sell_filled_kwh)


def test_cda_passes_over_its_own_resting_order() -> None:
    # a's ask 0.10 rests; a's bid 0.30 arrives and passes over it (rests too); c's ask
    # 0.12 meets a's bid at 0.30; b's bid 0.25 meets a's ask at 0.10.
    arrival = [2 + 0, 0, 2 + 1, 1]  # sell a, buy a, sell c, buy b
    m = clear_cda(*BOOK, arrival=arrival, buy_owner=BUY_OWNER, sell_owner=SELL_OWNER)
    assert _pairs(m) == [("a", "c", 1.0, 0.30, 0.30), ("b", "a", 1.0, 0.10, 0.10)]
    plain = clear_cda(*BOOK, arrival=arrival)
    assert _pairs(plain)[0][:2] == ("a", "a")


def test_an_agent_alone_on_both_sides_keeps_only_what_others_can_take() -> None:
    # a buys 3 at 0.30 and sells 2 at 0.10; b sells 1 at 0.12: volume 3, but a holds
    # 3 + 2 = 5 > 3 of it; the 2 kWh a would trade with itself cannot be re-paired and
    # stay unfilled on both of its sides: a buys 1 kWh from b.
    book = (np.array([3.0]), np.array([0.30]), np.array([2.0, 1.0]), np.array([0.10, 0.12]))
    m = clear_uniform(*book, buy_owner=np.array(["a"]), sell_owner=np.array(["a", "b"]))
    assert m.volume_kwh == 1.0 and m.trade_sell.tolist() == [1]
    np.testing.assert_array_equal(m.sell_filled_kwh, [0.0, 1.0])


def test_the_dataframe_api_never_pairs_an_agent_with_itself() -> None:
    orders = pd.DataFrame(
        {
            "agent_id": ["a", "b", "a", "c"],
            "side": ["buy", "buy", "sell", "sell"],
            "energy_kwh": [1.0, 1.0, 1.0, 1.0],
            "price_per_kwh": [0.30, 0.25, 0.10, 0.12],
        }
    )
    for name in NAMES:
        tr = market.clear(orders, mechanism=name).trades
        assert (tr.buyer_id != tr.seller_id).all(), name


@st.composite
def _owned_books(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n_buy, n_sell = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    energy = st.floats(1e-3, 20.0, allow_subnormal=False)
    bq = draw(hnp.arrays(np.float64, n_buy, elements=energy))
    sq = draw(hnp.arrays(np.float64, n_sell, elements=energy))
    bp = draw(hnp.arrays(np.int64, n_buy, elements=st.integers(5, 35))) / 100.0
    sp = draw(hnp.arrays(np.int64, n_sell, elements=st.integers(5, 35))) / 100.0
    bo = draw(hnp.arrays(np.int64, n_buy, elements=st.integers(0, 3)))
    so = draw(hnp.arrays(np.int64, n_sell, elements=st.integers(0, 3)))
    return bq, bp, sq, sp, bo, so


@settings(max_examples=300, deadline=None)
@given(_owned_books(), st.integers(0, 2**32 - 1))
def test_no_self_trade_and_individual_rationality(book: tuple, seed: int) -> None:
    """Every mechanism: no trade between two orders of one owner, every trade inside
    both orders' limits; the merit-order mechanisms keep every fill unless an owner
    holds more than the whole volume on its two sides together."""
    bq, bp, sq, sp, bo, so = book
    for name in NAMES:
        core = ARRAY_MECHANISMS[name]
        m = core(bq, bp, sq, sp, np.random.default_rng(seed), buy_owner=bo, sell_owner=so)
        assert (bo[m.trade_buy] != so[m.trade_sell]).all(), name
        assert (m.trade_kwh > 0).all()
        assert (m.buyer_price_per_kwh <= bp[m.trade_buy]).all(), name
        assert (m.seller_price_per_kwh >= sp[m.trade_sell]).all(), name
        assert (m.buy_filled_kwh <= bq + 1e-9).all() and (m.sell_filled_kwh <= sq + 1e-9).all()
        if name == "cda":
            continue
        plain = core(bq, bp, sq, sp, None)
        volume = plain.volume_kwh
        held = np.bincount(bo, plain.buy_filled_kwh, 4) + np.bincount(so, plain.sell_filled_kwh, 4)
        if (held <= volume * (1 + 1e-12)).all():
            np.testing.assert_allclose(m.buy_filled_kwh, plain.buy_filled_kwh, atol=1e-9)
            np.testing.assert_allclose(m.sell_filled_kwh, plain.sell_filled_kwh, atol=1e-9)
        else:  # only the one owner's excess goes: volume - (held - volume)
            excess = held.max() - volume
            assert m.volume_kwh == pytest.approx(volume - excess, abs=1e-9)


def test_separate_owners_without_self_trades_returns_the_input() -> None:
    tb, ts, tq = np.array([0, 1]), np.array([1, 0]), np.array([1.0, 2.0])
    out = separate_owners(tb, ts, tq, np.array([0, 1]), np.array([0, 1]))
    assert out[0] is tb and out[1] is ts and out[2] is tq
