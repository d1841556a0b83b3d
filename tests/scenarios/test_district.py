"""District runs (issue 18): nested markets, the MV check, balances per level, and one
level equal to today's single-feeder runs."""

import json

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from grid.district_networks import load_district
from scenarios import load_scenario, run
from scenarios.engine.district import run_district
from scenarios.engine.district_feeder import (
    apply_district,
    feeder_dir,
    feeder_scenario,
    run_feeder,
)
from scenarios.engine.district_market import clear_levels
from scenarios.engine.district_mv import check_mv
from scenarios.engine.grid_stage import scenario_limits
from scenarios.engine.inputs import community_households, make_profiles
from scenarios.errors import ScenarioError
from scenarios.results.schema import INTERVALS_FILE as INTERVALS
from scenarios.results.schema import QUANTUM

BASE = {
    "simulation": {"start": "2026-06-19", "days": 1, "seed": 3},
    "community": {"households": 6, "profiles": "synthetic", "pv_share": 0.5,
                  "battery_share": 0.3, "ev_share": 0.3},
    "grid": {"feeder": "district:2x3", "check": "pyomo"},
    "market": {"levels": ["feeder", "district"], "district_grid_fee_per_kwh": 0.02},
}  # fmt: skip


def _scenario(**market):
    data = {**BASE, "market": {**BASE["market"], **market}}
    return load_scenario(data)


