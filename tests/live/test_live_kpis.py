"""A real live market's dashboard (``p2pgrid live … --dashboard``, in-process): its KPIs
and household table recomputed by hand from the market's own ledger."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live.ledger import read_ledger
from live.runner import DashboardOptions, run_live
from scenarios.config.loader import load_scenario
from scenarios.results.households_table import scenario_households

INTERVALS = 14  # midnight to 2 pm: night-time battery discharge, then PV and trade
SCENARIO = """
name = "live-kpis"
[simulation]
start = "2026-06-21"
days = 1
interval_minutes = 60
seed = 11
[community]
households = 8
pv_share = 0.75
battery_share = 0.5
ev_share = 0.25
[market]
retail_price_per_kwh = 0.30
feed_in_price_per_kwh = 0.07
grid_fee_per_kwh = 0.02
[grid]
feeder = "radial:8"
check = "pyomo"
[live]
close_when_complete = true
"""


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_live_dashboard_kpis_and_households_from_the_ledger(mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    state = tmp_path / "state"
    run = run_live(
        scenario,
        mosquitto.config,
        state,
        speed=0,
        intervals=INTERVALS,
        dashboard=DashboardOptions("127.0.0.1", 0),
        keep_dashboard=True,
    )
    try:
        base = f"http://127.0.0.1:{run.dashboard.port}/"
        kpis = get(f"{base}api/kpis")
        table = {r["agent_id"]: r for r in get(f"{base}api/households?limit=100")["items"]}
    finally:
        run.dashboard.stop()
    ledger = read_ledger(state)
    assert [rec["t"] for rec in ledger] == list(range(INTERVALS))
    s = [list(rec["settlements"].values()) for rec in ledger]

    def total(key: str) -> float:
        return sum(x[key] for interval in s for x in interval)

    imported = total("grid_import_kwh")
    consumption = total("demand_kwh") + total("battery_kwh") + total("ev_kwh")
    assert total("battery_kwh") != pytest.approx(0.0, abs=1e-3)  # storage moves energy
    assert kpis["intervals"] == INTERVALS
    assert kpis["consumption_kwh"] == pytest.approx(consumption, rel=1e-9)
    assert kpis["self_sufficiency"] == pytest.approx(1 - imported / consumption, rel=1e-9)
    generation, exported = total("generation_kwh"), total("grid_export_kwh")
    assert kpis["self_consumption"] == pytest.approx(1 - exported / generation, rel=1e-9)
    p2p = sum(rec["result"]["volume_kwh"] for rec in ledger)
    assert p2p > 0
    assert kpis["p2p_kwh"] == pytest.approx(p2p, rel=1e-9)
    assert kpis["grid_fees"] == pytest.approx(total("fees"), rel=1e-9)
    grids = [rec["result"]["grid"] for rec in ledger]
    assert kpis["recleared_intervals"] == sum(g["recleared"] for g in grids)
    assert kpis["violation_hours"] == sum(g["violations"] > 0 for g in grids) * 1.0
    assert kpis["losses_kwh"] == pytest.approx(sum(g["losses_kwh"] for g in grids), rel=1e-9)
    # the market's own columns of market/result, read back through the codec: the
    # operator's surplus and the mechanism's welfare, as kpis.json has them
    results = [rec["result"] for rec in ledger]
    surplus = sum(r["market_surplus"] for r in results)
    assert kpis["market_surplus"] == pytest.approx(surplus, rel=1e-9, abs=1e-12)
    welfare, best = sum(r["welfare"] for r in results), sum(r["optimal_welfare"] for r in results)
    assert best > 0 and kpis["welfare"] == pytest.approx(welfare, rel=1e-9)
    assert kpis["efficiency"] == pytest.approx(welfare / best, rel=1e-9)
    peak = max(sum(x["grid_import_kwh"] for x in interval) for interval in s)
    assert kpis["peak_import_kw"] == pytest.approx(peak / 1.0, rel=1e-9)  # 60-min intervals

    # each household's bill, and its metered energy with the utility alone
    bill: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for rec in ledger:
        for agent, x in rec["settlements"].items():
            net = x["sold_kwh"] - x["bought_kwh"] + x["grid_export_kwh"] - x["grid_import_kwh"]
            base_cost = -net * (0.30 if net < 0 else 0.07)
            bill[agent] = bill.get(agent, 0.0) + x["cost"]
            baseline[agent] = baseline.get(agent, 0.0) + base_cost
    savings = {a: baseline[a] - bill[a] for a in bill}
    assert kpis["community_cost"] == pytest.approx(sum(bill.values()), rel=1e-9)
    assert kpis["community_savings"] == pytest.approx(sum(savings.values()), rel=1e-9)
    assert kpis["household_savings_min"] == pytest.approx(min(savings.values()), abs=1e-12)

    static = scenario_households(scenario).set_index("agent_id")
    assert sorted(table) == sorted(static.index)
    for agent, row in table.items():
        assert row["bus"] == static.loc[agent, "bus"] and row["bus"] is not None
        assert row["pv_kwp"] == pytest.approx(static.loc[agent, "pv_kwp"])
        assert row["ev_kwh_capacity"] == pytest.approx(static.loc[agent, "ev_kwh"])
        assert row["bill"] == pytest.approx(bill[agent], abs=1e-12)
        assert row["savings"] == pytest.approx(savings[agent], abs=1e-12)
    assert np.isfinite([r["savings"] for r in table.values()]).all()
    # the cars' state of charge comes with the readings (ev_soc_kwh): none without a car
    ev = {a: r["ev_soc_kwh"] for a, r in table.items()}
    assert all(v is not None for v in ev.values()), ev
    for agent, soc in ev.items():
        capacity = static.loc[agent, "ev_kwh"]
        assert (0 < soc <= capacity + 1e-9) if capacity > 0 else soc == 0, (agent, soc)
