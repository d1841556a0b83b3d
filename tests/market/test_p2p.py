"""The bilateral P2P market (consensus ADMM, market.p2p) against hand-solved books, the
central LP (HiGHS, market.p2p_central) and the uniform auction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sps
from hypothesis import given, settings
from hypothesis import strategies as st

import market
from market.p2p import Convergence, cap_project, clear_p2p, pairs_settled
from market.p2p_central import solve_central
from market.p2p_pairs import P2PRule, order_pairs
from market.uniform import clear_uniform

EPS_REL = 2e-3
"""The documented bound (README, market.p2p): the ADMM welfare is within
``EPS_REL · W* + primal_tol_kwh · (n_buy + n_sell) · max margin`` of the central optimum
``W*`` (the second term: every order may be off by the primal tolerance)."""


def eps_abs(bp: np.ndarray, sp: np.ndarray, rule: P2PRule) -> float:
    return rule.primal_tol_kwh * (len(bp) + len(sp)) * max(float(bp.max() - sp.min()), 0.0)


BUYERS, SELLERS = np.array([0, 1]), np.array([2, 3])


def two_by_two_rule() -> P2PRule:
    """Households 0, 1 buy, 2, 3 sell; the pair costs (distance_per_kwh = 1 on a
    distance table that is the cost itself): B1–S1 0.06, B1–S2 0.01, B2–S1 0.02,
    B2–S2 0.07 [EUR/kWh]. Absolute tolerances only (``relative_tol = 0``): the hand-solved
    trades and prices are asserted to 1e-4."""
    d = np.zeros((4, 4))
    d[0, 2], d[0, 3], d[1, 2], d[1, 3] = 0.06, 0.01, 0.02, 0.07
    return P2PRule(
        household_bus=np.arange(4), bus_distance=d + d.T, distance_per_kwh=1.0,
        primal_tol_kwh=1e-6, dual_tol_per_kwh=1e-6, relative_tol=0.0, max_iterations=5000,
    )  # fmt: skip


def trades_of(m: market.Matching) -> dict[tuple[int, int], tuple[float, float]]:
    return {
        (int(b), int(s)): (float(q), float(p))
        for b, s, q, p in zip(
            m.trade_buy, m.trade_sell, m.trade_kwh, m.buyer_price_per_kwh, strict=True
        )
    }


def test_two_buyers_two_sellers_excess_supply() -> None:
    """B1 2 kWh at 0.30, B2 2 kWh at 0.28; S1 3 kWh at 0.10, S2 3 kWh at 0.12. Net of
    the costs the pairs are worth B1–S1 0.14, B1–S2 0.17, B2–S1 0.16, B2–S2 0.09: the
    optimum is B1←S2 2 kWh and B2←S1 2 kWh (welfare 0.34 + 0.32 = 0.66; moving δ to the
    other diagonal changes it by δ(0.14 + 0.09 − 0.17 − 0.16) < 0). Both sellers keep
    spare energy, so each trade's price is its seller's ask: 0.12 and 0.10 (where the
    uniform auction would route S1's cheap energy to both and price every kWh alike)."""
    m = clear_p2p(
        [2.0, 2.0], [0.30, 0.28], [3.0, 3.0], [0.10, 0.12],
        buy_owner=BUYERS, sell_owner=SELLERS, rule=two_by_two_rule(),
    )  # fmt: skip
    got = trades_of(m)
    assert set(got) == {(0, 1), (1, 0)}
    assert got[(0, 1)] == pytest.approx((2.0, 0.12), abs=1e-4)
    assert got[(1, 0)] == pytest.approx((2.0, 0.10), abs=1e-4)
    assert m.convergence.converged
    assert m.convergence.differentiation_cost == pytest.approx(2 * 0.01 + 2 * 0.02, abs=1e-5)
    assert m.convergence.messages == 2 * 4 * m.convergence.iterations


def test_two_buyers_two_sellers_excess_demand() -> None:
    """The same pairs with B1, B2 wanting 3 kWh each and S1, S2 offering 2 each: the same
    routing, 2 kWh each, but now the buyers are not filled, so each price is its buyer's
    limit less the pair's cost: 0.30 − 0.01 = 0.29 and 0.28 − 0.02 = 0.26."""
    m = clear_p2p(
        [3.0, 3.0], [0.30, 0.28], [2.0, 2.0], [0.10, 0.12],
        buy_owner=BUYERS, sell_owner=SELLERS, rule=two_by_two_rule(),
    )  # fmt: skip
    got = trades_of(m)
    assert set(got) == {(0, 1), (1, 0)}
    assert got[(0, 1)] == pytest.approx((2.0, 0.29), abs=1e-4)
    assert got[(1, 0)] == pytest.approx((2.0, 0.26), abs=1e-4)
    central = solve_central(
        [3.0, 3.0], [0.30, 0.28], [2.0, 2.0], [0.10, 0.12],
        buy_owner=BUYERS, sell_owner=SELLERS, rule=two_by_two_rule(),
    )  # fmt: skip
    assert central.welfare == pytest.approx(0.66)
    assert central.welfare_at_limits == pytest.approx(2 * 0.18 + 2 * 0.18)


def test_partners_restrict_the_pairs() -> None:
    """Only B1–S2 and B2–S1 are partners: four orders, two pairs; no order of one
    household pairs with another of its own."""
    rel = sps.csr_matrix(([True, True], ([0, 1], [3, 2])), shape=(4, 4))
    rule = P2PRule(partners=(rel + rel.T).tocsr())
    pairs = order_pairs(2, 2, BUYERS, SELLERS, rule)
    assert list(zip(pairs.buy, pairs.sell, strict=True)) == [(0, 1), (1, 0)]
    own = order_pairs(2, 2, np.array([0, 1]), np.array([0, 2]), P2PRule())
    assert list(zip(own.buy, own.sell, strict=True)) == [(0, 1), (1, 0), (1, 1)]


def test_green_and_neighbour_premiums() -> None:
    """Seller 2 has PV, seller 3 not; 0 and 3 are neighbours: costs 0.05 (green premium
    on the non-PV seller) and 0.02 (neighbour premium off the non-neighbours)."""
    nb = sps.csr_matrix(([True, True], ([0, 3], [3, 0])), shape=(4, 4))
    rule = P2PRule(
        neighbours=nb, green=np.array([False, False, True, False]),
        green_premium_per_kwh=0.05, neighbour_premium_per_kwh=0.02,
    )  # fmt: skip
    pairs = order_pairs(2, 2, BUYERS, SELLERS, rule)
    cost = dict(zip(zip(pairs.buy, pairs.sell, strict=True), pairs.cost_per_kwh, strict=True))
    assert cost == pytest.approx({(0, 0): 0.02, (0, 1): 0.05, (1, 0): 0.02, (1, 1): 0.07})
    assert pairs.neighbour.tolist() == [False, True, False, False]


def test_cap_project_hand_solved() -> None:
    """Segment 0: (3, 1, −1) onto Σ ≤ 2 → μ = 1: (2, 0, 0); segment 1: (0.5, 0.2) fits."""
    u, seg = np.array([3.0, 1.0, -1.0, 0.5, 0.2]), np.array([0, 0, 0, 1, 1])
    v, mu = cap_project(u, seg, np.array([2.0, 1.0]))
    assert v == pytest.approx([2.0, 0.0, 0.0, 0.5, 0.2]) and mu == pytest.approx([1.0, 0.0])
    for start in (0.0, 0.5, 2.0, 10.0):  # warm starts left and right of the root
        v, mu = cap_project(u, seg, np.array([2.0, 1.0]), np.array([start, start]))
        assert v == pytest.approx([2.0, 0.0, 0.0, 0.5, 0.2]) and mu[0] == pytest.approx(1.0)
    v, _ = cap_project(np.array([2.0, 2.0, 2.0]), np.zeros(3, np.int64), np.array([3.0]))
    assert v == pytest.approx([1.0, 1.0, 1.0])


def test_dataframe_api_and_empty_books() -> None:
    orders = pd.DataFrame(
        {
            "agent_id": ["a", "b", "c"],
            "side": ["buy", "sell", "sell"],
            "energy_kwh": [2.0, 1.0, 1.5],
            "price_per_kwh": [0.25, 0.10, 0.30],
        }
    )
    res = market.clear(orders, mechanism="p2p")
    assert res.volume_kwh == pytest.approx(1.0, abs=2e-3)
    assert res.trades.seller_id.tolist() == ["b"]
    m = clear_p2p([1.0], [0.1], [1.0], [0.2])  # no crossing pair
    assert m.volume_kwh == 0 and isinstance(m.convergence, Convergence)
    assert m.convergence.iterations == 0


def test_bad_rule_is_named() -> None:
    with pytest.raises(ValueError, match="distance_per_kwh > 0 needs"):
        P2PRule(distance_per_kwh=0.1)
    with pytest.raises(ValueError, match="rho must be > 0"):
        P2PRule(rho=0.0)


energy = st.integers(1, 30).map(lambda k: k / 10)
bid = st.integers(8, 32).map(lambda k: k / 100)
ask = st.integers(8, 32).map(lambda k: k / 100 + 0.005)  # never equal to a bid


@st.composite
def books(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    nb, ns = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    bq = np.array(draw(st.lists(energy, min_size=nb, max_size=nb)))
    bp = np.array(draw(st.lists(bid, min_size=nb, max_size=nb)))
    sq = np.array(draw(st.lists(energy, min_size=ns, max_size=ns)))
    sp = np.array(draw(st.lists(ask, min_size=ns, max_size=ns)))
    return bq, bp, sq, sp


def individually_rational(m: market.Matching, bp: np.ndarray, sp: np.ndarray) -> None:
    assert (m.buyer_price_per_kwh <= bp[m.trade_buy] + 1e-12).all()
    assert (m.seller_price_per_kwh >= sp[m.trade_sell] - 1e-12).all()
    assert (m.buyer_price_per_kwh == m.seller_price_per_kwh).all()


@settings(max_examples=60, deadline=None)
@given(books(), st.integers(0, 2**31))
def test_welfare_within_eps_of_the_central_optimum(book: tuple[np.ndarray, ...], seed: int) -> None:
    """Random books, random pair costs (up to 0.05 EUR/kWh): the ADMM welfare net of
    the costs is within EPS of the HiGHS optimum; every trade is individually rational;
    no order is filled beyond its energy."""
    bq, bp, sq, sp = book
    nb, ns = len(bq), len(sq)
    d = np.random.default_rng(seed).uniform(0, 1, (nb + ns, nb + ns))
    rule = P2PRule(household_bus=np.arange(nb + ns), bus_distance=d, distance_per_kwh=0.05)
    bo, so = np.arange(nb), nb + np.arange(ns)
    m = clear_p2p(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    central = solve_central(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    got = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh)
    got -= m.convergence.differentiation_cost
    assert got <= central.welfare + 1e-9
    assert got >= central.welfare * (1 - EPS_REL) - eps_abs(bp, sp, rule)
    individually_rational(m, bp, sp)
    assert (m.buy_filled_kwh <= bq + 1e-12).all() and (m.sell_filled_kwh <= sq + 1e-12).all()


@settings(max_examples=60, deadline=None)
@given(books())
def test_zero_differentiation_is_the_uniform_auction(book: tuple[np.ndarray, ...]) -> None:
    """Everybody a partner, all c = 0: the welfare and the volume are the uniform
    auction's on the same book (to the tolerances), as is the central LP's."""
    bq, bp, sq, sp = book
    m = clear_p2p(bq, bp, sq, sp)
    u = clear_uniform(bq, bp, sq, sp)
    central = solve_central(bq, bp, sq, sp)
    u_welfare = float((bp[u.trade_buy] - sp[u.trade_sell]) @ u.trade_kwh)
    got = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh)
    assert central.welfare == pytest.approx(u_welfare, abs=1e-9)
    assert got == pytest.approx(u_welfare, rel=EPS_REL, abs=eps_abs(bp, sp, P2PRule()))
    tol_kwh = P2PRule().primal_tol_kwh * (len(bq) + len(sq))  # each order within 1 Wh
    assert m.volume_kwh == pytest.approx(u.volume_kwh, rel=EPS_REL, abs=tol_kwh)
    individually_rational(m, bp, sp)


def line_book(n: int, k: int, seed: int) -> tuple[P2PRule, tuple[np.ndarray, ...]]:
    """``n`` households on a line, each with its ``k`` nearest (k/2 either side) as
    partners, pair cost 0.02 EUR/kWh times the distance over the longest; half of them
    (drawn) sell, energies lognormal around 0.3 kWh, asks in [0.08, 0.20], bids in
    [0.12, 0.32] EUR/kWh (the book of ``bench/bench_p2p.py``, smaller)."""
    half = k // 2
    rows = np.repeat(np.arange(n), 2 * half)
    cols = rows + np.tile(np.r_[np.arange(1, half + 1), -np.arange(1, half + 1)], n)
    ok = (cols >= 0) & (cols < n)
    partners = sps.csr_matrix((np.ones(ok.sum(), bool), (rows[ok], cols[ok])), shape=(n, n))
    position = np.arange(n, dtype=np.float64)
    rule = P2PRule(
        partners=partners, household_bus=np.arange(n), distance_per_kwh=0.02,
        bus_distance=np.abs(position[:, None] - position[None, :]) / (n - 1),
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    sells = rng.random(n) < 0.5
    energy = rng.lognormal(np.log(0.3), 0.8, n)
    price = np.where(sells, rng.uniform(0.08, 0.20, n), rng.uniform(0.12, 0.32, n))
    buy, sell = np.flatnonzero(~sells), np.flatnonzero(sells)
    return rule, (energy[buy], price[buy], energy[sell], price[sell], buy, sell)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_200_household_book_converges(seed: int) -> None:
    """200 households, 20 partners each, at the default rule: the negotiation stops on
    its tolerances (both residuals at or below their thresholds, which are the absolute
    1e-5 plus 1e-4 times the RMS proposal or price) within 600 iterations (about 300 on
    these books; 1,000 households take 350–450, bench/bench_p2p.py), and the welfare net
    of the costs is within ε of the central LP's; every trade is individually rational."""
    rule, (bq, bp, sq, sp, bo, so) = line_book(200, 20, seed)
    m = clear_p2p(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    c = m.convergence
    assert c.converged and c.iterations <= 600
    assert (
        c.primal_residual_kwh <= c.primal_tol_kwh and c.dual_residual_per_kwh <= c.dual_tol_per_kwh
    )
    assert rule.primal_tol_kwh < c.primal_tol_kwh < rule.primal_tol_kwh + 1e-4 * bq.max()
    central = solve_central(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    got = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh) - c.differentiation_cost
    assert central.welfare * (1 - EPS_REL) - eps_abs(bp, sp, rule) <= got <= central.welfare + 1e-9
    individually_rational(m, bp, sp)
    assert (m.buy_filled_kwh <= bq + 1e-12).all() and (m.sell_filled_kwh <= sq + 1e-12).all()


def test_pairwise_stopping_holds_every_pair_to_its_own_threshold() -> None:
    """``stopping = "pairwise"`` (what live peers test, :func:`market.p2p.pairs_settled`):
    the 200-household book of seed 1 stops within 3,000 iterations (2,484 here, against
    300 under the default ``"rms"`` rule: the slowest pair sets the pace), its RMS
    disagreement within the absolute part plus relative_tol times the largest order, the
    welfare within ε of the central LP; a bad ``stopping`` is named."""
    rule, (bq, bp, sq, sp, bo, so) = line_book(200, 20, 1)
    pw = replace(rule, stopping="pairwise", max_iterations=3000)
    m = clear_p2p(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=pw)
    c = m.convergence
    assert c.converged and c.iterations <= pw.max_iterations
    # each pair's disagreement is within its own threshold: the RMS is within the
    # absolute part plus relative_tol times the largest proposal
    assert c.primal_residual_kwh <= pw.primal_tol_kwh + pw.relative_tol * bq.max()
    assert (c.primal_tol_kwh, c.dual_tol_per_kwh) == (pw.primal_tol_kwh, pw.dual_tol_per_kwh)
    central = solve_central(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=pw)
    got = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh) - c.differentiation_cost
    assert central.welfare * (1 - EPS_REL) - eps_abs(bp, sp, pw) <= got <= central.welfare + 1e-9
    individually_rational(m, bp, sp)
    with pytest.raises(ValueError, match="stopping must be 'rms' or 'pairwise', not 'max'"):
        P2PRule(stopping="max")


def test_pairs_settled_hand_case() -> None:
    """Two pairs, tolerances 1e-3 (absolute) and 0.1 (relative): the first pair's gap
    0.05 is within 1e-3 + 0.1 × 1.0; the second's 0.05 is not within 1e-3 + 0.1 × 0.2."""
    rule = P2PRule(primal_tol_kwh=1e-3, dual_tol_per_kwh=1e-3, relative_tol=0.1)
    x, y = np.array([1.0, 0.2]), np.array([0.95, 0.15])
    lam = np.array([0.2, 0.2])
    ok = pairs_settled(x - y, np.zeros(2), x, y, lam, rule)
    assert ok.tolist() == [True, False]
    # the dual part: ρ |Δz| = 0.3 × 0.1 = 0.03 > 1e-3 + 0.1 × 0.2 = 0.021
    assert not pairs_settled(np.zeros(1), np.array([0.1]), x[:1], x[:1], lam[:1], rule).any()


def test_a_book_with_a_tiny_margin_converges() -> None:
    """One buyer (3 kWh at 0.15) and one seller it can use (2.7 kWh at 0.115; the other
    four ask more than 0.15): the pair's distance cost 0.05 × 0.696 = 0.0348 EUR/kWh
    leaves a margin of 0.0002 EUR/kWh, so the optimum trades all 2.7 kWh for a welfare of
    0.00054 EUR. At a fixed ρ = 0.3 this book (found by a fuzz run) stalled at the
    iteration cap 140 ε below that; with the residual balancing it converges, trades the
    2.7 kWh and stays within ε."""
    bq, bp = np.array([3.0]), np.array([0.15])
    sq, sp = np.array([1.8, 0.2, 0.6, 2.7, 1.5]), np.array([0.275, 0.295, 0.295, 0.115, 0.315])
    d = np.zeros((6, 6))
    d[0, 1:] = d[1:, 0] = [0.731, 0.749, 0.616, 0.696, 0.009]
    rule = P2PRule(household_bus=np.arange(6), bus_distance=d, distance_per_kwh=0.05)
    bo, so = np.arange(1), 1 + np.arange(5)
    m = clear_p2p(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    c = m.convergence
    assert c.converged and c.iterations < rule.max_iterations
    central = solve_central(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
    assert central.welfare == pytest.approx(2.7 * 0.0002, abs=1e-9)
    got = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh) - c.differentiation_cost
    assert central.welfare * (1 - EPS_REL) - eps_abs(bp, sp, rule) <= got <= central.welfare + 1e-9
    assert m.trade_kwh.sum() == pytest.approx(2.7, abs=1e-3)
    individually_rational(m, bp, sp)
