"""The hosting assessment reads buses.parquet and lines.parquet a row group at a time:
its verdict on a synthetic run of several row groups, worked out by hand."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import scenarios.results.blocks as blocks
from scenarios import load_scenario
from scenarios.engine.grid_stage import scenario_limits
from scenarios.studies.hosting_assessment import assess

T = 12  # intervals, written in row groups of 4 intervals
BUSES, LINES = ["b0", "b1", "b2"], ["l0", "l1"]


def _write(out: Path, v: np.ndarray, loading: np.ndarray, p_kw: np.ndarray) -> None:
    t = np.arange(T)
    pq.write_table(
        pa.table({"t": t, "curtailed_kwh": np.zeros(T), "dimmed_kwh": np.zeros(T),
                  "unmet_heat_kwh": np.zeros(T)}),
        out / "intervals.parquet",
    )  # fmt: skip
    for name, key, names, cols in (
        ("buses", "bus", BUSES, {"v_pu": v}),
        ("lines", "line", LINES, {"loading_frac": loading, "p_kw": p_kw}),
    ):
        k = len(names)
        table = pa.table(
            {"t": np.repeat(t, k), key: pa.array(names * T).dictionary_encode(),
             **{c: x.reshape(-1) for c, x in cols.items()}}
        )  # fmt: skip
        pq.write_table(table, out / f"{name}.parquet", row_group_size=4 * k)


def test_verdict_across_row_groups_and_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(blocks, "BATCH_ROWS", 2)  # blocks that split intervals
    scenario = load_scenario({"grid": {"check": "pyomo", "feeder": "radial:3"}})
    limits = scenario_limits(scenario)
    hi, load_hi = limits.v_hi_pu, limits.loading_limit_frac
    v = np.full((T, 3), 1.0)
    v[3, 2], v[10, 2] = hi + 0.004, hi + 0.002  # b2 over the limit in two row groups
    v[10, 1] = hi + 0.009  # b1 further over it, in one interval only
    loading, p_kw = np.full((T, 2), 0.3), np.full((T, 2), -5.0)
    loading[10, 1] = load_hi + 0.05  # l1 overloaded by reverse flow in interval 10
    loading[7, 0], p_kw[7, 0] = load_hi + 0.2, 40.0  # forward flow: not a PV limit
    _write(tmp_path, v, loading, p_kw)
    verdict = assess(tmp_path, scenario)
    assert not verdict.passed and verdict.failing_intervals == 2  # intervals 3 and 10
    assert verdict.v_max_pu == pytest.approx(hi + 0.009)
    assert verdict.max_reverse_loading_frac == pytest.approx(load_hi + 0.05)
    assert verdict.max_forward_loading_frac == pytest.approx(load_hi + 0.2)
    b = verdict.binding
    # b2 is at its limit in 2 failing intervals, b1 and l1 in 1: b2 binds, worst at t = 3
    assert b is not None and (b.kind, b.element, b.intervals, b.t) == ("bus", "b2", 2, 3)
    assert b.worst_value == pytest.approx(hi + 0.004)
    imported = assess(tmp_path, scenario, "import")  # forward overload of l0 at t = 7
    assert imported.failing_intervals == 1 and imported.binding is not None
    assert (imported.binding.element, imported.binding.t) == ("l0", 7)
