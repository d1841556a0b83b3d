"""Energy-sharing allocation keys (market.sharing): hand-solved allocations of every key on
3–5 members, including the re-distribution rounds of ``equal`` and the leftovers of
``static``, priority groups, the trades' pairing, and the invariants (hypothesis) against an
independent round-by-round implementation of the re-distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import market
from market.mechanism_names import SHARING_KEYS as NAME_KEYS
from market.mechanism_names import all_names, split_mechanism
from market.mechanisms import array_mechanism
from market.sharing import SHARING_KEYS, SharingRule, allocate, clear_sharing, glass_fill


def _rounds(demand: np.ndarray, weight: np.ndarray, supply: float) -> np.ndarray:
    """The re-distribution as the contracts word it, one round at a time: offer what is
    left to the members still short, in proportion to their weights; each takes what it
    can use; repeat until nothing is left or nobody can take more."""
    got = np.zeros(len(demand))
    left = supply
    for _ in range(10 * len(demand) + 10):
        short = (demand - got > 1e-12) & (weight > 0)
        if left <= 1e-12 or not short.any():
            break
        offer = left * weight * short / (weight * short).sum()
        take = np.minimum(offer, demand - got)
        got += take
        left -= take.sum()
    return got


# --- hand-solved allocations -------------------------------------------------------------


def test_proportional_scales_every_demand_by_surplus_over_demand() -> None:
    # demands 2, 4, 6 (D = 12), surplus 6: half of each
    np.testing.assert_allclose(allocate(np.array([2.0, 4.0, 6.0]), 6.0, "proportional"), [1, 2, 3])
    # surplus 15 > D: every demand met, 3 kWh left for export
    got = allocate(np.array([2.0, 4.0, 6.0]), 15.0, "proportional")
    np.testing.assert_allclose(got, [2, 4, 6])


def test_equal_redistributes_what_a_member_cannot_use() -> None:
    # S = 9 over d = 1, 2, 6, 8: round 1 gives 2.25 each; members 1 and 2 use 1 and 2, the
    # 1.25 + 0.25 left go to the last two, 0.75 each: 3 and 3 (level 3)
    np.testing.assert_allclose(allocate(np.array([1.0, 2.0, 6.0, 8.0]), 9.0, "equal"), [1, 2, 3, 3])


def test_equal_three_rounds() -> None:
    # S = 10 over d = 1, 2.5, 3, 8: round 1: 2.5 each, member 1 uses 1 (1.5 left);
    # round 2: 0.75 to each of members 3 and 4, member 3 needs only 0.5 of it (0.25 left);
    # round 3: the 0.25 to member 4: 2.5 + 0.75 + 0.25 = 3.5
    got = allocate(np.array([1.0, 2.5, 3.0, 8.0]), 10.0, "equal")
    np.testing.assert_allclose(got, [1.0, 2.5, 3.0, 3.5])
    np.testing.assert_allclose(_rounds(np.array([1.0, 2.5, 3.0, 8.0]), np.ones(4), 10.0), got)


def test_static_leftover_is_reoffered_by_share() -> None:
    # shares 0.5, 0.3, 0.2 of S = 10 over d = 2, 6, 5: round 1 gives min(d, w S) = 2, 3, 2
    # (3 left); re-offered 0.3 : 0.2 to the two short members: +1.8, +1.2 -> 2, 4.8, 3.2
    got = allocate(np.array([2.0, 6.0, 5.0]), 10.0, "static", np.array([0.5, 0.3, 0.2]))
    np.testing.assert_allclose(got, [2.0, 4.8, 3.2])


def test_static_leftover_beyond_every_share_holders_demand_is_exported() -> None:
    # every member is served in round 1 (2 + 3 + 1 = 6 of 10): 4 kWh left for export
    got = allocate(np.array([2.0, 3.0, 1.0]), 10.0, "static", np.array([0.5, 0.3, 0.2]))
    np.testing.assert_allclose(got, [2.0, 3.0, 1.0])


def test_static_member_without_a_share_gets_nothing() -> None:
    # shares 0.5, 0.5, 0 of S = 4 over d = 1, 5, 5: round 1: 1, 2, 0; the 1 left goes to the
    # only short member with a share: 1, 3, 0
    got = allocate(np.array([1.0, 5.0, 5.0]), 4.0, "static", np.array([0.5, 0.5, 0.0]))
    np.testing.assert_allclose(got, [1.0, 3.0, 0.0])


def test_static_share_of_a_producer_is_reoffered() -> None:
    """Four members with 0.25 each; member 1 produces 8 kWh (so uses nothing), members 2–4
    demand 1, 4, 4: round 1 gives 2 each (member 2 uses 1); the producer's 2 and member 2's
    1 are re-offered to members 3 and 4 equally: 3.5 each."""
    rule = SharingRule(key="static", price_per_kwh=0.15, shares=np.full(4, 0.25))
    m = clear_sharing(
        np.array([1.0, 4.0, 4.0]), np.zeros(3), np.array([8.0]), np.zeros(1),
        buy_owner=np.array([1, 2, 3]), sell_owner=np.array([0]),
        rule=rule,
    )  # fmt: skip
    np.testing.assert_allclose(m.buy_filled_kwh, [1.0, 3.5, 3.5])
    np.testing.assert_allclose(m.sell_filled_kwh, [8.0])
    assert m.volume_kwh == pytest.approx(8.0)


def test_priority_serves_the_first_group_first() -> None:
    # school (d = 5) first, then two households (2, 3) from what is left of S = 6 (equal)
    got = allocate(np.array([5.0, 2.0, 3.0]), 6.0, "equal", priority=np.array([0, 1, 1]))
    np.testing.assert_allclose(got, [5.0, 0.5, 0.5])
    # without priority: level 2 for all three
    np.testing.assert_allclose(allocate(np.array([5.0, 2.0, 3.0]), 6.0, "equal"), [2, 2, 2])


def test_trades_pair_pro_rata_producers_along_cumulative_sums() -> None:
    """Sellers 10 and 5 (S = 15), buyers 2, 4, 6 (D = 12), proportional: every demand met,
    each seller shares 12/15 = 80 %: 8 and 4. Cumulative buyers 2, 6, 12 against sellers
    8, 12 give the trades (b0, s0, 2), (b1, s0, 4), (b2, s0, 2), (b2, s1, 4)."""
    rule = SharingRule(key="proportional", price_per_kwh=0.2)
    m = clear_sharing(
        np.array([2.0, 4.0, 6.0]), np.zeros(3), np.array([10.0, 5.0]), np.zeros(2),
        buy_owner=np.array([2, 3, 4]), sell_owner=np.array([0, 1]), rule=rule,
    )  # fmt: skip
    np.testing.assert_array_equal(m.trade_buy, [0, 1, 2, 2])
    np.testing.assert_array_equal(m.trade_sell, [0, 0, 0, 1])
    np.testing.assert_allclose(m.trade_kwh, [2.0, 4.0, 2.0, 4.0])
    np.testing.assert_allclose(m.sell_filled_kwh, [8.0, 4.0])
    np.testing.assert_allclose(m.buyer_price_per_kwh, 0.2)
    np.testing.assert_allclose(m.seller_price_per_kwh, 0.2)
    assert m.price_per_kwh == pytest.approx(0.2) and m.market_surplus == pytest.approx(0.0)


def test_nothing_to_share() -> None:
    rule = SharingRule(price_per_kwh=0.2)
    m = clear_sharing(np.array([2.0]), np.zeros(1), np.zeros(0), np.zeros(0), rule=rule)
    assert m.volume_kwh == 0 and len(m.trade_kwh) == 0 and np.isnan(m.price_per_kwh)


def test_names_and_registries() -> None:
    assert SHARING_KEYS == NAME_KEYS == ("static", "proportional", "equal")
    assert split_mechanism("sharing:equal") == ("sharing", "equal")
    assert split_mechanism("uniform") == ("uniform", None)
    for bad in ("sharing:vickrey", "uniform:equal", "vickrey"):
        with pytest.raises(ValueError, match="is not one of"):
            split_mechanism(bad)
    assert {"sharing:static", "sharing:proportional", "sharing:equal"} <= set(all_names())
    rule = SharingRule(key="equal", price_per_kwh=0.1)
    core = array_mechanism("sharing", sharing=rule)
    m = core(np.array([1.0, 3.0]), np.zeros(2), np.array([3.0]), np.zeros(1), None)
    np.testing.assert_allclose(m.buy_filled_kwh, [1.0, 2.0])
    with pytest.raises(ValueError, match="needs the members' shares"):
        SharingRule(key="static")


def test_dataframe_api_shares_at_the_books_mean_limit_price() -> None:
    orders = pd.DataFrame(
        {
            "agent_id": ["a", "b", "c"],
            "side": ["buy", "buy", "sell"],
            "energy_kwh": [2.0, 6.0, 4.0],
            "price_per_kwh": [0.30, 0.20, 0.10],
        }
    )
    res = market.clear(orders, mechanism="sharing")
    # proportional: 4 of 8 kWh demanded, half of each; price (0.3 + 0.2 + 0.1) / 3
    np.testing.assert_allclose(res.filled_kwh, [1.0, 3.0, 4.0])
    assert res.price_per_kwh == pytest.approx(0.2)


# --- invariants ---------------------------------------------------------------------------

energies = st.lists(st.floats(0.001, 20.0), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    energies,
    energies,
    st.sampled_from(SHARING_KEYS),
    st.lists(st.one_of(st.just(0.0), st.floats(0.01, 1.0)), min_size=12, max_size=12),
    st.booleans(),
)
def test_invariants(
    demand: list[float], surplus: list[float], key: str, w: list[float], prioritise: bool
) -> None:
    d, s = np.array(demand), np.array(surplus)
    nb, ns = len(d), len(s)
    shares = np.array(w[:nb] + [0.0] * ns)  # members: buyers 0 … nb-1, sellers after
    priority = np.arange(nb + ns) % 2 if prioritise else None
    rule = SharingRule(key=key, price_per_kwh=0.15, shares=shares, priority=priority)
    bo, so = np.arange(nb), nb + np.arange(ns)
    m = clear_sharing(d, np.zeros(nb), s, np.zeros(ns), buy_owner=bo, sell_owner=so, rule=rule)
    supply = s.sum()
    tol = 1e-9 * max(1.0, supply, d.sum())
    # no member allocated more than it consumes; no more shared than generated
    assert (m.buy_filled_kwh <= d + tol).all()
    assert m.volume_kwh <= supply + tol
    # every producer shares the same fraction of its surplus
    np.testing.assert_allclose(m.sell_filled_kwh, s * m.volume_kwh / supply, atol=tol)
    # the allocation is the round-by-round re-distribution, group after group
    weight = {"proportional": d, "equal": np.ones(nb), "static": shares[:nb]}[key]
    expect, left = np.zeros(nb), supply
    for group in [np.arange(nb)] if priority is None else [bo[bo % 2 == 0], bo[bo % 2 == 1]]:
        expect[group] = _rounds(d[group], weight[group], left)
        left -= expect[group].sum()
    np.testing.assert_allclose(m.buy_filled_kwh, expect, atol=1e-6 * max(1.0, supply))
    if key != "static" and priority is None:
        assert m.volume_kwh == pytest.approx(min(supply, d.sum()), rel=1e-9, abs=tol)
    # at most n_buy + n_sell - 1 trades, all > 0, at the internal price, no self-trade
    assert len(m.trade_kwh) <= nb + ns - 1
    assert (m.trade_kwh > 0).all()
    assert (bo[m.trade_buy] != so[m.trade_sell]).all()
    assert (m.buyer_price_per_kwh == 0.15).all() and m.market_surplus == pytest.approx(0.0)


@settings(max_examples=200, deadline=None)
@given(energies, st.floats(0.0, 100.0))
def test_glass_fill_level(demand: list[float], supply: float) -> None:
    """Equal shares: every member not fully served gets the same, and at least as much as
    anybody (the glass-filling level)."""
    d = np.array(demand)
    got = glass_fill(d, np.ones(len(d)), supply)
    short = got < d - 1e-9
    if short.any():
        assert np.ptp(got[short]) <= 1e-9 * max(1.0, supply)
        assert got.max() <= got[short].max() + 1e-9
        assert got.sum() == pytest.approx(supply, rel=1e-9, abs=1e-12)
    else:
        np.testing.assert_allclose(got, d)


def test_tiny_weights_do_not_overflow() -> None:
    # the level d / w of a 5e-324 weight is inf in float64; the allocation stays exact
    np.testing.assert_allclose(glass_fill(np.array([1.0]), np.array([5e-324]), 0.5), [0.5])
    got = glass_fill(np.array([1.0, 1.0]), np.array([1.0, 5e-324]), 1.5)
    np.testing.assert_allclose(got, [1.0, 0.5])