@pytest.fixture(scope="module")
def two_level(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    return _scenario(), run_district(_scenario(), out)


def _agents(out, fid):
    return pd.read_parquet(feeder_dir(out, fid) / "agents.parquet")


# --------------------------------------------------------------------- hand-checked
def _hand_parts(tmp_path):
    """LV feeder lv1: every household with 10 kWp PV; lv2: none. No storage, truthful
    bids (bid = retail - fee = 0.29, ask = feed-in = 0.08)."""
    common = {
        "simulation": {"start": "2026-06-19", "days": 1, "seed": 3},
        "grid": {"feeder": "district:2x3", "check": "pyomo"},
        "market": {"levels": ["feeder", "district"], "district_grid_fee_per_kwh": 0.02},
    }
    sunny = load_scenario({**common, "community": {
        "households": 6, "profiles": "synthetic", "strategy": "truthful", "pv_share": 1.0,
        "pv_kwp": [10.0, 10.0], "battery_share": 0.0, "ev_share": 0.0}})  # fmt: skip
    dark = load_scenario({**common, "community": {
        "households": 6, "profiles": "synthetic", "strategy": "truthful", "pv_share": 0.0,
        "battery_share": 0.0, "ev_share": 0.0}})  # fmt: skip
    return sunny, [run_feeder(sunny, 0, tmp_path), run_feeder(dark, 1, tmp_path)]


def test_district_moves_energy_between_feeders_by_hand(tmp_path):
    sunny, parts = _hand_parts(tmp_path)
    district = load_district("district:2x3")
    a, b = parts
    assert a.is_buy.sum() < len(a.t) and b.is_buy.all()  # lv2 only buys
    # lv2's three households bid the same price: one merged step per interval
    assert len(np.unique(b.t)) == len(b.t)
    slack_p = np.stack([a.slack_p_kw, b.slack_p_kw], axis=1)
    slack_q = np.stack([a.slack_q_kvar, b.slack_q_kvar], axis=1)
    mv = check_mv(district, slack_p, slack_q, scenario_limits(sunny))
    noon = 12 * 4 + 2  # 12:30
    # the transformers' flows point opposite ways: lv1 exports, lv2 imports
    assert slack_p[noon, 0] > 5.0 and slack_p[noon, 1] < -0.1
    level = clear_levels(parts, mv, 96, 0.02)
    iv = level.intervals
    # every bid is 0.29 and every ask 0.08: all of the smaller side trades at
    # (0.29 + 0.08) / 2 = 0.185
    both = (iv.offered_buy_kwh > 0) & (iv.offered_sell_kwh > 0)
    assert both.sum() >= 20
    expect = np.minimum(iv.offered_buy_kwh, iv.offered_sell_kwh)
    np.testing.assert_allclose(iv.district_kwh, np.where(both, expect, 0.0), atol=1e-9)
    np.testing.assert_allclose(iv.clearing_price_per_kwh[both], 0.185, atol=1e-12)
    # at noon lv1 sells what lv2 buys: lv2's whole residual demand
    lv2 = b.energy_kwh[b.t == noon].sum()
    assert iv.district_kwh[noon] == pytest.approx(lv2, abs=1e-9)
    # the MV line between the two stations carries lv2's import from lv1:
    # mv -> m1s1 (lv1) -> m1s2 (lv2); the HV/MV transformer carries the rest
    rated = 3**0.5 * 20.0 * 0.362 * 1000.0
    assert mv.max_loading_frac[noon] * rated >= -slack_p[noon, 1] * 0.99
    # the district's fills booked back: lv2's households import less by exactly that
    before = _agents(tmp_path, "lv2").copy()
    sellers_before = _agents(tmp_path, "lv1").copy()
    for p, f, pr in zip(parts, level.filled_kwh, level.price_per_kwh, strict=True):
        apply_district(p.feeder_id, f, pr, 0.02, tmp_path)
    after = _agents(tmp_path, "lv2")
    # pro rata within a step: where lv1 cannot cover lv2, every lv2 household gets the
    # same fraction of its residual
    orders = pd.read_parquet(feeder_dir(tmp_path, "lv2") / "district_orders.parquet")
    fills = pd.read_parquet(feeder_dir(tmp_path, "lv2") / "district_fills.parquet")
    short = iv.t[both & (iv.offered_sell_kwh < iv.offered_buy_kwh - 1e-6)]
    assert len(short) > 0
    m = orders.merge(fills, on=["t", "agent_id"], suffixes=("", "_fill"))
    m = m[m.t.isin(short)]
    frac = m.energy_kwh_fill / m.energy_kwh
    np.testing.assert_allclose(frac.groupby(m.t).std(ddof=0), 0.0, atol=1e-12)
    at = after.t == noon
    # agents.parquet holds energies and money in QUANTUM steps: a sum over the feeder's
    # households is good to half a step per household and column
    steps = len(before.agent_id.unique()) * QUANTUM
    drop = before.grid_import_kwh[at].sum() - after.grid_import_kwh[at].sum()
    assert drop == pytest.approx(lv2, abs=steps)
    # ... and pay 0.185 + 0.02 instead of retail 0.32 for it
    saved = before.cost[at].sum() - after.cost[at].sum()
    assert saved == pytest.approx(lv2 * (0.32 - 0.185 - 0.02), abs=steps)
    # lv1's sellers get 0.185 instead of feed-in 0.08 for the same kWh, export less
    sellers = _agents(tmp_path, "lv1")
    at1 = sellers.t == noon
    gained = sellers_before.cost[at1].sum() - sellers.cost[at1].sum()
    assert gained == pytest.approx(lv2 * (0.185 - 0.08), abs=steps)
    exported = sellers_before.grid_export_kwh[at1].sum() - sellers.grid_export_kwh[at1].sum()
    assert exported == pytest.approx(lv2, abs=steps)


def test_mv_split_when_a_line_breaks():
    district = load_district("district:2x3")
    from grid.limits import Limits

    # lv2 (at m1s2) imports 20 MW: 1.6 x the 12.5 MVA rating of both MV cable sections

    slack_p = np.array([[0.0, -20000.0]])
    mv = check_mv(district, slack_p, np.zeros((1, 2)), Limits(0.95, 1.05))
    assert mv.max_loading_frac[0] == pytest.approx(20000.0 / (3**0.5 * 20 * 362), rel=0.05)
    assert mv.violations[0] >= 2
    # lv1 hangs below mv-m1s1, lv2 also below m1s1-m1s2 (its deepest broken line): two zones
    lines = list(district.mv.lines["line"])
    assert mv.zone[0].tolist() == [lines.index("mv-m1s1") + 1, lines.index("m1s1-m1s2") + 1]


# --------------------------------------------------------------------- balances
def test_energy_and_money_balance_per_level(two_level):
    _, result = two_level
    out = result.out_dir
    d_trades = pd.read_parquet(out / "district" / "trades.parquet")
    d_iv = pd.read_parquet(out / "district" / "intervals.parquet")
    assert result.kpis["district_kwh"] > 0
    # district level: per interval bought == sold, buyers' payments == sellers' receipts
    side = d_trades.groupby(["t", "side"], observed=True).energy_kwh.sum().unstack(fill_value=0)
    np.testing.assert_allclose(side["buy"], side["sell"], atol=1e-6)
    value = d_trades.energy_kwh * d_trades.price_per_kwh
    money = value.groupby(d_trades.side, observed=True).sum()
    assert money["buy"] == pytest.approx(money["sell"], abs=1e-6)
    assert d_iv.district_kwh.sum() == pytest.approx(side["buy"].sum(), abs=1e-6)
    total_cost = utility = fees = surplus = 0.0
    for fid in ("lv1", "lv2"):
        a = _agents(out, fid)
        iv = pd.read_parquet(feeder_dir(out, fid) / "intervals.parquet")
        tr = pd.read_parquet(feeder_dir(out, fid) / "trades.parquet")
        # feeder level: what its trades move, both sides
        assert tr.energy_kwh.sum() == pytest.approx(iv.p2p_kwh.sum(), abs=1e-6)
        # utility level, per household and interval: the energy identity after both markets
        devices = a.battery_kwh + a.ev_kwh + a.heat_pump_kwh
        lhs = a.generation_kwh - a.demand_kwh - devices
        rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
        np.testing.assert_allclose(lhs, rhs, atol=1e-6)
        assert (a.grid_import_kwh >= -1e-9).all() and (a.grid_export_kwh >= -1e-9).all()
        # bought P2P over both levels = feeder trades + district purchases
        d_buy = d_trades[(d_trades.feeder == fid) & (d_trades.side == "buy")].energy_kwh.sum()
        # the district's fills of this feeder, allocated to its households, add up to them
        fills = pd.read_parquet(feeder_dir(out, fid) / "district_fills.parquet")
        mine = d_trades[d_trades.feeder == fid]
        np.testing.assert_allclose(
            fills.groupby(["t", "side"], observed=True).energy_kwh.sum().to_numpy(),
            mine.groupby(["t", "side"], observed=True).energy_kwh.sum().to_numpy(),
            atol=1e-9,
        )
        assert fills.grid_fee.sum() == pytest.approx(mine.grid_fee.sum(), abs=1e-9)
        assert a.bought_p2p_kwh.sum() == pytest.approx(tr.energy_kwh.sum() + d_buy, abs=1e-6)
        np.testing.assert_allclose(
            iv.grid_import_kwh, a.groupby("t").grid_import_kwh.sum(), atol=1e-6
        )
        total_cost += a.cost.sum()
        utility += (a.grid_import_kwh * 0.32 - a.grid_export_kwh * 0.08).sum()
        utility += a.imbalance_cost.sum()
        fees += tr.grid_fee.sum()
        surplus += iv.market_surplus.sum()
    fees += d_trades.grid_fee.sum()
    assert d_trades.grid_fee.sum() == pytest.approx(0.02 * d_iv.district_kwh.sum(), abs=1e-9)
    # money: the households pay the utility, the grid fees of both levels, the surplus
    assert total_cost == pytest.approx(utility + fees + surplus, abs=1e-6)
    assert result.kpis["cost"] == pytest.approx(total_cost, abs=1e-6)


def test_dataset_reads_as_one_table(two_level):
    _, result = two_level
    out = result.out_dir
    files = sorted(str(p) for p in out.glob("feeder=*/agents.parquet"))
    table = ds.dataset(files, partitioning="hive", partition_base_dir=str(out)).to_table()
    frame = table.to_pandas()
    assert set(frame.feeder.astype(str)) == {"lv1", "lv2"}
    assert len(frame) == 6 * 96
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(
        f"select count(*) from read_parquet('{out}/feeder=*/agents.parquet', "
        "hive_partitioning = true)"
    ).fetchall()[0][0]
    assert n == 6 * 96


# --------------------------------------------------------------------- one sky
def test_feeders_share_the_districts_weather():
    """Feeder k draws its households from seed + k, but its clouds and air temperature
    from the district's weather seed: the same roofs give the same PV on every feeder.
    (Each feeder had its own sky before: on district:4x60 with 10 kWp on every roof, two
    June days, the feeders' PV spread from 2,013 to 4,196 kWh.)"""
    scenario = load_scenario({**BASE, "simulation": {**BASE["simulation"], "days": 3}})
    a, b = (feeder_scenario(scenario, k, fid, 3) for k, fid in enumerate(("lv1", "lv2")))
    assert (a.simulation.seed, b.simulation.seed) == (3, 4)
    roofs = community_households(a)
    assert roofs.pv_kwp.sum() > 0
    wa, wb = (make_profiles(s, roofs).window(0, 3) for s in (a, b))
    np.testing.assert_array_equal(wa.generation_kwh, wb.generation_kwh)
    np.testing.assert_array_equal(wa.outdoor_temp_c, wb.outdoor_temp_c)
    assert not np.array_equal(wa.demand_kwh, wb.demand_kwh)  # the households' own draws
    # a single run's weather seed is its seed unless set, and moves only the weather
    own = load_scenario({**BASE, "simulation": {**BASE["simulation"], "days": 3, "seed": 4}})
    assert own.simulation.sky_seed == 4 and b.simulation.sky_seed == 3
    wo = make_profiles(own, roofs).window(0, 3)
    np.testing.assert_array_equal(wo.demand_kwh, wb.demand_kwh)
    assert not np.array_equal(wo.generation_kwh, wb.generation_kwh)


# --------------------------------------------------------------------- one level == today
def test_one_level_equals_single_feeder_runs(tmp_path):
    scenario = _scenario(levels=["feeder"])
    run_district(scenario, tmp_path / "district")
    assert not (tmp_path / "district" / "district" / "trades.parquet").exists()
    for k, fid in enumerate(("lv1", "lv2")):
        data = {**BASE, "market": {"district_grid_fee_per_kwh": 0.02}}
        # feeder k's households from seed 3 + k, under the district's weather (seed 3)
        data["simulation"] = {**BASE["simulation"], "seed": 3 + k, "weather_seed": 3}
        data["community"] = {**BASE["community"], "households": 3}
        data["grid"] = {"feeder": "radial:3", "check": "pyomo"}
        single = tmp_path / f"single{k}"
        run(load_scenario(data), single)
        for name in ("agents", "trades", "intervals", "buses", "lines", "households"):
            got = pd.read_parquet(feeder_dir(tmp_path / "district", fid) / f"{name}.parquet")
            want = pd.read_parquet(single / f"{name}.parquet")
            pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_runner_points_to_the_district_engine(tmp_path):
    with pytest.raises(ScenarioError, match="run_district"):
        run(_scenario(), tmp_path)


def test_levels_need_a_district():
    with pytest.raises(ScenarioError, match="needs a district"):
        load_scenario({"market": {"levels": ["feeder", "district"]}})
    with pytest.raises(ScenarioError, match="levels"):
        load_scenario({"market": {"levels": ["district"]}})
    # the district books its fills into each feeder's agents.parquet
    with pytest.raises(ScenarioError, match=r"a district run needs output\.agents = 'full'"):
        load_scenario({**BASE, "output": {"agents": "daily"}})


# --------------------------------------------------------------------- Dask
def test_two_dask_workers_equal_one_process(tmp_path):
    pytest.importorskip("distributed")
    scenario = _scenario()
    one = run_district(scenario, tmp_path / "one")
    two = run_district(scenario, tmp_path / "two", workers=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.parquet"))
    assert len(files) == 2 * 8 + 3  # per feeder 6 tables + orders and fills, district 3
    for rel in files:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "one" / rel),
            pd.read_parquet(tmp_path / "two" / rel),
            check_exact=True,
        )
    assert one.kpis == two.kpis


