"""Reliability scores through the market step (hand-solved): a seller that delivers 60 %
of what it committed, a buyer that takes half of what it bought, the window forgetting,
and ``[market] derate_unreliable`` shrinking the unreliable seller's ask before the
clearing."""

from __future__ import annotations

import numpy as np
import pytest

from agents.households.community import KIND_NET, Plan, device_flows
from market.mechanism_names import MECHANISM_NAMES
from market.reliability import Conduct
from scenarios import load_scenario
from scenarios.engine.interval import MarketStep

WINDOW = 4


def _step(derate: bool) -> MarketStep:
    scenario = load_scenario(
        {
            "simulation": {"days": 1, "interval_minutes": 60},
            "community": {"households": 3},
            "market": {"reliability_window": WINDOW, "derate_unreliable": derate},
            "grid": {"check": "off"},
        }
    )
    return MarketStep(scenario, 3, None)


def _plan(generation: float, demand: tuple[float, float] = (4.0, 2.0)) -> Plan:
    """h0 asks 5 kWh at 0.10 and generates ``generation``; h1 bids 4 kWh at 0.30 and uses
    ``demand[0]``; h2 bids 4 kWh at 0.25 and uses ``demand[1]``."""
    zeros = np.zeros(3)
    return Plan(
        generation_kwh=np.array([generation, 0.0, 0.0]),
        demand_kwh=np.array([0.0, *demand]),
        self_kwh={"battery": zeros, "ev": zeros},
        drawn_kwh={},
        ev_deferrable_kwh=zeros,
        net_kwh=np.array([5.0, -4.0, -4.0]),
        household=np.array([0, 1, 2]),
        is_buy=np.array([False, True, True]),
        energy_kwh=np.array([5.0, 4.0, 4.0]),
        price_per_kwh=np.array([0.10, 0.30, 0.25]),
        kind=np.full(3, KIND_NET, np.int8),
    )


def test_a_seller_delivering_60_percent_scores_0_6() -> None:
    step = _step(derate=False)
    for t in range(WINDOW):
        res = step.run(_plan(3.0), device_flows, t=t)
        # 5 kWh asked at 0.10 against 8 kWh bid: all 5 trade (h1 4, h2 1)
        assert res.volume_kwh == pytest.approx(5.0)
        assert res.committed_net_kwh[0] == pytest.approx(5.0)
    scores = res.reliability
    assert scores is not None and scores.intervals == WINDOW
    # h0: Σ min(3, 5) / Σ 5 = 12 / 20; h1 took its 4 of 4; h2 took 2 of 4
    np.testing.assert_allclose(scores.delivery_ratio, [0.6, 1.0, 1.0])
    np.testing.assert_allclose(scores.take_ratio, [1.0, 1.0, 0.5])
    # the batch engine passes no conduct: nothing estimated or rejected
    np.testing.assert_array_equal(scores.estimated_share, 0.0)
    np.testing.assert_array_equal(scores.rejected_per_interval, 0.0)
    # the option off: the next ask stays 5 kWh and all of it trades
    res = step.run(_plan(3.0), device_flows, t=WINDOW)
    assert res.volume_kwh == pytest.approx(5.0)


def test_the_window_forgets_after_w_intervals_of_full_delivery() -> None:
    step = _step(derate=False)
    for t in range(WINDOW):
        step.run(_plan(3.0), device_flows, t=t)
    expected = [
        (3 * 3 + 5) / 20,  # one interval of full delivery: (3 + 3 + 3 + 5) / 20 = 0.7
        (2 * 3 + 2 * 5) / 20,  # 0.8
        (3 + 3 * 5) / 20,  # 0.9
        1.0,  # the 60 % intervals have all left the window
    ]
    for i, want in enumerate(expected):
        res = step.run(_plan(5.0, (4.0, 4.0)), device_flows, t=WINDOW + i)
        assert res.reliability is not None
        assert res.reliability.delivery_ratio[0] == pytest.approx(want, abs=1e-15)
        assert res.reliability.take_ratio[2] == pytest.approx(min(1.0, 0.5 + (i + 1) / 8))
    final = res.reliability
    assert final is not None
    assert final.delivery_ratio[0] == 1.0  # exact: the window sums are integers
    assert final.take_ratio[2] == 1.0


