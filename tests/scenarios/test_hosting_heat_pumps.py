"""Heat-pump hosting capacity (issue 14 item 6): bisection over ``heat_pump_share`` on a
small weak feeder in January, with and without §14a dimming, with and without the market."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from p2pgrid.cli import app
from p2pgrid.console import console
from scenarios import load_scenario
from scenarios.engine.grid_stage import scenario_limits
from scenarios.studies.hosting import HostingCapacity, hosting_capacity, read_hosting
from scenarios.studies.hosting_probes import HEAT_PUMP_CASES, probe_scenario

N = 4
# A January day on radial:4 with four large old houses (TABULA SFH.03, 302 m², about 38 kW
# design heat load): a tight lower voltage band (0.99 + 0.004 margin = 0.994 p.u.) makes
# the small feeder weak, so that heat pumps reach its limit within four households.
# Hourly intervals keep the eight probe runs short.
WEAK_JANUARY = {
    "name": "hp-weak-january",
    "simulation": {"start": "2027-01-15", "days": 1, "seed": 1, "interval_minutes": 60},
    "community": {
        "households": N,
        "pv_share": 0.0,
        "battery_share": 0.0,
        "ev_share": 0.0,
        "building_classes": ["SFH.03"],
    },
    "grid": {"feeder": f"radial:{N}", "check": "pyomo", "v_min_pu": 0.99, "v_margin_pu": 0.004},
}
V_LO = 0.994


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> HostingCapacity:
    out = tmp_path_factory.mktemp("hp-hosting")
    return hosting_capacity(load_scenario(WEAK_JANUARY), out, "heat_pump_share")


def _within_import_limits(run_dir: Path, scenario_data: dict) -> bool:
    """Independent of the assessment code: every bus at or above 0.994 p.u. and every
    line carrying power from the substation within its loading limit, in every interval."""
    limit = scenario_limits(load_scenario(scenario_data)).loading_limit_frac
    buses = pd.read_parquet(run_dir / "buses.parquet")
    lines = pd.read_parquet(run_dir / "lines.parquet")
    forward = lines[lines["p_kw"] > 0]
    return bool(buses["v_pu"].min() >= V_LO - 1e-6) and bool(
        (forward["loading_frac"] <= limit + 1e-6).all()
    )


def test_dimming_hosts_more_heat_pumps(searched: HostingCapacity) -> None:
    cap = {case: r.capacity for case, r in searched.cases.items()}
    assert set(cap) == set(HEAT_PUMP_CASES)
    # without dimming one of the four houses fits; dimming the heat pumps to 4.2 kW lets
    # two fit (measured: 0.25 and 0.5 of the households)
    assert cap["p2p_no_dimming"] == pytest.approx(0.25)
    assert cap["p2p_dimming"] == pytest.approx(0.5)
    for side in ("p2p", "baseline"):
        with_dim, without = cap[f"{side}_dimming"], cap[f"{side}_no_dimming"]
        assert with_dim is not None and without is not None
        assert with_dim >= without
    dimmed = {p.value: p.assessment.dimmed_kwh for p in searched.cases["p2p_dimming"].probes}
    assert dimmed[0.0] == 0.0 and dimmed[0.5] > 0.0  # the operator dimmed the heat pumps
    # a dimmed heat pump (and backup) draws the guaranteed 4.2 kW, 4.2 kWh per hourly
    # interval, never less; its house cools below the band and the lack is reported
    run_dir = next(p.out_dir for p in searched.cases["p2p_dimming"].probes if p.value == 0.5)
    agents = pd.read_parquet(run_dir / "agents.parquet")
    cut = agents[agents["dimmed_kwh"] > 0]
    assert len(cut) > 0
    assert np.allclose(cut["heat_pump_kwh"], 4.2, atol=1e-9)
    assert (cut["indoor_temp_c"] < 20.0).all() and (cut["unmet_heat_kwh"] > 0).all()
    not_dimmed = searched.cases["p2p_no_dimming"].probes
    assert all(p.assessment.dimmed_kwh == 0.0 for p in not_dimmed)


def test_found_share_passes_and_one_more_household_fails(searched: HostingCapacity) -> None:
    step = 1 / N
    base = load_scenario(WEAK_JANUARY)
    for case in ("p2p_dimming", "p2p_no_dimming"):
        r = searched.cases[case]
        assert r.capacity is not None
        by_value = {p.value: p for p in r.probes}
        assert by_value[r.capacity].assessment.passed
        data = probe_scenario(base, case, "heat_pump_share", r.capacity).model_dump(mode="json")
        assert _within_import_limits(by_value[r.capacity].out_dir, data)
        if r.capacity == 1.0:
            assert r.first_failing is None
            continue
        assert r.first_failing == pytest.approx(r.capacity + step)
        failing = by_value[r.first_failing]
        assert not failing.assessment.passed
        data = probe_scenario(base, case, "heat_pump_share", r.first_failing).model_dump()
        assert not _within_import_limits(failing.out_dir, data)
        b = r.binding
        assert b is not None and b.limit in ("under-voltage", "forward-flow overload")
        if b.kind == "bus":
            assert b.worst_value < V_LO and b.limit_value == pytest.approx(V_LO)
            buses = pd.read_parquet(failing.out_dir / "buses.parquet")
            assert b.worst_value == pytest.approx(buses["v_pu"].min())


def test_baseline_cases_read_the_same_runs(searched: HostingCapacity) -> None:
    """Without the market: the baseline's verdict of the same probe runs (no extra runs),
    failing where it breaks more limits than the background alone."""
    for dim in ("dimming", "no_dimming"):
        market, baseline = searched.cases[f"p2p_{dim}"], searched.cases[f"baseline_{dim}"]
        for p in baseline.probes:
            assert p.out_dir.parent.name == dim
            iv = pd.read_parquet(p.out_dir / "intervals.parquet")
            extra = int((iv["baseline_violations"] > iv["violations_background"]).sum())
            assert p.assessment.failing_intervals == extra
            assert p.assessment.passed == (extra == 0)
        runs = {p.value: p.out_dir for p in market.probes}
        common = [p for p in baseline.probes if p.value in runs]
        assert common and all(p.out_dir == runs[p.value] for p in common)
    dirs = [p for p in searched.out_dir.iterdir() if p.is_dir()]
    assert sorted(d.name for d in dirs) == ["dimming", "no_dimming"]


def test_outputs_name_the_parameter(searched: HostingCapacity) -> None:
    summary = read_hosting(searched.out_dir)
    assert summary["parameter"] == "heat_pump_share"
    assert set(summary["cases"]) == set(HEAT_PUMP_CASES)
    assert summary["cases"]["p2p_dimming"]["capacity"] == pytest.approx(0.5)
    table = pd.read_parquet(searched.out_dir / "probes.parquet")
    assert (table["parameter"] == "heat_pump_share").all()
    assert np.array_equal(table["households_with_heat_pump"], np.round(table["value"] * N))
    assert {"v_min_pu", "max_forward_loading_frac", "dimmed_kwh", "unmet_heat_kwh"} <= set(
        table.columns
    )


def test_bad_over_lists_the_accepted_values(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('[grid]\nfeeder = "radial:4"\n[community]\nhouseholds = 4\n', encoding="utf-8")
    res = CliRunner().invoke(
        app, ["hosting-capacity", str(file), "--over", "heatpumps", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "'heatpumps' is not one of pv_share, pv_kwp, heat_pump_share" in text
    assert not (tmp_path / "o").exists()


def test_cli_prints_the_cases_and_reuses_the_probes(
    searched: HostingCapacity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the console's width is read once, when p2pgrid.console is first imported (COLUMNS
    # in the runner's env comes too late if another test imported it): set it here
    monkeypatch.setattr(console, "width", 250)
    file = tmp_path / "weak.yaml"
    file.write_text(yaml.safe_dump(WEAK_JANUARY), encoding="utf-8")
    args = ["hosting-capacity", str(file), "--over", "heat_pump_share"]
    res = CliRunner().invoke(
        app, [*args, "--out", str(searched.out_dir), "-q"], env={"COLUMNS": "250"}
    )
    assert res.exit_code == 0, res.output
    assert "heat-pump hosting capacity (heat_pump_share, 1 day(s) from 2027-01-15)" in res.output
    rows = {line.split("│")[1].strip(): line.split("│") for line in res.output.splitlines()
            if line.startswith("│")}  # fmt: skip
    assert rows["p2p_dimming"][2].strip() == "0.5"
    assert rows["p2p_no_dimming"][2].strip() == "0.25"
    dimmed = searched.cases["p2p_dimming"].probes
    at = next(p.assessment for p in dimmed if p.value == 0.5)
    assert rows["p2p_dimming"][6].strip() == f"{at.dimmed_kwh:.0f} / {at.unmet_heat_kwh:.0f}"
    assert rows["baseline_no_dimming"][6].strip() == "0 / —"