def test_p2pgrid_run_prints_kpis_per_level(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    library = Path(__file__).resolve().parents[2] / "scenarios" / "library" / "district.toml"
    out = tmp_path / "d"
    proc = subprocess.run(
        [sys.executable, "-m", "p2pgrid.cli", "run", str(library), "--out", str(out), "-q",
         "--days", "1", "--set", "community.households=6", "--set", "grid.feeder=district:2x3"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for key in ("feeder_p2p_kwh", "district_kwh", "utility_import_kwh", "mv_violation_intervals"):
        assert key in proc.stdout
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["feeders"] == 2 and kpis["levels"] == ["feeder", "district"]
    assert sorted(p.name for p in out.iterdir()) == [
        "district", "feeder=lv1", "feeder=lv2", "kpis.json", "manifest.json", "report.html"
    ]  # fmt: skip
    assert f"report:{out / 'report.html'}" in "".join(proc.stdout.split())


def test_district_kpis_in_january_with_22_kw_chargers(tmp_path):
    """The stressed winter case: an EV with a 22 kW charger in every household, January.
    The district's self-sufficiency is over consumption (demand and the devices' uptake,
    as a single run's), not demand alone (-42 % on district:4x60 before), and its savings
    count the storage's end state as a single run's do (from the feeders' kpis.json)."""
    data = {**BASE, "simulation": {**BASE["simulation"], "start": "2027-01-12"}}
    data["community"] = {**BASE["community"], "ev_share": 1.0, "ev_charger_kw": 22.0,
                         "battery_share": 0.5, "pv_share": 1.0}  # fmt: skip
    kpis = run_district(load_scenario(data), tmp_path).kpis
    feeders = [pd.read_parquet(feeder_dir(tmp_path, f) / INTERVALS) for f in ("lv1", "lv2")]
    iv = pd.concat(feeders)
    demand, imported = iv.demand_kwh.sum(), iv.grid_import_kwh.sum()
    consumption = demand + iv.battery_kwh.sum() + iv.ev_kwh.sum() + iv.heat_pump_kwh.sum()
    assert iv.ev_kwh.sum() > 0.3 * demand  # the chargers draw a third of the homes' demand
    assert kpis["consumption_kwh"] == pytest.approx(consumption, rel=1e-12)
    assert 0.0 <= kpis["self_sufficiency"] <= 1.0
    assert kpis["self_sufficiency"] == pytest.approx(1 - imported / consumption, rel=1e-12)
    p2p = iv.p2p_kwh.sum() + kpis["district_kwh"]
    assert kpis["p2p_share"] == pytest.approx(p2p / (p2p + imported), rel=1e-12)
    # the savings count the storage's end state: two June days, a battery in every home
    data["simulation"]["start"] = "2026-06-15"
    data["simulation"]["days"] = 2
    data["community"] = {**data["community"], "battery_share": 1.0, "ev_share": 0.0,
                         "pv_share": 0.5, "strategy": "zic"}  # fmt: skip
    kpis = run_district(load_scenario(data), tmp_path / "june").kpis
    stored, saved = 0.0, 0.0
    for f in ("lv1", "lv2"):
        own = json.loads((feeder_dir(tmp_path / "june", f) / "kpis.json").read_text())
        iv = pd.read_parquet(feeder_dir(tmp_path / "june", f) / INTERVALS)
        stored += own["end_stored_energy_value"]
        saved += iv.baseline_cost.sum() - iv.cost.sum() + own["end_stored_energy_value"]
    assert abs(stored) > 0.01  # the batteries end elsewhere than the baseline's
    assert kpis["end_stored_energy_value"] == pytest.approx(stored, rel=1e-12)
    assert kpis["community_savings"] == pytest.approx(saved, rel=1e-12)


def test_too_few_households_for_the_feeders(tmp_path):
    scenario = load_scenario({**BASE, "community": {"households": 1}})
    with pytest.raises(ScenarioError, match="give every feeder one"):
        run_district(scenario, tmp_path)


def test_district_without_grid_check(tmp_path):
    data = {**BASE, "grid": {"feeder": "district:2x3", "check": "off"}}
    result = run_district(load_scenario(data), tmp_path)
    assert "mv_violation_intervals" not in result.kpis
    iv = pd.read_parquet(tmp_path / "district" / "intervals.parquet")
    assert "mv_violations" not in iv and result.kpis["district_kwh"] > 0
    assert not (tmp_path / "district" / "transformers.parquet").exists()
    for fid in ("lv1", "lv2"):
        a = _agents(tmp_path, fid)
        lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh - a.heat_pump_kwh
        rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
        np.testing.assert_allclose(lhs, rhs, atol=1e-6)
