"""The engine with every market mechanism: energy and money balance in the written files,
per-trade prices and fees, the market surplus, re-clearing with the feeder, and the
scenario keys of the mechanism and the grid fee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grid import electrical_distance_pu, load_feeder
from market import distance_fee_per_kwh
from scenarios import ScenarioError, load_scenario, read_results, run
from scenarios.results.schema import QUANTUM

from .conftest import feeder_scenario

MECHANISMS = ("uniform", "pay_as_bid", "mcafee", "cda", "p2p")

# 20 households, all with 8-10 kWp of PV on a feeder sized for them: the noon export
# breaks the transformer limit, so some intervals are re-cleared with the feeder.
STRESSED = feeder_scenario(
    "2026-06-20", 20, name="mechanisms",
    pv_share=1.0, pv_kwp=[8.0, 10.0], battery_share=0.4, ev_share=0.6, v2g_share=0.5,
)  # fmt: skip
STRESSED |= {
    "market": {
        "grid_fee_model": "distance",
        "grid_fee_per_kwh": 0.02,
        "grid_fee_distance_per_kwh": 0.03,
    },
}


@pytest.fixture(scope="module", params=MECHANISMS)
def mech_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    name = request.param
    out = tmp_path_factory.mktemp(name)
    scenario = load_scenario(STRESSED, [f"market.mechanism={name}"])
    run(scenario, out)
    tables = read_results(out)
    tables["scenario"] = scenario
    tables["mechanism"] = name
    return tables


def test_energy_balance(mech_run: dict) -> None:
    a = mech_run["agents"]
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    tr = mech_run["trades"]
    bought = tr.groupby(["t", "buyer_id"], observed=True).energy_kwh.sum()
    idx = a.set_index(["t", "agent_id"])
    # agents.parquet in steps of QUANTUM, the trades unrounded
    np.testing.assert_allclose(idx.bought_p2p_kwh.loc[bought.index], bought, atol=QUANTUM)
    assert idx.bought_p2p_kwh.sum() == pytest.approx(tr.energy_kwh.sum())
    assert idx.sold_p2p_kwh.sum() == pytest.approx(tr.energy_kwh.sum())


def test_money_balance_with_market_surplus(mech_run: dict) -> None:
    """Σ household cost = utility imports − exports + grid fees + market surplus,
    in total and per interval, from the files alone."""
    a, tr, iv = mech_run["agents"], mech_run["trades"], mech_run["intervals"]
    mk = mech_run["scenario"].market
    surplus_t = (tr.energy_kwh * (tr.price_per_kwh - tr.seller_price_per_kwh)).groupby(tr.t).sum()
    per_t = a.groupby("t")[["cost", "grid_import_kwh", "grid_export_kwh"]].sum()
    fee_t = tr.groupby("t").grid_fee.sum().reindex(per_t.index, fill_value=0.0)
    surplus_t = surplus_t.reindex(per_t.index, fill_value=0.0)
    gap = (
        per_t.cost
        - per_t.grid_import_kwh * mk.retail_price_per_kwh
        + per_t.grid_export_kwh * mk.feed_in_price_per_kwh
        - fee_t
        - surplus_t
    )
    # agents.parquet's money and energies: QUANTUM / 2 per value, three per household
    assert gap.abs().max() < 3 * a.agent_id.nunique() * QUANTUM
    np.testing.assert_allclose(iv.set_index("t").market_surplus, surplus_t, atol=1e-12)
    k = mech_run["kpis"]
    assert k["market_surplus"] == pytest.approx(surplus_t.sum(), abs=1e-9)
    assert k["community_cost"] == pytest.approx(
        a.grid_import_kwh.sum() * mk.retail_price_per_kwh
        - a.grid_export_kwh.sum() * mk.feed_in_price_per_kwh
        + tr.grid_fee.sum()
        + k["market_surplus"],
        abs=len(a) * QUANTUM,  # two of agents.parquet's energies per row, QUANTUM / 2 each
    )
    if mech_run["mechanism"] in ("uniform", "cda"):
        assert k["market_surplus"] == 0.0
    if mech_run["mechanism"] == "pay_as_bid":
        assert k["market_surplus"] > 0


def test_prices_per_trade_are_individually_rational(mech_run: dict) -> None:
    tr, mk = mech_run["trades"], mech_run["scenario"].market
    assert len(tr) > 20 and (tr.energy_kwh > 0).all()
    assert (tr.price_per_kwh >= tr.seller_price_per_kwh - 1e-12).all()
    lo, hi = mk.feed_in_price_per_kwh, mk.retail_price_per_kwh - mk.max_grid_fee_per_kwh
    assert tr.price_per_kwh.between(lo - 1e-12, hi + 1e-12).all()
    assert tr.seller_price_per_kwh.between(lo - 1e-12, hi + 1e-12).all()
    # what a buyer pays including the fee never exceeds the retail price
    assert (tr.price_per_kwh + tr.grid_fee / tr.energy_kwh <= mk.retail_price_per_kwh + 1e-12).all()
    differs = (tr.price_per_kwh != tr.seller_price_per_kwh).any()
    assert differs == (mech_run["mechanism"] in ("pay_as_bid", "mcafee"))


def test_distance_fees_follow_the_formula(mech_run: dict) -> None:
    """fee = energy × (base + extra × d(buyer bus, seller bus) / d_max), recomputed from
    the feeder and the buses written to households.parquet."""
    tr, hh, mk = mech_run["trades"], mech_run["households"], mech_run["scenario"].market
    feeder = load_feeder("radial:20", households=20)
    labels = list(feeder.buses["bus"])
    bus_of = {a: labels.index(b) for a, b in zip(hh.agent_id, hh.bus, strict=True)}
    d = electrical_distance_pu(feeder)
    d_max = d[np.ix_(feeder.household_buses, feeder.household_buses)].max()
    b = tr.buyer_id.astype(str).map(bus_of).to_numpy()
    s = tr.seller_id.astype(str).map(bus_of).to_numpy()
    expected = tr.energy_kwh * (
        mk.grid_fee_per_kwh + mk.grid_fee_distance_per_kwh * d[b, s] / d_max
    )
    np.testing.assert_allclose(tr.grid_fee, expected, rtol=1e-12)
    rate = (tr.grid_fee / tr.energy_kwh).to_numpy()
    assert rate.min() >= 0.02 - 1e-12 and rate.max() <= 0.05 + 1e-12
    np.testing.assert_allclose(rate[b == s], 0.02, rtol=1e-12)  # neighbours on one bus
    assert rate.max() - rate.min() > 0.005  # distances differ on this feeder
    np.testing.assert_array_equal(
        distance_fee_per_kwh(d, feeder.household_buses, 0.02, 0.03)[b, s] * tr.energy_kwh,
        tr.grid_fee,
    )


def test_quality_columns_and_recleared_intervals(mech_run: dict) -> None:
    iv, k = mech_run["intervals"], mech_run["kpis"]
    assert (iv.welfare <= iv.optimal_welfare + 1e-12).all()
    assert (iv.welfare >= -1e-12).all()
    name = mech_run["mechanism"]
    if name in ("uniform", "pay_as_bid"):
        np.testing.assert_array_equal(iv.welfare, iv.optimal_welfare)
        assert k["efficiency"] == 1.0
    else:
        assert 0.5 < k["efficiency"] < 1.0
    assert k["efficiency"] == pytest.approx(iv.welfare.sum() / iv.optimal_welfare.sum())
    # the feeder still re-clears congested intervals, whatever the mechanism
    assert iv.recleared.sum() >= 1
    assert (iv.violations == 0).all()
    rec = iv[iv.recleared]
    assert (rec.market_surplus == 0).all()  # re-cleared trades: one price per trade
    # Gini of household savings, from its pairwise definition; a saving counts the
    # stored energy the household ends with above its baseline at retail
    a = mech_run["agents"]
    last = a[a.t == a.t.max()].set_index("agent_id")
    stored = last.soc_kwh + last.ev_soc_kwh - last.baseline_stored_kwh
    saved = (a.baseline_cost - a.cost).groupby(a.agent_id, observed=True).sum()
    retail = mech_run["scenario"].market.retail_price_per_kwh
    saved = (saved + retail * stored.loc[saved.index]).to_numpy()
    if saved.mean() > 0:
        pairwise = np.abs(saved[:, None] - saved[None, :]).sum() / (
            2 * len(saved) ** 2 * saved.mean()
        )
        assert k["savings_gini"] == pytest.approx(pairwise, rel=1e-9, abs=len(a) * QUANTUM)
    else:  # undefined when the households lose on average (the operator keeps a surplus)
        assert k["savings_gini"] is None


def test_mechanisms_differ_and_share_the_book(tmp_path) -> None:
    """Same seed, same households and limit prices: the uniform and pay-as-bid runs
    trade the same energy in every interval that is not re-cleared; their prices differ."""
    base = {
        **STRESSED,
        "grid": {"feeder": "radial:20", "check": "off"},
        "market": {"grid_fee_per_kwh": 0.03},
    }
    runs = {}
    for name in ("uniform", "pay_as_bid", "cda"):
        run(load_scenario(base, [f"market.mechanism={name}"]), tmp_path / name)
        runs[name] = read_results(tmp_path / name)
    u, p, c = (runs[n]["intervals"] for n in ("uniform", "pay_as_bid", "cda"))
    first_day = u.t < 96
    # storage learns from the prices, so only the first interval's books are certain to
    # be identical; the first trading interval must agree in volume
    traded = u.index[(u.p2p_kwh > 0) & first_day][0]
    assert p.p2p_kwh[traded] == pytest.approx(u.p2p_kwh[traded])
    sold = p.p2p_kwh > 0
    assert (p.clearing_price_per_kwh[sold] > p.seller_price_per_kwh[sold]).all()
    assert p.clearing_price_per_kwh[~sold].isna().all()
    assert not np.allclose(u.p2p_kwh, c.p2p_kwh)
    pd.testing.assert_series_equal(u.demand_kwh, p.demand_kwh)


def test_distance_fees_need_the_feeder() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario({"market": {"grid_fee_model": "distance"}, "grid": {"check": "off"}})
    text = str(info.value)
    assert "market.grid_fee_model = 'distance'" in text and "grid.check" in text
    with pytest.raises(ScenarioError, match="grid_fee_distance_per_kwh"):
        load_scenario({"market": {"grid_fee_model": "distance", "grid_fee_distance_per_kwh": 0.25}})
    with pytest.raises(ScenarioError, match="'zonal' is not one of flat, distance"):
        load_scenario({"market": {"grid_fee_model": "zonal"}})


def test_unknown_mechanism_lists_all_four() -> None:
    with pytest.raises(
        ScenarioError, match="'vickrey' is not one of uniform, pay_as_bid, mcafee, cda"
    ):
        load_scenario({"market": {"mechanism": "vickrey"}})


def test_mcafee_with_truthful_bids_saves_the_households_money(tmp_path) -> None:
    """suburb-summer, two days, McAfee, truthful limits (bids retail - fee = 0.29, asks
    feed-in 0.08). Pure McAfee drops the marginal trade of every book with an exhausted
    side and prices the rest at b_k = 0.29 / s_k = 0.08, so nobody saves (0.00 EUR) and
    the operator keeps 31.84 EUR. Closed with the tariffs, such books trade at p0 = a
    tariff: the households save 36.22 EUR and the operator keeps 0.95 EUR."""
    library = Path(__file__).resolve().parents[2] / "scenarios" / "library"
    scenario = load_scenario(
        library / "suburb-summer.toml",
        ["market.mechanism=mcafee", "community.strategy=truthful", "simulation.days=2"],
    )
    run(scenario, tmp_path)
    kpis = read_results(tmp_path)["kpis"]
    assert kpis["community_savings"] > 30.0
    assert kpis["market_surplus"] < 2.0
