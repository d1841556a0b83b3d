"""A run's results files: contract, energy and money balance, device limits, determinism."""

import re

import numpy as np
import pandas as pd
import pytest

from agents.households.table import sample_households
from scenarios import load_scenario, read_results, run
from scenarios.engine.inputs import household_spec
from scenarios.results.schema import QUANTUM, metered_net_kwh

INTERVAL_COLUMNS = [
    "t",
    "timestamp",
    "clearing_price_per_kwh",
    "p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "losses_kwh",
    "v_min_pu",
    "v_max_pu",
    "max_line_loading_frac",
    "violations",
    "curtailed_kwh",
    "imbalance_kwh",
    "imbalance_cost",
]
AGENT_COLUMNS = [
    "t",
    "agent_id",
    "bus",
    "generation_kwh",
    "demand_kwh",
    "battery_kwh",
    "ev_kwh",
    "soc_kwh",
    "bought_p2p_kwh",
    "sold_p2p_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "imbalance_kwh",
    "imbalance_cost",
    "cost",
]
TRADE_COLUMNS = [
    "t",
    "buyer_id",
    "seller_id",
    "energy_kwh",
    "price_per_kwh",
    "seller_price_per_kwh",
    "grid_fee",
]


def test_files_and_columns(busy_run) -> None:
    out = busy_run["out"]
    for name in (
        "intervals.parquet",
        "agents.parquet",
        "trades.parquet",
        "kpis.json",
        "manifest.json",
        "report.html",
    ):
        assert (out / name).is_file(), name
    for name in ("buses.parquet", "lines.parquet", "households.parquet"):
        assert (out / name).is_file(), name
    assert set(INTERVAL_COLUMNS) <= set(busy_run["intervals"].columns)
    assert set(AGENT_COLUMNS) <= set(busy_run["agents"].columns)
    assert set(TRADE_COLUMNS) <= set(busy_run["trades"].columns)
    n_t = 3 * 96
    assert len(busy_run["intervals"]) == n_t
    assert len(busy_run["agents"]) == n_t * 24
    assert busy_run["intervals"]["timestamp"].dt.tz is not None
    assert busy_run["kpis"]["intervals"] == n_t
    manifest = busy_run["manifest"]
    assert manifest["seed"] == 5 and manifest["scenario"]["community"]["households"] == 24
    assert manifest["versions"]["numpy"]


def test_energy_balance_per_household_and_interval(busy_run) -> None:
    a = busy_run["agents"]
    lhs = metered_net_kwh(a)
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    # nobody imports and exports in the same interval
    assert ((a.grid_import_kwh > 1e-9) & (a.grid_export_kwh > 1e-9)).sum() == 0


def test_simulated_agents_have_no_imbalance(busy_run) -> None:
    """The batch households order exactly their net position: metered = committed, by the
    same settlement as live (imbalance is computed, not written as zero)."""
    a, iv = busy_run["agents"], busy_run["intervals"]
    assert a.imbalance_kwh.abs().max() < 1e-8
    assert a.imbalance_cost.abs().max() < 1e-8
    np.testing.assert_allclose(iv.imbalance_kwh, a.groupby("t").imbalance_kwh.sum(), atol=1e-9)


def utility_money(a: pd.DataFrame, mk) -> pd.Series:
    """What the utility is paid per row of agents.parquet: the committed exchange
    (export − import − imbalance) at retail / feed-in, plus the imbalance money."""
    committed = a.grid_export_kwh - a.grid_import_kwh - a.imbalance_kwh
    energy = (
        np.maximum(-committed, 0) * mk.retail_price_per_kwh
        - np.maximum(committed, 0) * mk.feed_in_price_per_kwh
    )
    return energy + a.imbalance_cost