def test_derating_shrinks_the_unreliable_sellers_ask_before_the_clearing() -> None:
    step = _step(derate=True)
    # t0: no history, ratio 1: 5 kWh asked and traded, 3 delivered → 0.6. From then on
    # the ask is derated to 0.6 × 5 = 3 kWh and h0 delivers 60 % of that, 1.8 kWh, so
    # the ratio stays (3 + 3 × 1.8) / (5 + 3 × 3) = 8.4 / 14 = 0.6
    generation = [3.0, 1.8, 1.8, 1.8]
    volumes = []
    for t, gen in enumerate(generation):
        res = step.run(_plan(gen), device_flows, t=t)
        volumes.append(res.volume_kwh)
        assert res.reliability is not None
        assert res.reliability.delivery_ratio[0] == pytest.approx(0.6, abs=1e-12)
    assert volumes == pytest.approx([5.0, 3.0, 3.0, 3.0])
    res = step.run(_plan(3.0), device_flows, t=len(generation))
    # the next ask: 0.6 × 5 = 3 kWh, and the clearing trades 3 (all to h1, the best bid)
    ask = res.plan.energy_kwh[~res.plan.is_buy]
    assert ask == pytest.approx([3.0])
    assert res.volume_kwh == pytest.approx(3.0)
    assert res.flows.bought_kwh == pytest.approx([0.0, 3.0, 0.0])
    # the derated ask is what h0 committed to: its 3 kWh are delivered in full
    assert res.committed_net_kwh[0] == pytest.approx(3.0)
    assert res.bill.imbalance_kwh[0] == pytest.approx(0.0)
    assert res.order_filled_kwh == pytest.approx([3.0, 3.0, 0.0])
    # buyers are never derated: h2's take ratio of 0.5 leaves its bid at 4 kWh
    assert res.plan.energy_kwh[res.plan.is_buy] == pytest.approx([4.0, 4.0])


def test_a_seller_that_delivered_nothing_is_left_out_of_the_clearing() -> None:
    step = _step(derate=True)
    step.run(_plan(0.0), device_flows, t=0)  # sold 5, delivered 0: ratio 0
    res = step.run(_plan(0.0), device_flows, t=1)
    assert res.volume_kwh == 0.0 and len(res.pairing.energy_kwh) == 0
    assert res.order_filled_kwh.tolist() == [0.0, 0.0, 0.0]
    assert res.committed_net_kwh[0] == 0.0  # nothing asked, nothing owed
    assert res.reliability is not None and res.reliability.delivery_ratio[0] == 0.0


