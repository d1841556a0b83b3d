"""The live dashboard's KPIs are kpis.json's (scenarios.kpis.compute), on hand-solved numbers."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from live.dashboard.devices import DEVICE_COLUMNS, FLAG_COLUMNS
from live.dashboard.market_source import MarketSource
from live.dashboard.rundata import read_run
from live.dashboard.server import start_dashboard
from live.dashboard.sources import RunSource
from scenarios import load_scenario
from scenarios.results.households_table import scenario_households
from scenarios.results.schema import HOUSEHOLDS_FILE, names

TARIFFS = {"retail_price_per_kwh": 0.30, "feed_in_price_per_kwh": 0.10, "currency": "EUR"}


def settlement(t: int, **values: float) -> dict[str, Any]:
    base = dict.fromkeys(
        ("bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh", "fees", "cost"), 0.0
    )
    return {"v": 1, "t": t, **base, **values}


def two_intervals() -> MarketSource:
    """Two households, two 15-minute intervals, numbers chosen to be solved by hand.

    t=0: a has 4 kWh PV, 1 kWh demand, charges its battery 1 kWh and sells 2 kWh to b
    at 0.20 (+0.02 fee, paid by b); b has 3 kWh demand and imports 1 kWh.
    t=1: a has 0 PV, 2 kWh demand, discharges 0.5 kWh and imports 1.5 kWh; b exports 0.5 kWh
    of its 0.5 kWh PV (no demand).
    """
    src = MarketSource("c", market=TARIFFS, interval_minutes=15)
    src.interval(
        {"t": 0, "price_per_kwh": 0.20, "volume_kwh": 2.0, "trades": []},
        {
            "a": settlement(
                0, generation_kwh=4, demand_kwh=1, battery_kwh=1, ev_kwh=0, sold_kwh=2, cost=-0.4
            ),
            "b": settlement(
                0,
                generation_kwh=0,
                demand_kwh=3,
                battery_kwh=0,
                ev_kwh=0,
                bought_kwh=2,
                grid_import_kwh=1,
                fees=0.04,
                cost=0.4 + 0.04 + 0.30,
            ),
        },
        {},
    )
    src.interval(
        {"t": 1, "price_per_kwh": None, "volume_kwh": 0.0, "trades": []},
        {
            "a": settlement(
                1,
                generation_kwh=0,
                demand_kwh=2,
                battery_kwh=-0.5,
                ev_kwh=0,
                grid_import_kwh=1.5,
                cost=0.45,
            ),
            "b": settlement(
                1,
                generation_kwh=0.5,
                demand_kwh=0,
                battery_kwh=0,
                ev_kwh=0,
                grid_export_kwh=0.5,
                cost=-0.05,
            ),
        },
        {},
    )
    return src


def test_live_kpis_hand_solved() -> None:
    k = two_intervals().kpis(1)
    # consumption = demand 6 + battery net 0.5 = 6.5 kWh; imports 1 + 1.5 = 2.5 kWh
    assert k["consumption_kwh"] == pytest.approx(6.5)
    assert k["self_sufficiency"] == pytest.approx(1 - 2.5 / 6.5)  # not 1 − 2.5 / 6
    assert k["self_consumption"] == pytest.approx(1 - 0.5 / 4.5)
    assert k["p2p_share"] == pytest.approx(2 / (2 + 2.5))
    assert k["mean_price_per_kwh"] == pytest.approx(0.20)
    assert k["peak_import_kw"] == pytest.approx(1.5 / 0.25)
    assert k["grid_fees"] == pytest.approx(0.04)
    # costs: a −0.4 + 0.45 = 0.05, b 0.74 − 0.05 = 0.69; baseline with the utility
    # alone: a sells 2 → −0.2, imports 1.5 → +0.45: 0.25; b imports 3 → 0.9, exports
    # 0.5 → −0.05: 0.85
    assert k["community_cost"] == pytest.approx(0.74)
    assert k["baseline_cost"] == pytest.approx(1.10)
    assert k["community_savings"] == pytest.approx(0.36)
    assert k["household_savings_min"] == pytest.approx(0.16)  # b: 0.85 − 0.69
    assert k["household_savings_max"] == pytest.approx(0.20)  # a: 0.25 − 0.05
    assert k["households_better_off_frac"] == 1.0
    assert k["violation_hours"] is None  # the results carried no grid
    # the first interval alone: consumption 4 + 1 (battery) = 5, import 1
    k0 = two_intervals().kpis(0)
    assert k0["self_sufficiency"] == pytest.approx(1 - 1 / 5)
    assert k0["community_savings"] == pytest.approx((-0.2 + 0.9) - (-0.4 + 0.74))


def test_live_household_table_has_bills_baselines_and_savings() -> None:
    hh = two_intervals().households(1).set_index("agent_id")
    assert hh.loc["a", "bill"] == pytest.approx(0.05)
    assert hh.loc["a", "baseline_bill"] == pytest.approx(0.25)
    assert hh.loc["b", "savings"] == pytest.approx(0.16)
    assert hh.loc["a", "cost"] == pytest.approx(0.45)  # the interval's own bill
    # the metered balance as a run's table has it: a at t=1 generates 0, uses 2 and
    # discharges 0.5 (battery -0.5): 0 - 2 + 0.5 = -1.5 = its import; b exports 0.5
    assert hh.loc["a", "net_kwh"] == pytest.approx(-1.5)
    assert hh.loc["b", "net_kwh"] == pytest.approx(0.5)


def test_without_tariffs_there_is_no_baseline() -> None:
    src = MarketSource("c", market={}, interval_minutes=15)
    src.interval(
        {"t": 0, "price_per_kwh": None, "volume_kwh": 0.0},
        {
            "a": settlement(
                0,
                generation_kwh=0,
                demand_kwh=1,
                battery_kwh=0,
                ev_kwh=0,
                grid_import_kwh=1,
                cost=0.3,
            )
        },
        {},
    )
    k = src.kpis(0)
    assert k["self_sufficiency"] == 0.0 and k["community_cost"] == pytest.approx(0.3)
    assert k["community_savings"] is None and k["savings_gini"] is None
    assert pd.isna(src.households(0).loc[0, "savings"])


def test_scenario_households_are_the_runs(run_dir: Path) -> None:
    """The live table's buses and devices come from the scenario as a run samples and
    places them (households.parquet of the same scenario)."""
    written = pd.read_parquet(run_dir / "households.parquet")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    static = written.drop(columns=list(names(HOUSEHOLDS_FILE)))  # the run's scores after them
    pd.testing.assert_frame_equal(
        scenario_households(load_scenario(manifest["scenario"])), static, check_dtype=False
    )
    src = MarketSource("c", market=TARIFFS, households=written)
    table = src.households(0).set_index("agent_id")
    assert list(table.index) == list(written["agent_id"])  # every household, before any data
    w = written.set_index("agent_id")
    assert (table["bus"] == w["bus"]).all()
    assert table["pv_kwp"].tolist() == w["pv_kwp"].tolist()
    assert table["ev_kwh_capacity"].tolist() == w["ev_kwh"].tolist()
    assert table["ev_v2g"].tolist() == w["ev_v2g"].tolist()
    assert table["heat_pump_kw"].tolist() == w["hp_power_kw"].tolist()
    # the finished run's table shows the same static columns (one mapping, devices.py)
    ran = read_run(run_dir).household_table(0).set_index("agent_id")
    for column in ("bus", *DEVICE_COLUMNS, *FLAG_COLUMNS):
        pd.testing.assert_series_equal(ran[column], table[column], check_dtype=False)


# the KPI cards the page draws (dashboard.js KPIS)
SHOWN = (
    "self_sufficiency",
    "self_consumption",
    "p2p_share",
    "p2p_kwh",
    "community_savings",
    "savings_frac",
    "mean_price_per_kwh",
    "violation_hours",
    "curtailed_kwh",
    "peak_import_kw",
    "intervals",
)


def shown_kpis(pg: Any) -> dict[str, float | None]:
    cards = pg.evaluate(
        "[...document.querySelectorAll('#kpis .kpi')].map(e => [e.id, e.dataset.value])"
    )
    return {i.removeprefix("kpi-"): (float(v) if v != "" else None) for i, v in cards}


@pytest.mark.parametrize("replay", [None, 50.0])
def test_the_page_shows_kpis_json(
    run_dir: Path, page: Any, wait_js: Any, replay: float | None
) -> None:
    """Browsing a run, and at the end of its replay, every KPI card equals kpis.json."""
    kpis = json.loads((run_dir / "kpis.json").read_text(encoding="utf-8"))
    run = read_run(run_dir)
    source = RunSource(run, replay)
    server = start_dashboard(source, port=0)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        last = run.n_intervals - 1
        wait_js(pg, f"__p2p.latestT === {last}", timeout=60)
        wait_js(pg, f"document.getElementById('kpi-intervals')?.dataset.value === '{last + 1}'")
        shown = shown_kpis(pg)
        assert set(shown) == {k for k in SHOWN if k in kpis}
        for key, value in shown.items():
            if kpis[key] is None:
                assert value is None, key
            else:
                assert value == pytest.approx(kpis[key], rel=1e-12), key
    finally:
        server.stop()