def test_money_balance(busy_run) -> None:
    a, tr, mk = busy_run["agents"], busy_run["trades"], busy_run["scenario"].market
    utility = utility_money(a, mk)
    fees = tr.grid_fee.sum()
    assert fees == pytest.approx(tr.energy_kwh.sum() * mk.grid_fee_per_kwh)
    assert a.cost.sum() == pytest.approx(utility.sum() + fees, abs=1e-6)
    # per interval, too
    cost_t = a.groupby("t").cost.sum()
    utility_t = utility.groupby(a.t).sum()
    fee_t = tr.groupby("t").grid_fee.sum().reindex(cost_t.index, fill_value=0.0)
    gap = cost_t - utility_t - fee_t
    assert gap.abs().max() < 1e-6


def test_trades_add_up_to_positions_and_respect_the_band(busy_run) -> None:
    a, tr, mk = busy_run["agents"], busy_run["trades"], busy_run["scenario"].market
    assert len(tr) > 0 and (tr.energy_kwh > 0).all()
    assert (tr.buyer_id != tr.seller_id).all()
    bought = tr.groupby(["t", "buyer_id"], observed=True).energy_kwh.sum()
    sold = tr.groupby(["t", "seller_id"], observed=True).energy_kwh.sum()
    idx = a.set_index(["t", "agent_id"])
    np.testing.assert_allclose(
        idx.bought_p2p_kwh.loc[bought.index].to_numpy(), bought.to_numpy(), atol=QUANTUM
    )  # agents.parquet's energies: each within QUANTUM / 2 of the engine's
    np.testing.assert_allclose(
        idx.sold_p2p_kwh.loc[sold.index].to_numpy(), sold.to_numpy(), atol=QUANTUM
    )
    assert idx.bought_p2p_kwh.sum() == pytest.approx(tr.energy_kwh.sum())
    # every limit price lies in [feed-in, retail - fee], so every trade price does too
    lo, hi = mk.feed_in_price_per_kwh, mk.retail_price_per_kwh - mk.grid_fee_per_kwh
    assert tr.price_per_kwh.between(lo, hi).all()
    assert (tr.price_per_kwh == tr.seller_price_per_kwh).all()
    iv = busy_run["intervals"].set_index("t")
    p2p = tr.groupby("t").energy_kwh.sum()
    np.testing.assert_allclose(iv.p2p_kwh.loc[p2p.index], p2p, rtol=1e-12)


def test_battery_soc_within_limits(busy_run) -> None:
    a, hh = busy_run["agents"], busy_run["households"].set_index("agent_id")
    soc = a.pivot(index="t", columns="agent_id", values="soc_kwh")[hh.index]
    # agents.parquet's states: in steps of QUANTUM, within QUANTUM / 2 of the engine's
    assert (soc >= hh.battery_soc_min_kwh - QUANTUM).all().all()
    assert (soc <= hh.battery_soc_max_kwh + QUANTUM).all().all()
    has = hh.battery_kwh > 0
    assert (soc.loc[:, has].max() - soc.loc[:, has].min() > 0.5).all()  # batteries are used
    # power limit
    bat = a.pivot(index="t", columns="agent_id", values="battery_kwh")[hh.index]
    assert (bat.abs() <= hh.battery_power_kw * 0.25 + QUANTUM).all().all()


def test_every_ev_leaves_with_its_required_soc(busy_run, check_departures) -> None:
    scenario = busy_run["scenario"]
    assert check_departures(scenario, busy_run["agents"]) > 10
    hh = sample_households(household_spec(scenario), scenario.simulation.seed)
    ev_soc = busy_run["agents"].pivot(index="t", columns="agent_id", values="ev_soc_kwh")
    ev_soc = ev_soc[hh.agent_id].to_numpy()
    evs = hh.has_ev
    assert (ev_soc[:, evs] >= hh.ev_soc_min_kwh[evs] - 1e-6).all()
    assert (ev_soc[:, evs] <= hh.ev_capacity_kwh[evs] + 1e-6).all()
    ev_kwh = busy_run["agents"].pivot(index="t", columns="agent_id", values="ev_kwh")
    ev_kwh = ev_kwh[hh.agent_id].to_numpy()
    assert (np.abs(ev_kwh) <= hh.ev_charger_kw * 0.25 + 1e-9).all()
    assert (ev_kwh[:, ~hh.ev_v2g] >= -1e-12).all()  # only V2G cars discharge
    assert (ev_kwh[:, hh.ev_v2g] < -1e-6).any()  # and some do


