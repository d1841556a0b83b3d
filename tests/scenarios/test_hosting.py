"""Hosting capacity: the bisection agrees with a brute-force scan; what counts as a violation."""

from pathlib import Path

import pandas as pd
import pytest
from distributed import Client
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios import ScenarioError, load_scenario, run
from scenarios.engine.grid_stage import scenario_limits
from scenarios.studies.hosting import HOSTING_FILE, PROBES_FILE, hosting_capacity, read_hosting
from scenarios.studies.hosting_assessment import assess
from scenarios.studies.hosting_probes import CASES, probe_scenario

N = 12
# A small LV feeder with large arrays, so that PV reaches its limits within 12 households.
SMALL = {
    "name": "hc-small",
    "simulation": {"start": "2026-06-15", "days": 1, "seed": 1},
    "community": {
        "households": N,
        "pv_kwp": [25.0, 40.0],
        "battery_share": 0.5,
        "ev_share": 0.5,
        "v2g_share": 1.0,
    },
    "grid": {"feeder": f"radial:{N}", "check": "pyomo"},
}


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Brute force: every whole number of PV households, both cases, run one by one."""
    out = tmp_path_factory.mktemp("scan")
    scenario = load_scenario(SMALL)
    verdicts = {}
    for case in CASES:
        for k in range(N + 1):
            probe = probe_scenario(scenario, case, "pv_share", k / N)
            run(probe, out / case / str(k))
            verdicts[case, k] = assess(out / case / str(k), probe)
    return verdicts


@pytest.fixture(scope="module")
def bisected(client: Client, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("bisect")
    return hosting_capacity(load_scenario(SMALL), out, "pv_share", client=client)


def test_bisection_agrees_with_the_brute_force_scan(scan: dict, bisected) -> None:
    for case in CASES:
        passed = [scan[case, k].passed for k in range(N + 1)]
        # the range must hold both outcomes, or the comparison says nothing
        assert passed[0] and not passed[N], (case, passed)
        first_fail = passed.index(False)
        assert not any(passed[first_fail:]), f"{case}: not monotone {passed}"
        result = bisected.cases[case]
        assert result.capacity == pytest.approx((first_fail - 1) / N)
        assert result.first_failing == pytest.approx(first_fail / N)
        expected = scan[case, first_fail].binding
        assert result.binding == expected
        assert len(result.probes) < N + 1  # it did not scan everything


def test_failing_probe_names_the_element_at_its_limit(scan: dict, bisected) -> None:
    for case in CASES:
        result = bisected.cases[case]
        binding = result.binding
        assert binding is not None and binding.intervals >= 1
        failing = next(p for p in result.probes if p.value == result.first_failing)
        if binding.kind == "line":
            lines = pd.read_parquet(failing.out_dir / "lines.parquet")
            row = lines[
                (lines["line"].astype(str) == binding.element) & (lines["t"] == binding.t)
            ].iloc[0]
            assert row["p_kw"] < 0  # reverse flow
            assert row["loading_frac"] == pytest.approx(binding.worst_value)
            assert (
                binding.worst_value
                > scenario_limits(load_scenario(SMALL)).loading_limit_frac - 0.01
            )
        else:
            buses = pd.read_parquet(failing.out_dir / "buses.parquet")
            row = buses[
                (buses["bus"].astype(str) == binding.element) & (buses["t"] == binding.t)
            ].iloc[0]
            assert row["v_pu"] == pytest.approx(binding.worst_value)
        assert failing.assessment.curtailed_kwh > 0 or failing.assessment.v_max_pu > 1.04


def test_summary_and_probe_table_are_written(bisected) -> None:
    summary = read_hosting(bisected.out_dir)
    assert set(summary["cases"]) == set(CASES)
    for case in CASES:
        assert summary["cases"][case]["capacity"] == pytest.approx(bisected.cases[case].capacity)
        assert summary["cases"][case]["binding"]["element"] == (
            bisected.cases[case].binding.element
        )
    probes = pd.read_parquet(bisected.out_dir / PROBES_FILE)
    assert set(probes["case"]) == set(CASES)
    assert probes.groupby("case")["passed"].any().all()


def test_rerun_reuses_the_probes(bisected, client: Client) -> None:
    marker = next(iter(bisected.cases["with_storage"].probes)).out_dir / "done.json"
    stamp = marker.stat().st_mtime_ns
    again = hosting_capacity(load_scenario(SMALL), bisected.out_dir, "pv_share", client=client)
    assert marker.stat().st_mtime_ns == stamp
    assert {c: r.capacity for c, r in again.cases.items()} == {
        c: r.capacity for c, r in bisected.cases.items()
    }


def test_over_voltage_binds_a_bus(tmp_path: Path) -> None:
    # with a tight upper limit, PV breaks the voltage limit before the transformer's
    data = {**SMALL, "grid": {**SMALL["grid"], "v_max_pu": 1.02}}
    scenario = probe_scenario(load_scenario(data), "without_storage", "pv_share", 1.0)
    run(scenario, tmp_path)
    verdict = assess(tmp_path, scenario)
    assert not verdict.passed
    assert verdict.binding is not None and verdict.binding.kind == "bus"
    assert verdict.binding.limit == "over-voltage"
    assert verdict.binding.limit_value == pytest.approx(1.02 - 0.01)
    buses = pd.read_parquet(tmp_path / "buses.parquet")
    assert buses["v_pu"].max() >= 1.01 - 1e-3


def test_background_under_voltage_is_not_a_pv_violation(tmp_path: Path) -> None:
    # ieee33's own load at its peak breaks v_min in every interval; without PV that is not
    # the community's doing, so the run passes
    scenario = load_scenario(
        {
            "simulation": {"start": "2026-06-15", "days": 1},
            "community": {"households": 12, "pv_share": 0.0, "battery_share": 0.0, "ev_share": 0.0},
            "grid": {"feeder": "ieee33", "background": "peak"},
        }
    )
    result = run(scenario, tmp_path)
    assert result.kpis["violation_hours_background"] == 24
    assert result.kpis["violation_hours"] > 0
    verdict = assess(tmp_path, scenario)
    assert verdict.passed and verdict.binding is None and verdict.failing_intervals == 0


def test_kwp_search_and_cli(tmp_path: Path) -> None:
    file = tmp_path / "hc.toml"
    file.write_text(
        '[simulation]\nstart = "2026-06-15"\ndays = 1\n'
        "[community]\nhouseholds = 8\npv_share = 1.0\nbattery_share = 0.5\n"
        '[grid]\nfeeder = "radial:8"\n',
        encoding="utf-8",
    )
    out = tmp_path / "hc"
    res = CliRunner().invoke(
        app,
        [
            "hosting-capacity",
            str(file),
            "--out",
            str(out),
            "--over",
            "pv_kwp",
            "--min",
            "5",
            "--max",
            "80",
            "--tol",
            "5",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "with_storage" in res.output and "without_storage" in res.output
    summary = read_hosting(out)
    probes = pd.read_parquet(out / PROBES_FILE)
    for case, got in summary["cases"].items():
        cap, fail = got["capacity"], got["first_failing"]
        assert cap is not None and fail is not None and 0 < fail - cap <= 5
        rows = probes[probes["case"] == case].set_index("value")
        assert rows.loc[cap, "passed"] and not rows.loc[fail, "passed"]
        assert got["binding"]["element"] in res.output
    assert (out / HOSTING_FILE).is_file()


def test_bad_requests_exit_2(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"grid\.check"):
        hosting_capacity(load_scenario({**SMALL, "grid": {"check": "off"}}), tmp_path)
    with pytest.raises(ScenarioError, match="parameter"):
        hosting_capacity(load_scenario(SMALL), tmp_path, "battery_share")
    file = tmp_path / "s.toml"
    file.write_text('[grid]\ncheck = "off"\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["hosting-capacity", str(file), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "grid.check" in res.output and "Traceback" not in res.output
