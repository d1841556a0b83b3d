"""The report's time series of a long run in time buckets (issue 18 item 5): at most
2,000 points whatever the run's length, with envelopes that hide no violation, checked
against pandas groupby on the same data; a short run drawn interval by interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scenarios.reports.buckets import MAX_POINTS, Buckets
from scenarios.reports.energy import flows_figure
from scenarios.reports.grid_tables import grid_tables
from scenarios.reports.html_page import report_template
from scenarios.reports.run import grid_figures

N = 100_000  # 5-min intervals: 347 days
BUSES = ["b0", "b1", "b2"]
SPIKE_T, SPIKE_BUS, SPIKE_V = 54_321, "b1", 1.0712  # one interval above the 1.05 band
PER = 72  # 6 h of 5-min intervals: the shortest bucket giving <= 2,000 buckets (1,389)
HEAT_PER = -(-N // 700)  # the heatmaps' buckets


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path, Path]:
    rng = np.random.default_rng(7)
    out = tmp_path_factory.mktemp("long-run")
    t = np.repeat(np.arange(N), len(BUSES))
    v = rng.uniform(0.96, 1.03, len(t))
    v[SPIKE_T * len(BUSES) + BUSES.index(SPIKE_BUS)] = SPIKE_V
    buses = pa.table(
        {
            "t": t,
            "bus": pa.array(BUSES * N).dictionary_encode(),
            "v_pu": v,
            "p_kw": rng.normal(0, 3, len(t)),
            "nodal_price_per_kwh": np.full(len(t), 0.2),
        }
    )
    pq.write_table(buses, out / "buses.parquet", row_group_size=40_000)
    lines = pa.table(
        {"t": np.arange(N), "line": ["l0"] * N, "loading_frac": rng.uniform(0, 0.9, N),
         "p_kw": rng.normal(0, 10, N)}
    )  # fmt: skip
    pq.write_table(lines, out / "lines.parquet", row_group_size=40_000)
    frame = buses.to_pandas()
    per_t = frame.groupby("t")["v_pu"]
    intervals = pd.DataFrame(
        {
            "t": np.arange(N),
            "timestamp": pd.date_range("2026-01-05", periods=N, freq="5min", tz="Europe/Berlin"),
            "v_min_pu": per_t.min().to_numpy(),
            "v_max_pu": per_t.max().to_numpy(),
            "max_line_loading_frac": lines["loading_frac"].to_numpy(),
            "curtailed_kwh": np.where(rng.random(N) < 0.01, rng.uniform(0, 2, N), 0.0),
            "violations_before_reclear": (np.arange(N) == SPIKE_T).astype(int),
            "violations_background": np.zeros(N, dtype=int),
        }
    )
    return intervals, out / "buses.parquet", out / "lines.parquet"


def test_buckets_are_the_shortest_listed_length_within_the_limit() -> None:
    b = Buckets.of(pd.Series(pd.date_range("2026-01-05", periods=N, freq="5min")))
    assert (b.size, b.count) == (PER, 1389)
    assert b.note("max") == "5-min intervals, max per 6 h"
    year = Buckets.of(pd.Series(range(35_040)), 0.25)  # a year of 15-min intervals
    assert (year.size, year.count, year.per()) == (24, 1460, "per 6 h")
    assert not Buckets.of(pd.Series(range(MAX_POINTS)), 0.25).bucketed
    # by hand: 10 values in buckets of 4, the last bucket short; an all-NaN bucket is NaN
    small = Buckets(10, 4, 1.0)
    values = np.array([1, 5, np.nan, 2, np.nan, np.nan, np.nan, np.nan, 7, 3])
    np.testing.assert_array_equal(small.reduce(values, "max"), [5, np.nan, 7])
    np.testing.assert_array_equal(small.reduce(values, "min"), [1, np.nan, 3])
    np.testing.assert_array_equal(small.reduce(values, "sum"), [8, np.nan, 10])
    np.testing.assert_array_equal(small.reduce(values, "mean"), [8 / 3, np.nan, 5])


def test_one_interval_over_the_band_shows_in_the_bucketed_figures(long_run) -> None:
    intervals, buses, lines = long_run
    grid = grid_tables(buses, lines, intervals["timestamp"])
    voltage, band, _loading, curtailment, _nodal = grid_figures(intervals, grid, 0.95, 1.05, "EUR")
    high = np.asarray(band.data[0].y)
    assert len(high) == 1389 <= MAX_POINTS
    assert np.flatnonzero(high > 1.05).tolist() == [SPIKE_T // PER]
    assert high[SPIKE_T // PER] == SPIKE_V
    first = intervals["timestamp"][SPIKE_T // PER * PER]  # plotly keeps the wall time
    assert pd.Timestamp(band.data[0].x[SPIKE_T // PER]) == first.tz_localize(None)
    assert "5-min intervals" in band.layout.title.text and "per 6 h" in band.data[0].name
    # the feeder heatmap: that bus's bucket shows the spike, not the bucket's lowest voltage
    z = np.asarray(voltage.data[0].z)
    assert z.shape == (3, 700)
    assert np.argwhere(z > 1.05).tolist() == [[BUSES.index(SPIKE_BUS), SPIKE_T // HEAT_PER]]
    assert z[BUSES.index(SPIKE_BUS), SPIKE_T // HEAT_PER] == SPIKE_V
    broken = np.asarray(curtailment.data[-1].y)
    assert np.flatnonzero(broken).tolist() == [SPIKE_T // PER]


def test_bucket_envelopes_equal_a_pandas_groupby(long_run) -> None:
    intervals, buses, lines = long_run
    grid = grid_tables(buses, lines, intervals["timestamp"])
    _voltage, band, loading, curtailment, _nodal = grid_figures(intervals, grid, 0.95, 1.05, "EUR")
    by = intervals.groupby(intervals["t"] // PER)
    np.testing.assert_array_equal(band.data[0].y, by["v_max_pu"].max().to_numpy())
    np.testing.assert_array_equal(band.data[1].y, by["v_min_pu"].min().to_numpy())
    np.testing.assert_allclose(curtailment.data[0].y, by["curtailed_kwh"].sum(), rtol=1e-12)
    frame = pd.read_parquet(buses)
    cells = frame.groupby([frame["bus"].astype(str), frame["t"] // HEAT_PER])["v_pu"]
    for key, how in (("v_pu", "min"), ("v_pu_max", "max")):
        expected = cells.agg(how).unstack().loc[BUSES].to_numpy()
        np.testing.assert_array_equal(grid.buses.bucketed[key], expected)
    line_max = pd.read_parquet(lines).groupby(np.arange(N) // HEAT_PER)["loading_frac"].max()
    np.testing.assert_allclose(np.asarray(loading.data[0].z)[0], 100 * line_max.to_numpy())
    flows = flows_figure(
        intervals.assign(
            **{c: np.linspace(0, 1, N) for c in ("generation_kwh", "demand_kwh", "ev_kwh",
               "battery_kwh", "grid_import_kwh", "grid_export_kwh", "p2p_kwh")}
        ),
        5 / 60,
    )  # fmt: skip
    assert flows.layout.yaxis.title.text == "power [kW] (5-min intervals, mean per 6 h)"
    pv_kw = (np.linspace(0, 1, N) * 12).reshape(-1)
    mean = pd.Series(pv_kw).groupby(np.arange(N) // PER).mean().to_numpy()
    np.testing.assert_allclose(flows.data[0].y, mean, rtol=1e-12)


def test_a_short_run_draws_every_interval_as_it_is(long_run) -> None:
    intervals = long_run[0].iloc[:MAX_POINTS].copy()
    n = MAX_POINTS * 3
    frame = pd.read_parquet(long_run[1]).iloc[:n]
    grid = grid_tables(frame, pd.read_parquet(long_run[2]).iloc[:MAX_POINTS], intervals.timestamp)
    _v, band, _l, curtailment, _n = grid_figures(intervals, grid, 0.95, 1.05, "EUR")
    assert band.data[0].x is not None and len(band.data[0].x) == MAX_POINTS
    np.testing.assert_array_equal(band.data[0].y, intervals["v_max_pu"])
    np.testing.assert_array_equal(band.data[1].y, intervals["v_min_pu"])
    np.testing.assert_array_equal(curtailment.data[0].y, intervals["curtailed_kwh"])
    assert band.layout.title.text == "Voltage band over time"
    assert [d.name for d in band.data] == ["highest bus voltage", "lowest bus voltage"]


def test_the_template_built_once_is_the_one_plotly_applies_by_name() -> None:
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    fig.update_layout(template="plotly_white")
    assert fig.to_dict()["layout"]["template"] == report_template()
    assert report_template()["layout"]["paper_bgcolor"] == "white"  # plotly_white's