def test_conduct_counts_estimates_and_rejections_per_interval_of_the_window() -> None:
    step = _step(derate=False)
    conduct = Conduct.of(3, estimated={1}, rejected={2: 3})
    res = step.run(_plan(3.0), device_flows, t=0, conduct=conduct)
    assert res.reliability is not None
    np.testing.assert_array_equal(res.reliability.estimated_share, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(res.reliability.rejected_per_interval, [0.0, 0.0, 3.0])
    for t in range(1, WINDOW + 1):
        res = step.run(_plan(3.0), device_flows, t=t)
        assert res.reliability is not None
        k = min(t + 1, WINDOW)
        # the first interval's estimate and 3 rejections, over the intervals in the window
        share, rate = (1 / k, 3 / k) if t < WINDOW else (0.0, 0.0)
        assert res.reliability.estimated_share[1] == pytest.approx(share)
        assert res.reliability.rejected_per_interval[2] == pytest.approx(rate)


def test_bad_conduct_is_named() -> None:
    step = _step(derate=False)
    bad = Conduct(np.zeros(2, dtype=bool), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"conduct: estimated has shape \(2,\), not \(3,\)"):
        step.run(_plan(3.0), device_flows, t=0, conduct=bad)


def test_the_window_must_be_at_least_one_interval() -> None:
    from scenarios import ScenarioError

    with pytest.raises(ScenarioError, match="reliability_window"):
        load_scenario({"market": {"reliability_window": 0}})


@pytest.mark.parametrize("mechanism", MECHANISM_NAMES)
def test_every_mechanism_clears_the_derated_ask(mechanism: str) -> None:
    scenario = load_scenario(
        {
            "simulation": {"days": 1, "interval_minutes": 60},
            "community": {"households": 3},
            "market": {"mechanism": mechanism, "reliability_window": WINDOW,
                       "derate_unreliable": True},
            "grid": {"check": "off"},
        }
    )  # fmt: skip
    step = MarketStep(scenario, 3, None)
    first = step.run(_plan(3.0), device_flows, t=0)
    res = step.run(_plan(3.0), device_flows, t=1)
    # t0: the 5 kWh ask against bids of 4 at 0.30 and 4 at 0.25 trades in full, except
    # that McAfee drops the marginal trade (h2's 1 kWh): p0 = (0.25, the rest of h2's bid,
    # + 0.29, the outside ask: retail 0.32 − fee 0.03) / 2 = 0.27 lies above h2's 0.25.
    # t1: the marginal trade is h1's 3 kWh, p0 = (0.30 + 0.29) / 2 = 0.295 ≤ 0.30: kept
    assert first.volume_kwh == pytest.approx(4.0 if mechanism == "mcafee" else 5.0)
    # t1: the ask derated to 3 kWh, all of it traded, in every mechanism: to h1 (bid 0.30)
    # in the auctions; an energy-sharing key (main's "sharing", proportional by default)
    # splits it by the equal 4 kWh bids
    assert res.plan.energy_kwh[~res.plan.is_buy] == pytest.approx([3.0])
    assert res.volume_kwh == pytest.approx(3.0)
    bought = [0.0, 1.5, 1.5] if mechanism == "sharing" else [0.0, 3.0, 0.0]
    assert res.flows.bought_kwh == pytest.approx(bought)
    if mechanism == "mcafee":
        assert res.pairing.price_per_kwh == pytest.approx([0.295])


def test_an_order_derated_away_keeps_every_fill_in_place_through_dimming(tmp_path) -> None:
    """Wallboxes at full power on a feeder for 30 (tests/scenarios/test_dimming.py's case)
    and, first in the book, a 1 kWh ask of h0, which delivered nothing of its last
    commitment, then h1's 0.5 kWh of PV: h0's ask is derated to 0 and left out, the book
    is dimmed and cleared again without it, and every fill lands on its order as
    submitted (h1's on the second)."""
    from scenarios.engine.grid_stage import GridStage
    from scenarios.engine.inputs import timeline

    n, evening, dt_h = 12, 72, 0.25
    scenario = load_scenario(
        {
            "simulation": {"start": "2026-01-13", "days": 1, "seed": 3},
            "community": {"households": n, "pv_share": 0.0, "battery_share": 0.0,
                          "ev_share": 1.0},
            "market": {"derate_unreliable": True},
            "grid": {"feeder": "radial:30", "controllable_share": 1.0, "dimming_min_kw": 4.2},
        }
    )  # fmt: skip
    grid = GridStage(scenario, n, tmp_path)
    step = MarketStep(scenario, n, grid)
    committed = np.zeros(n)
    committed[0] = 1.0
    step.reliability.update(np.zeros(n), committed, None)  # h0: 1 kWh owed, 0 delivered
    ev, demand, gen = np.full(n, 22.0 * dt_h), np.full(n, 0.25), np.zeros(n)
    ev[1], demand[1], gen[1] = 0.0, 0.0, 0.5  # h1: PV only
    buyers = [h for h in range(n) if h != 1]
    plan = Plan(
        generation_kwh=gen,
        demand_kwh=demand,
        self_kwh={"battery": np.zeros(n), "ev": ev},
        drawn_kwh={},
        ev_deferrable_kwh=np.zeros(n),
        net_kwh=gen - ev - demand,
        household=np.array([0, 1, *buyers]),
        is_buy=np.array([False, False, *[True] * len(buyers)]),
        energy_kwh=np.array([1.0, 0.5, *(ev + demand)[buyers]]),
        price_per_kwh=np.array([0.05, 0.05, *[0.25] * len(buyers)]),
        kind=np.full(len(buyers) + 2, KIND_NET, np.int8),
    )
    bg_p, bg_q = grid.background(timeline(scenario)[evening : evening + 1])
    res = step.run(plan, device_flows, bg_p[0], bg_q[0], t=evening)
    grid.close()
    assert res.violations_before_reclear > 0 and res.outcome is not None
    check = res.outcome.check
    assert check is not None and check.violations == 0 and not res.outcome.recleared
    np.testing.assert_allclose(res.dimmed_or_zero_kwh[buyers], (22.0 - 4.2) * dt_h)
    # h0's ask was left out, h1's 0.5 kWh traded: the fills in the places submitted
    assert res.volume_kwh == pytest.approx(0.5)
    filled = res.order_filled_kwh
    assert len(filled) == len(plan.energy_kwh)
    assert filled[0] == 0.0 and filled[1] == pytest.approx(0.5)
    assert filled[2:].sum() == pytest.approx(0.5)
    np.testing.assert_allclose(res.flows.bought_kwh.sum(), 0.5)
    assert res.flows.sold_kwh[1] == pytest.approx(0.5) and res.flows.sold_kwh[0] == 0.0
    # h0 committed nothing to export (its ask derated to 0), h1 its 0.5 kWh
    assert res.committed_net_kwh[1] == pytest.approx(0.5)
    np.testing.assert_allclose(res.bill.imbalance_kwh, 0.0, atol=1e-9)
