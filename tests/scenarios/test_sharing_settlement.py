"""The sharing contract's settlement on one interval, by jurisdiction (hand-solved), and
the scenario keys of [market.sharing] and [[community.members]].

One interval, two members: h0001 consumes 5 kWh net, h0002 has 4 kWh surplus. Retail
0.32, feed-in 0.08, grid fee g = 0.10 and levies l = 0.05 per kWh, internal price at
``price_fraction = 0.5``: ``p = 0.08 + 0.5 (0.32 − charges − 0.08)``. h0001 pays 4 kWh at
``p + charges`` and 1 kWh at retail; h0002 receives ``4 p``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.households.community import KIND_NET, Plan, device_flows
from market.sharing_fees import AT_EEG_REDUCTION, shared_charges
from scenarios import ScenarioError, load_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.interval import MarketStep
from scenarios.engine.sharing import internal_price_per_kwh, member_terms, sharing_rule

RETAIL, FEED_IN, FEE, LEVIES = 0.32, 0.08, 0.10, 0.05


def _scenario(sharing: dict, households: int = 2, **market: object) -> Scenario:
    return load_scenario(
        {
            "simulation": {"days": 1, "interval_minutes": 60},
            "community": {"households": households},
            "market": {
                "mechanism": "sharing",
                "retail_price_per_kwh": RETAIL,
                "feed_in_price_per_kwh": FEED_IN,
                "grid_fee_per_kwh": FEE,
                "sharing": {"levies_per_kwh": LEVIES, **sharing},
                **market,
            },
            "grid": {"check": "off"},
        }
    )


def _plan(buy_kwh: float, sell_kwh: float) -> Plan:
    zeros = np.zeros(2)
    return Plan(
        generation_kwh=np.array([0.0, sell_kwh]),
        demand_kwh=np.array([buy_kwh, 0.0]),
        self_kwh={"battery": zeros, "ev": zeros},
        drawn_kwh={},
        ev_deferrable_kwh=zeros,
        net_kwh=np.array([-buy_kwh, sell_kwh]),
        household=np.array([0, 1]),
        is_buy=np.array([True, False]),
        energy_kwh=np.array([buy_kwh, sell_kwh]),
        price_per_kwh=np.array([0.10, 0.30]),  # limits do not matter to an allocation key
        kind=np.full(2, KIND_NET, np.int8),
    )


@pytest.mark.parametrize(
    ("sharing", "charges", "price", "cost_buyer", "cost_seller"),
    [
        # de_42c: charges 0.10 + 0.05; p = 0.08 + 0.5 (0.32 − 0.15 − 0.08) = 0.125;
        # buyer 4 (0.125 + 0.15) + 1 · 0.32 = 1.42; seller −4 · 0.125 = −0.50
        ({"jurisdiction": "de_42c"}, 0.15, 0.125, 1.42, -0.50),
        # at_eeg local: fee 0.10 (1 − 0.57) = 0.043, levies exempt; p = 0.1785;
        # buyer 4 · 0.2215 + 0.32 = 1.206; seller −0.714
        ({"jurisdiction": "at_eeg"}, 0.043, 0.1785, 1.206, -0.714),
        # at_eeg regional: fee 0.10 (1 − 0.28) = 0.072; p = 0.164; buyer 4 · 0.236 + 0.32
        ({"jurisdiction": "at_eeg", "at_area": "regional"}, 0.072, 0.164, 1.264, -0.656),
        # at_eeg local, levies not exempt: 0.043 + 0.05 = 0.093; p = 0.1535
        ({"jurisdiction": "at_eeg", "at_levies_exempt": False}, 0.093, 0.1535, 1.306, -0.614),
        # fr_acc with a self-produced TURPE component of 0.06: 0.06 + 0.05; p = 0.145
        ({"jurisdiction": "fr_acc", "fr_autoproduced_fee_per_kwh": 0.06}, 0.11, 0.145, 1.34, -0.58),
        # a fixed internal price 0.20 under de_42c: buyer 4 · 0.35 + 0.32 = 1.72
        ({"price_rule": "fixed", "price_per_kwh": 0.20}, 0.15, 0.20, 1.72, -0.80),
    ],
)
def test_one_interval_bill(
    sharing: dict, charges: float, price: float, cost_buyer: float, cost_seller: float
) -> None:
    scenario = _scenario(sharing)
    assert internal_price_per_kwh(scenario) == pytest.approx(price)
    res = MarketStep(scenario, 2, None).run(_plan(5.0, 4.0), device_flows, t=0)
    bill = res.bill
    np.testing.assert_allclose(bill.cost, [cost_buyer, cost_seller], atol=1e-12)
    np.testing.assert_allclose(bill.grid_import_kwh, [1.0, 0.0])  # the residual supply
    np.testing.assert_allclose(bill.grid_export_kwh, [0.0, 0.0])
    np.testing.assert_allclose(res.flows.bought_kwh, [4.0, 0.0])
    np.testing.assert_allclose(bill.fees, [4.0 * charges, 0.0], atol=1e-12)
    # money: members' costs = supplier (1 kWh at retail) + fees and levies − feed-in (0)
    # + internal payments, which sum to zero
    assert bill.p2p_paid.sum() == pytest.approx(bill.p2p_received.sum())
    assert bill.cost.sum() == pytest.approx(1.0 * RETAIL + 4.0 * charges)


def test_surplus_beyond_demand_is_fed_in() -> None:
    # 2 kWh demand, 5 kWh surplus: 2 shared, 3 exported at feed-in; de_42c p = 0.125
    res = MarketStep(_scenario({}), 2, None).run(_plan(2.0, 5.0), device_flows, t=0)
    np.testing.assert_allclose(res.bill.grid_export_kwh, [0.0, 3.0])
    np.testing.assert_allclose(res.bill.cost, [2 * (0.125 + 0.15), -2 * 0.125 - 3 * FEED_IN])


def test_shared_charges_by_jurisdiction() -> None:
    assert AT_EEG_REDUCTION == {"local": 0.57, "regional": 0.28}
    assert shared_charges("de_42c", 0.1, 0.05).total_per_kwh == pytest.approx(0.15)
    assert shared_charges("at_eeg", 0.1, 0.05).grid_fee_per_kwh == pytest.approx(0.043)
    assert shared_charges("fr_acc", 0.1, 0.05).total_per_kwh == pytest.approx(0.15)
    with pytest.raises(ValueError, match="jurisdiction 'xx_yy' is not one of"):
        shared_charges("xx_yy", 0.1, 0.05)


def test_shares_and_priority_by_member(tmp_path: Path) -> None:
    csv = tmp_path / "shares.csv"
    csv.write_text("member_id,share\nh0001,0.25\nh0003,0.5\n", encoding="utf-8")
    scenario = _scenario(
        {"key": "static", "shares": str(csv), "priority": [["h0003"], ["h0002"]]}, households=4
    )
    rule = sharing_rule(scenario, ["h0001", "h0002", "h0003", "h0004"])
    assert rule.shares is not None and rule.priority is not None
    np.testing.assert_allclose(rule.shares, [0.25, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(rule.priority, [2, 1, 0, 2])
    terms = member_terms(scenario, ["h0001", "h0002", "h0003", "h0004"])
    np.testing.assert_allclose(terms["share"], [0.25, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(terms["priority"], [2, 1, 0, 2])
    assert list(terms["load"]) == ["household"] * 4
    # the same key in the mechanism's name
    s2 = _scenario({}, households=4, mechanism="sharing:equal")
    assert (s2.market.mechanism, s2.market.sharing.key) == ("sharing", "equal")


@pytest.mark.parametrize(
    ("sharing", "message"),
    [
        ({"shares": {"h0001": 0.7, "h0002": 0.6}}, "they sum to 1.3, more than 1"),
        ({"shares": {"h0009": 0.5}}, r"\['h0009'\] are not members of the community"),
        ({"priority": [["h0001"], ["h0001", "h0002"]]}, "in more than one group"),
        ({"price_rule": "fixed"}, "price_rule = 'fixed' needs price_per_kwh"),
        ({"shares": "/nonexistent/shares.csv"}, "no CSV file at '/nonexistent/shares.csv'"),
        ({"jurisdiction": "it_cer"}, "jurisdiction"),
    ],
)
def test_bad_sharing_keys_are_named(sharing: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        _scenario(sharing)


def test_bad_shares_csv_names_the_line(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("member_id,share\nh0001,0.2\nh0002,lots\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 3: share 'lots' is not a number"):
        _scenario({"shares": str(csv)})
    csv.write_text("id,fraction\nh0001,0.2\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="must start with the header member_id,share"):
        _scenario({"shares": str(csv)})


def test_sharing_needs_the_flat_fee_model() -> None:
    with pytest.raises(ScenarioError, match=r"needs market\.grid_fee_model = 'flat'"):
        _scenario({}, grid_fee_model="time_variable")


def test_unknown_or_repeated_member_entries() -> None:
    base = {"simulation": {"days": 1}, "community": {"households": 3}, "grid": {"check": "off"}}
    school = {"id": "h0004", "annual_kwh": 1000.0}
    with pytest.raises(ScenarioError, match="'h0004' is not one of the 3 members"):
        load_scenario({**base, "community": {"households": 3, "members": [school]}})
    twice = [{"id": "h0001", "annual_kwh": 1.0}, {"id": "h0001", "annual_kwh": 2.0}]
    with pytest.raises(ScenarioError, match="'h0001' is listed twice"):
        load_scenario({**base, "community": {"households": 3, "members": twice}})


def _plan_of(net: np.ndarray) -> Plan:
    """Members with these net positions (export positive), one net order each."""
    n = len(net)
    zeros = np.zeros(n)
    rows = np.flatnonzero(np.abs(net) > 1e-9)
    return Plan(
        generation_kwh=np.maximum(net, 0.0),
        demand_kwh=np.maximum(-net, 0.0),
        self_kwh={"battery": zeros, "ev": zeros},
        drawn_kwh={},
        ev_deferrable_kwh=zeros,
        net_kwh=net,
        household=rows,
        is_buy=net[rows] < 0,
        energy_kwh=np.abs(net[rows]),
        price_per_kwh=np.full(len(rows), 0.2),
        kind=np.full(len(rows), KIND_NET, np.int8),
    )


_STEPS: dict[tuple[str, str, int], MarketStep] = {}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-8.0, 8.0), min_size=3, max_size=8),
    st.sampled_from(["static", "proportional", "equal"]),
    st.sampled_from(["de_42c", "at_eeg", "fr_acc"]),
)
def test_money_balance_of_any_interval(net: list[float], key: str, jurisdiction: str) -> None:
    """Members' costs = supplier (residual at retail) + grid fees and levies − feed-in +
    internal payments (zero in sum); allocation + residual = consumption; allocation ≤
    consumption; Σ allocation ≤ Σ surplus."""
    x = np.array(net)
    n = len(x)
    if (key, jurisdiction, n) not in _STEPS:
        s = _scenario({"key": key, "jurisdiction": jurisdiction}, households=n)
        _STEPS[(key, jurisdiction, n)] = MarketStep(s, n, None)
    step = _STEPS[(key, jurisdiction, n)]
    res = step.run(_plan_of(x), device_flows, t=0)
    b, bought = res.bill, res.flows.bought_kwh
    need, have = np.maximum(-x, 0.0), np.maximum(x, 0.0)
    assert (bought <= need + 1e-9).all() and bought.sum() <= have.sum() + 1e-9
    np.testing.assert_allclose(bought + b.grid_import_kwh, need, atol=1e-9)
    np.testing.assert_allclose(res.flows.sold_kwh + b.grid_export_kwh, have, atol=1e-9)
    assert b.p2p_paid.sum() == pytest.approx(b.p2p_received.sum(), abs=1e-12)
    charges = step.fees.shared_per_kwh
    np.testing.assert_allclose(b.fees, charges * bought, atol=1e-12)
    supplier = b.grid_import_kwh.sum() * RETAIL - b.grid_export_kwh.sum() * FEED_IN
    assert b.cost.sum() == pytest.approx(supplier + b.fees.sum(), abs=1e-9)
