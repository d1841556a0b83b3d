"""Sweep files: expansion, seeds and strict validation (no cluster needed)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios import ScenarioError
from scenarios.studies.sweep_file import load_sweep
from scenarios.studies.sweep_variants import derived_seed

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios" / "library"

BASE = {
    "name": "tiny",
    "simulation": {"days": 1, "seed": 7},
    "community": {"households": 8},
    "grid": {"feeder": "radial:8"},
}


def sweep(**extra: object) -> dict:
    data: dict = {"base": BASE, "parameters": {"community.pv_share": [0.2, 0.4]}}
    data.update(extra)
    return data


def test_grid_is_the_product_in_file_order() -> None:
    spec = load_sweep(
        sweep(
            parameters={
                "community.pv_share": [0.2, 0.8],
                "community.battery_share": {"start": 0.0, "stop": 0.6, "num": 4},
                "market.grid_fee_per_kwh": {"start": 0.0, "stop": 0.04, "step": 0.02},
            }
        )
    )
    variants = spec.variants()
    assert len(variants) == 2 * 4 * 3
    assert [v.id for v in variants[:3]] == ["v0000", "v0001", "v0002"]
    first, last = variants[0].parameters, variants[-1].parameters
    assert first == {
        "community.pv_share": 0.2,
        "community.battery_share": 0.0,
        "market.grid_fee_per_kwh": 0.0,
    }
    assert last == {
        "community.pv_share": 0.8,
        "community.battery_share": 0.6,
        "market.grid_fee_per_kwh": 0.04,
    }
    assert variants[1].parameters["market.grid_fee_per_kwh"] == 0.02  # last varies fastest
    assert sorted({v.parameters["community.battery_share"] for v in variants}) == [
        0.0,
        0.2,
        0.4,
        0.6,
    ]
    scenario = variants[5].scenario
    assert scenario is not None
    assert scenario.community.households == 8 and scenario.grid.feeder == "radial:8"
    assert scenario.community.battery_share == variants[5].parameters["community.battery_share"]


def test_nested_tables_equal_dotted_keys() -> None:
    dotted = load_sweep(
        sweep(set={"simulation.days": 1}, parameters={"community.pv_share": [0.1, 0.3]})
    )
    nested = load_sweep(
        sweep(set={"simulation": {"days": 1}}, parameters={"community": {"pv_share": [0.1, 0.3]}})
    )
    assert [v.data for v in dotted.variants()] == [v.data for v in nested.variants()]


def test_random_samples_are_seeded_and_crossed_with_the_grid() -> None:
    data = sweep(
        parameters={
            "market.mechanism": ["uniform", "mcafee"],
            "market.retail_price_per_kwh": {"uniform": [0.3, 0.4]},
            "community.households": {"integers": [4, 9]},
            "community.strategy": {"choice": ["zic", "truthful"]},
        },
        sample={"n": 5, "seed": 11},
    )
    a, b = load_sweep(data).variants(), load_sweep(data).variants()
    assert len(a) == 2 * 5
    assert [v.parameters for v in a] == [v.parameters for v in b]
    prices = [v.parameters["market.retail_price_per_kwh"] for v in a]
    assert all(0.3 <= p <= 0.4 for p in prices)
    assert len(set(prices)) == 5  # five draws, each crossed with both mechanisms
    assert prices[:5] == prices[5:]
    assert {v.parameters["community.households"] for v in a} <= set(range(4, 10))
    other = load_sweep({**data, "sample": {"n": 5, "seed": 12}}).variants()
    assert [v.parameters for v in other] != [v.parameters for v in a]


def test_common_seed_rule_gives_every_variant_the_base_seed() -> None:
    variants = load_sweep(sweep()).variants()
    assert {v.seed for v in variants} == {7}
    assert all(v.scenario is not None and v.scenario.simulation.seed == 7 for v in variants)


def test_per_variant_seeds_follow_the_parameters_not_the_order() -> None:
    forward = load_sweep(
        sweep(seed_rule="per_variant", parameters={"community.pv_share": [0.2, 0.4, 0.6]})
    )
    backward = load_sweep(
        sweep(seed_rule="per_variant", parameters={"community.pv_share": [0.6, 0.4, 0.2]})
    )
    seeds = {v.parameters["community.pv_share"]: v.seed for v in forward.variants()}
    assert seeds == {v.parameters["community.pv_share"]: v.seed for v in backward.variants()}
    assert len(set(seeds.values())) == 3
    assert seeds[0.2] == derived_seed(7, {"community.pv_share": 0.2})
    for v in forward.variants():
        assert v.scenario is not None and v.scenario.simulation.seed == v.seed


def test_swept_seed_is_used_as_given() -> None:
    variants = load_sweep(sweep(parameters={"simulation.seed": [3, 4]})).variants()
    assert [v.seed for v in variants] == [3, 4]


def test_invalid_value_fails_only_its_variant() -> None:
    variants = load_sweep(sweep(parameters={"community.pv_share": [0.5, 1.5]})).variants()
    assert variants[0].error is None and variants[0].scenario is not None
    assert variants[1].scenario is None
    assert "community.pv_share" in str(variants[1].error)


def test_every_problem_is_reported_with_its_path() -> None:
    data = {
        "base": BASE,
        "nmae": "typo",
        "seed_rule": "random",
        "set": {"community.househlds": 3, "grid": {"feedr": "x"}},
        "parameters": {
            "community.pv_sharee": [0.1],
            "market.mechanism": [],
            "community.battery_share": {"start": 0.5, "stop": 0.1, "num": 3},
            "market.grid_fee_per_kwh": {"start": 0.0, "stop": 0.1, "step": 0},
            "community.ev_share": {"start": 0.0, "stop": 0.1, "num": 2, "stpe": 1},
            "market.retail_price_per_kwh": {"uniform": [0.4, 0.3]},
            "community": 3,
            "simulation.days": [{"a": 1}],
        },
    }
    with pytest.raises(ScenarioError) as err:
        load_sweep(data)
    text = str(err.value)
    for expected in (
        "nmae: unknown key (did you mean 'name'?)",
        "seed_rule: 'random' is not one of common, per_variant",
        "set.community.househlds: not a scenario key (did you mean 'community.households'?)",
        "set.grid.feedr: not a scenario key",
        "parameters.community.pv_sharee: not a scenario key (did you mean 'community.pv_share'?)",
        "parameters.market.mechanism: the list of values is empty",
        "parameters.community.battery_share: stop (0.1) is below start (0.5)",
        "parameters.market.grid_fee_per_kwh.step: must be a number > 0",
        "parameters.community.ev_share.stpe: unknown key",
        "parameters.market.retail_price_per_kwh.uniform: high (0.3) is below low (0.4)",
        "parameters.community: is a section of the scenario, not a key",
        "parameters.simulation.days: {'a': 1} is not a scenario value",
    ):
        assert expected in text, expected
    assert len(err.value.problems) == 12


def test_sample_and_random_parameters_go_together() -> None:
    with pytest.raises(ScenarioError, match="sample: random parameters"):
        load_sweep(sweep(parameters={"market.mechanism": {"choice": ["uniform"]}}))
    with pytest.raises(ScenarioError, match="sample: only random parameters"):
        load_sweep(sweep(sample={"n": 2, "seed": 1}))
    with pytest.raises(ScenarioError, match="parameters: give at least one"):
        load_sweep({"base": BASE})


def test_base_file_problems_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("[community]\nhouseholds = 5\n", encoding="utf-8")
    (tmp_path / "ok.toml").write_text(
        'base = "base.toml"\n[parameters]\n"community.pv_share" = [0.1, 0.2]\n', encoding="utf-8"
    )
    spec = load_sweep(tmp_path / "ok.toml")
    assert spec.name == "ok"
    assert all(v.scenario.community.households == 5 for v in spec.variants())  # type: ignore[union-attr]
    (tmp_path / "bad.toml").write_text(
        'base = "missing.toml"\n[set]\n"market.mechanism" = "uniformm"\n'
        '[parameters]\n"community.pv_share" = [0.1]\n',
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as err:
        load_sweep(tmp_path / "bad.toml")
    assert "base: no scenario file at" in str(err.value)
    assert "market.mechanism: 'uniformm' is not one of" in str(err.value)


@pytest.mark.parametrize("path", sorted((LIBRARY / "sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_library_sweeps_are_valid(path: Path) -> None:
    variants = load_sweep(path).variants()
    assert variants and all(v.error is None for v in variants)


def test_cli_reports_file_problems_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[parameters]\n"community.pv_sharee" = [0.1]\n"market.x" = [1]\n', encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "community.pv_sharee: not a scenario key" in result.output
    assert "parameters.market.x: not a scenario key" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_cli_dry_run_lists_the_variants(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["sweep", str(LIBRARY / "sweeps" / "demo-pv-storage.toml"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "v0008" in result.output and "v0009" not in result.output


def test_kpi_table_with_mixed_kinds_of_a_swept_key_is_writable(tmp_path: Path) -> None:
    import pandas as pd

    from scenarios.studies.sweep import _typed_table

    common = {"status": "ok", "error": None, "reused": False, "seed": 1, "worker": "w"}
    rows = [
        {"variant": "v0", "k": 1, "n": [1.0, 2.0], **common, "self_sufficiency": 0.5},
        {"variant": "v1", "k": "a", "n": [2.0, 3.0], **common, "self_sufficiency": None},
    ]
    table = _typed_table(rows, ["k", "n"])
    table.to_parquet(tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert list(back["k"]) == ["1", '"a"']
    assert [list(v) for v in back["n"]] == [[1.0, 2.0], [2.0, 3.0]]
    assert back["self_sufficiency"].dtype == "float64"


def test_old_capacity_key_in_a_sweep_is_the_new_key_with_a_warning() -> None:
    from scenarios.errors import RenamedKeyWarning

    with pytest.warns(RenamedKeyWarning, match="community.ev_kwh is renamed"):
        old = load_sweep(sweep(parameters={"community.ev_kwh": [[40, 60], [60, 80]]}))
    new = load_sweep(sweep(parameters={"community.ev_capacity_kwh": [[40, 60], [60, 80]]}))
    assert old.keys == new.keys == ["community.ev_capacity_kwh"]
    assert [v.scenario for v in old.variants()] == [v.scenario for v in new.variants()]
    assert [v.scenario.community.ev_capacity_kwh for v in old.variants()] == [(40, 60), (60, 80)]


def test_old_and_new_name_of_a_swept_key_is_an_error_naming_both() -> None:
    params = {"community.battery_capacity_kwh": [[5, 9]], "community": {"battery_kwh": [[5, 9]]}}
    with pytest.raises(ScenarioError) as info, pytest.warns(FutureWarning):
        load_sweep(sweep(parameters=params))
    assert (
        "parameters.community.battery_kwh: the old name of community.battery_capacity_kwh, "
        "which is also given (keep only community.battery_capacity_kwh)"
    ) in info.value.problems