def test_kpis_are_consistent(busy_run) -> None:
    k, iv, a = busy_run["kpis"], busy_run["intervals"], busy_run["agents"]
    assert 0 <= k["self_sufficiency"] <= 1 and 0 <= k["self_consumption"] <= 1
    assert 0 < k["p2p_share"] < 1
    assert k["p2p_kwh"] == pytest.approx(busy_run["trades"].energy_kwh.sum())
    assert k["community_cost"] == pytest.approx(a.cost.sum())
    assert k["baseline_cost"] == pytest.approx(a.baseline_cost.sum())
    assert k["community_savings"] > 0  # trading at prices inside the band saves money
    gen, cons = k["generation_kwh"], k["consumption_kwh"]
    assert gen - cons == pytest.approx(k["grid_export_kwh"] - k["grid_import_kwh"])
    assert k["violation_hours"] == pytest.approx((iv["violations"] > 0).sum() * 0.25)
    assert iv["v_min_pu"].between(0.9, 1.1).all() and iv["violations"].notna().all()
    assert k["curtailed_kwh"] == pytest.approx(iv["curtailed_kwh"].sum())


def test_report_is_offline_and_has_the_figures(busy_run) -> None:
    page = (busy_run["out"] / "report.html").read_text()
    # plotly.js is embedded; no script or stylesheet is fetched from anywhere
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    assert len(page) > 3_000_000
    assert page.count('class="plotly-graph-div"') >= 5
    for title in (
        "Clearing price and P2P volume",
        "Community energy flows",
        "Stored energy",
        "Household savings",
        "Supply and demand",
    ):
        assert title in page


def _tables(out) -> dict[str, pd.DataFrame]:
    t = read_results(out)
    names = ("intervals", "agents", "trades", "buses", "lines")
    return {k: t[k] for k in names} | {"kpis": t["kpis"]}


def test_grid_off_leaves_grid_columns_null_and_no_grid_files(tmp_path, busy_data) -> None:
    data = {
        **busy_data,
        "simulation": {**busy_data["simulation"], "days": 1},
        "grid": {"check": "off"},
    }
    run(load_scenario(data), tmp_path)
    tables = read_results(tmp_path)
    assert "buses" not in tables and "lines" not in tables
    iv = tables["intervals"]
    assert iv["v_min_pu"].isna().all() and iv["violations"].isna().all()
    assert (iv["curtailed_kwh"] == 0).all()
    assert tables["agents"]["bus"].isna().all()
    assert tables["kpis"]["violation_hours"] is None


def test_same_seed_same_files_other_seed_differs(tmp_path, busy_data) -> None:
    small = {
        **busy_data,
        "simulation": {**busy_data["simulation"], "days": 1},
        "community": {**busy_data["community"], "households": 10},
        "grid": {"feeder": "radial:10"},
    }
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        scenario = load_scenario(small, [f"simulation.seed={seed}"])
        run(scenario, tmp_path / label)
        runs[label] = _tables(tmp_path / label)
    for name in ("intervals", "agents", "trades", "buses", "lines"):
        pd.testing.assert_frame_equal(runs["a"][name], runs["b"][name])
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (
            tmp_path / "b" / f"{name}.parquet"
        ).read_bytes()
    assert runs["a"]["kpis"] == runs["b"]["kpis"]
    assert not runs["a"]["agents"].equals(runs["c"]["agents"])
    assert runs["a"]["kpis"] != runs["c"]["kpis"]
