"""agents.parquet written narrow, ``[output] agents = "full" | "daily" | "none"``, and
the report from streamed aggregates (issue 18, item 5).

The numbers checked: the energy balance of every household-interval of the narrow file
on a feeder at its limits; the KPIs of the three modes against each other; the daily
file against the sums of the full one; the report's feeder summaries against the
whole-table pandas computation they replace (``pivot_table`` over all of buses.parquet
and lines.parquet, as the report did before); the heat figures' fleet numbers from the
run's accumulation against the ones read back from agents.parquet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from scenarios import load_scenario, run
from scenarios.engine.batch import simulate
from scenarios.errors import ScenarioError
from scenarios.reports import grid_tables as gt
from scenarios.reports.feeder_report import days_per_frame, map_intervals, worst_per_day
from scenarios.reports.heat import fleet_heat
from scenarios.results import blocks
from scenarios.results.agents_writer import AGENT_VALUE_COLUMNS, AgentsWriter
from scenarios.results.member_totals import member_totals
from scenarios.results.schema import (
    AGENTS_DAILY_FILE,
    AGENTS_FILE,
    QUANTUM,
    STATE_COLUMNS,
    columns,
    metered_net_kwh,
)

from .conftest import feeder_scenario

# every roof with 10-20 kWp, every home a battery and an EV, hourly intervals (an
# interval's energies up to several kWh, where float32's step is 2.4e-7 to 1e-6), the
# feeder checked and re-cleared
STRESSED = feeder_scenario(
    "2026-06-19", 30, name="stressed-narrow", days=2, seed=7, interval_minutes=60,
    pv_share=1.0, pv_kwp=[10.0, 20.0], battery_share=1.0, ev_share=1.0, v2g_share=0.5,
)  # fmt: skip
SMALL = feeder_scenario(
    "2026-01-12", 12, name="modes", days=2, pv_share=0.5, battery_share=0.5, ev_share=0.5,
    heat_pump_share=0.5, building_classes=["SFH.05"],
)  # fmt: skip


@pytest.fixture(scope="module")
def stressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stressed-narrow")
    run(load_scenario(STRESSED), out)
    return out


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    runs = {}
    for mode in ("full", "daily", "none"):
        out = tmp_path_factory.mktemp(f"agents-{mode}")
        run(load_scenario({**SMALL, "output": {"agents": mode}}), out)
        runs[mode] = out
    return runs


def test_the_narrow_file_balances_every_household_interval(stressed: Path) -> None:
    a = pd.read_parquet(stressed / AGENTS_FILE)
    assert len(a) == 30 * 48
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(metered_net_kwh(a) - rhs).max() < 1e-6
    # the case is stressed: kWh-sized terms, where float32 steps are 1e-7 and more
    assert a.generation_kwh.max() > 8 and a.ev_kwh.abs().max() > 3
    schema = pq.read_schema(stressed / AGENTS_FILE)
    for c in columns(AGENTS_FILE):
        if c.quantum:
            steps = a[c.name].to_numpy() / QUANTUM
            assert (steps == np.rint(steps)).all(), c.name
            assert str(schema.field(c.name).type) == "double"
        elif c.name in STATE_COLUMNS:
            assert str(schema.field(c.name).type) == "float"
    # the file's sums equal the intervals' (float64, unrounded) to far below 1e-6
    iv = pd.read_parquet(stressed / "intervals.parquet")
    for name in ("generation_kwh", "grid_import_kwh", "cost"):
        per_t = a.groupby("t")[name].sum().to_numpy()
        assert np.abs(per_t - iv[name].to_numpy()).max() < 30 * QUANTUM


def test_daily_and_none_give_the_kpis_of_full(modes: dict[str, Path]) -> None:
    kpis = {m: json.loads((out / "kpis.json").read_text()) for m, out in modes.items()}
    for mode in ("daily", "none"):
        for key, value in kpis["full"].items():
            got = kpis[mode][key]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-6), (mode, key)
            else:
                assert got == value, (mode, key)
    assert (modes["full"] / AGENTS_FILE).is_file()
    assert not (modes["full"] / AGENTS_DAILY_FILE).exists()
    assert (modes["daily"] / AGENTS_DAILY_FILE).is_file()
    assert not (modes["daily"] / AGENTS_FILE).exists()
    assert not any((modes["none"] / f).exists() for f in (AGENTS_FILE, AGENTS_DAILY_FILE))
    # the member totals read back from the daily file equal those from the full one
    # (each file within QUANTUM / 2 per value of the run's own)
    from_full = member_totals(modes["full"])
    from_daily = member_totals(modes["daily"])
    numeric = from_full.select_dtypes("number").columns
    np.testing.assert_allclose(from_daily[numeric], from_full[numeric], atol=1e-6)
    assert kpis["none"]["pv_members"] > 0 and kpis["none"]["heat_pump_members"] > 0


def test_the_daily_file_sums_the_full_one(modes: dict[str, Path]) -> None:
    full = pd.read_parquet(modes["full"] / AGENTS_FILE)
    daily = pd.read_parquet(modes["daily"] / AGENTS_DAILY_FILE)
    assert len(daily) == 12 * 2 and sorted(daily.day.unique()) == [0, 1]
    full["day"] = full.t // 96
    keys = ["day", "agent_id"]
    summed = [c.name for c in columns(AGENTS_FILE)[3:] if c.name not in STATE_COLUMNS]
    want = full.groupby(keys, observed=True)[summed].sum()
    got = daily.set_index(keys)[summed].loc[want.index]
    # full's values are each rounded to 2^-25: 96 of them per day
    np.testing.assert_allclose(got, want, atol=96 * QUANTUM)
    end = full[full.t % 96 == 95].set_index(keys)[list(STATE_COLUMNS)]
    np.testing.assert_allclose(
        daily.set_index(keys)[list(STATE_COLUMNS)].loc[end.index], end, rtol=1e-7
    )
    assert daily.bus.notna().all()


def _old_matrix(frame: pd.DataFrame, key: str, value: str, how: str, size: int) -> pd.DataFrame:
    """The report's computation before issue 18: the whole table in a pivot table."""
    grouped = frame.assign(_b=frame["t"].to_numpy() // size)
    table = grouped.pivot_table(
        index=key, columns="_b", values=value, aggfunc=how, observed=True, sort=False
    )
    return table.reindex(list(dict.fromkeys(frame[key].astype(str))))


def test_the_report_equals_the_whole_file_computation(
    modes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = modes["full"]
    iv = pd.read_parquet(out / "intervals.parquet")
    buses = pd.read_parquet(out / "buses.parquet")
    lines = pd.read_parquet(out / "lines.parquet")
    # batches that split intervals, and buckets of 5 intervals (192 intervals: 39 buckets)
    monkeypatch.setattr(blocks, "BATCH_ROWS", 7)
    monkeypatch.setattr(gt, "MAX_HEATMAP_COLUMNS", 40)
    picks = map_intervals(iv, (0.95, 1.05))
    assert len(picks) == 3  # the worst interval, each day's worst
    grid = gt.grid_tables(out / "buses.parquet", out / "lines.parquet", iv.timestamp, picks)
    assert grid.buses.order == list(dict.fromkeys(buses.bus.astype(str)))
    for table, frame, key, value, how in (
        (grid.buses, buses, "bus", "v_pu", "min"),
        (grid.lines, lines, "line", "loading_frac", "max"),
        (grid.buses, buses, "bus", "nodal_price_per_kwh", "mean"),
    ):
        old = _old_matrix(frame, key, value, how, 5)
        new = pd.DataFrame(table.bucketed[value], index=table.order)
        new = new.loc[:, new.notna().any(axis=0)]
        assert list(new.columns) == list(old.columns), value
        np.testing.assert_allclose(new.to_numpy(), old.to_numpy(), rtol=1e-12, err_msg=value)
    for i, t in enumerate(grid.picks):
        at = buses[buses.t == t].set_index("bus").loc[grid.buses.order]
        np.testing.assert_array_equal(grid.buses.picked["v_pu"][i], at.v_pu)
        np.testing.assert_array_equal(grid.buses.picked["p_kw"][i], at.p_kw)
        line = lines[lines.t == t].set_index("line").loc[grid.lines.order]
        np.testing.assert_array_equal(grid.lines.picked["loading_frac"][i], line.loading_frac)
    assert grid.buses.abs_max["p_kw"] == np.abs(buses.p_kw).max()


def test_the_heat_figures_come_from_the_run_not_its_file(
    modes: dict[str, Path], tmp_path: Path
) -> None:
    # the engine accumulates the fleet's numbers as it writes (no agents file needed);
    # read back from full's narrow file they agree to its float32 temperatures and
    # 2^-24 energies
    out = modes["full"]
    iv = pd.read_parquet(out / "intervals.parquet")
    hh = pd.read_parquet(out / "households.parquet")
    from_file = fleet_heat(out / AGENTS_FILE, hh, iv.outdoor_temp_c.to_numpy(), 0.25)
    engine = simulate(load_scenario({**SMALL, "output": {"agents": "none"}}), tmp_path)
    streamed = engine.fleet_heat
    assert streamed is not None and from_file.electric_kwh.sum() > 1
    for name in ("indoor_min_c", "indoor_median_c", "indoor_max_c"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(from_file, name), atol=1e-5)
    np.testing.assert_allclose(streamed.electric_kwh, from_file.electric_kwh, atol=12 * QUANTUM)
    np.testing.assert_allclose(streamed.heat_kwh, from_file.heat_kwh, atol=1e-6)
    report = (modes["none"] / "report.html").read_text(encoding="utf-8")
    assert "heat-pump households against the comfort band" in report


def test_a_bad_agents_value_is_refused_by_name() -> None:
    with pytest.raises(ScenarioError, match=r"output\.agents: 'hourly' is not one of full"):
        load_scenario({**SMALL, "output": {"agents": "hourly"}})
    with pytest.raises(ValueError, match=r"\[output\] agents = 'weekly'"):
        AgentsWriter(Path("."), np.array(["a"]), None, mode="weekly")  # type: ignore[arg-type]  # the wrong value is the test


def test_daily_rows_sum_windows_that_split_days(tmp_path: Path) -> None:
    # 3 households, 4 intervals a day, windows of 5 intervals: days cross windows, and
    # the last day (intervals 12-13) is partial
    rng = np.random.default_rng(1)
    n, n_t = 3, 14
    values = {c: rng.uniform(0, 3, (n_t, n)) for c in AGENT_VALUE_COLUMNS}
    writer = AgentsWriter(tmp_path, np.array(["a", "b", "c"]), None, "daily", intervals_per_day=4)
    for t0 in range(0, n_t, 5):
        writer.write_window(t0, {k: v[t0 : t0 + 5] for k, v in values.items()})
    writer.close()
    daily = pd.read_parquet(tmp_path / AGENTS_DAILY_FILE)
    assert daily.day.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert daily.agent_id.astype(str).tolist() == ["a", "b", "c"] * 4
    for day, (lo, hi) in enumerate(((0, 4), (4, 8), (8, 12), (12, 14))):
        rows = daily[daily.day == day]
        want = values["demand_kwh"][lo:hi].sum(axis=0)
        np.testing.assert_allclose(rows.demand_kwh, want, atol=QUANTUM / 2)
        np.testing.assert_allclose(rows.soc_kwh, values["soc_kwh"][hi - 1], atol=QUANTUM / 2)
    np.testing.assert_allclose(writer.totals.sums["cost"], values["cost"].sum(axis=0))
    assert writer.totals.intervals == n_t


def test_the_map_animation_has_at_most_31_frames() -> None:
    # a year of hourly intervals: 365 days in frames of 12 days, each its worst interval
    stamps = pd.date_range("2026-01-01", periods=365 * 24, freq="h", tz="UTC")  # 24 h days
    iv = pd.DataFrame({"timestamp": stamps})
    assert days_per_frame(iv) == 12 and days_per_frame(iv.iloc[: 31 * 24]) == 1
    stress = np.linspace(0, 1, len(iv)) % 0.1  # rises within each 0.1 step
    worst = worst_per_day(iv, stress, 12)
    assert len(worst) == 31
    for k, t in enumerate(worst):
        lo, hi = k * 12 * 24, min((k + 1) * 12 * 24, len(iv))
        assert t == lo + int(np.argmax(stress[lo:hi]))
