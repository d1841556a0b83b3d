"""Scenario files: defaults, overrides, and errors that name every problem."""

from pathlib import Path

import pytest

from scenarios import ScenarioError, load_scenario
from scenarios.config.schema import Scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios" / "library"


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.toml")), ids=lambda p: p.stem)
def test_library_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem


def test_library_has_the_promised_scenarios() -> None:
    names = {p.stem for p in LIBRARY.glob("*.toml")}
    promised = {"demo", "suburb-summer", "suburb-winter", "suburb-winter-heatpumps"}
    assert promised | {"suburb-year"} <= names
    assert load_scenario(LIBRARY / "suburb-year.toml").simulation.days == 365


def test_every_key_has_a_default() -> None:
    scenario = load_scenario({})
    assert scenario == Scenario()
    assert scenario.simulation.interval_minutes == 15
    assert scenario.market.mechanism == "uniform"


def test_overrides_apply_with_types() -> None:
    scenario = load_scenario(
        {"community": {"pv_share": 0.2}},
        [
            "community.pv_share=0.8",
            "market.mechanism=uniform",
            "simulation.days=3",
            "community.pv_kwp=[2.0, 4.0]",
            'name="x y"',
        ],
    )
    assert scenario.community.pv_share == 0.8
    assert scenario.simulation.days == 3
    assert scenario.community.pv_kwp == (2.0, 4.0)
    assert scenario.name == "x y"


def test_scenario_is_frozen() -> None:
    scenario = load_scenario({})
    with pytest.raises(ValueError):
        scenario.simulation.days = 4  # type: ignore[misc]


def test_all_problems_reported_together_with_paths() -> None:
    data = {
        "nmae": "typo at the top",
        "simulation": {"days": 0, "interval_minutes": 7, "timezone": "Mars/Olympus"},
        "community": {
            "households": "many",
            "pv_share": 1.5,
            "battery_capacity_kwh": [10, 5],
            "pv_shar": 0.3,
        },
        "market": {"mechanism": "uniformm"},
        "grid": {"v_min_pu": 1.06, "v_max_pu": 1.05},
    }
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    problems = info.value.problems
    text = str(info.value)
    expected = [
        "nmae: unknown key (did you mean 'name'?)",
        "simulation.days:",
        "simulation.interval_minutes: 7 is not one of 5, 10, 15, 20, 30, 60",
        "simulation.timezone: unknown time zone 'Mars/Olympus'",
        "community.households:",
        "community.pv_share:",
        "community.pv_shar: unknown key (did you mean 'pv_share'?)",
        "market.mechanism: 'uniformm' is not one of uniform",
        "grid.v_min_pu: 1.06 plus the margin (0.01) must stay below v_max_pu (1.05)",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, text)
    assert text.startswith(f"{len(problems)} problems")


def test_impossible_combinations() -> None:
    data = {
        "community": {
            "battery_capacity_kwh": [10, 5],
            "battery_soc_min_frac": 0.9,
            "battery_soc_max_frac": 0.5,
        },
        "market": {
            "retail_price_per_kwh": 0.10,
            "feed_in_price_per_kwh": 0.08,
            "grid_fee_per_kwh": 0.03,
        },
    }
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    problems = info.value.problems
    assert "community.battery_capacity_kwh: lower bound 10.0 is above upper bound 5.0" in problems
    assert "community.battery_soc_min_frac: 0.9 must be below battery_soc_max_frac (0.5)" in (
        problems
    )
    assert any(
        p.startswith("market.feed_in_price_per_kwh: 0.08 plus grid_fee_per_kwh (0.03)")
        for p in problems
    )


def test_imbalance_prices_default_to_the_tariffs_and_must_not_pay_to_seek() -> None:
    from scenarios.engine.interval import MarketStep

    tariffs = MarketStep(load_scenario({"grid": {"check": "off"}}), 2, None).tariffs
    assert (tariffs.shortfall_price_per_kwh, tariffs.surplus_price_per_kwh) == (0.32, 0.08)
    own = load_scenario(
        {
            "grid": {"check": "off"},
            "market": {
                "imbalance_shortfall_price_per_kwh": 0.5,
                "imbalance_surplus_price_per_kwh": 0.0,
            },
        }
    )
    tariffs = MarketStep(own, 2, None).tariffs
    assert (tariffs.shortfall_price_per_kwh, tariffs.surplus_price_per_kwh) == (0.5, 0.0)
    with pytest.raises(ScenarioError) as info:
        load_scenario(
            {
                "market": {
                    "imbalance_shortfall_price_per_kwh": 0.2,
                    "imbalance_surplus_price_per_kwh": 0.1,
                }
            }
        )
    problems = " ".join(info.value.problems)
    assert "imbalance_shortfall_price_per_kwh: 0.2 is below retail_price_per_kwh (0.32)" in (
        problems
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario({"market": {"imbalance_surplus_price_per_kwh": 0.1}})
    assert "imbalance_surplus_price_per_kwh: 0.1 is above feed_in_price_per_kwh (0.08)" in (
        " ".join(info.value.problems)
    )


def test_simbench_needs_quarter_hours() -> None:
    with pytest.raises(ScenarioError, match="multiple of 15"):
        load_scenario(
            {"community": {"profiles": "simbench"}, "simulation": {"interval_minutes": 10}}
        )


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[simulation]\ndays = = 3\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="no scenario file"):
        load_scenario("does/not/exist.toml")


def test_bad_override_syntax_and_path() -> None:
    with pytest.raises(ScenarioError, match=r"expected key\.path=value"):
        load_scenario({}, ["community.pv_share"])
    with pytest.raises(ScenarioError, match="name is a value, not a table"):
        load_scenario({"name": "x"}, ["name.first=3"])
    with pytest.raises(ScenarioError, match=r"community\.pv_sahre: unknown key"):
        load_scenario({}, ["community.pv_sahre=0.3"])


def test_yaml_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: y\nsimulation:\n  days: 3\ncommunity:\n  households: 5\n")
    scenario = load_scenario(path)
    assert (scenario.name, scenario.simulation.days, scenario.community.households) == ("y", 3, 5)


def test_start_timestamp_is_local_midnight() -> None:
    sim = load_scenario({"simulation": {"start": "2026-03-29", "timezone": "Europe/Berlin"}})
    ts = sim.simulation.start_timestamp()
    assert str(ts) == "2026-03-29 00:00:00+01:00"


def test_start_must_be_a_local_midnight() -> None:
    # a timestamp at local midnight is a start; any other time of day is refused at
    # validation (the profile generators lay out whole days), naming the local time
    ok = load_scenario({"simulation": {"start": "2026-05-31T22:00:00+00:00"}})
    assert str(ok.simulation.start_timestamp()) == "2026-06-01 00:00:00+02:00"
    with pytest.raises(ScenarioError) as err:
        load_scenario({"simulation": {"start": "2026-06-01T11:00"}})
    assert "11:00 in Europe/Berlin" in str(err.value) and "midnight" in str(err.value)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2026-06-21", "2026-06-21 00:00:00+02:00"),  # a TOML local date
        ("2026-06-21T00:00:00", "2026-06-21 00:00:00+02:00"),  # local datetime
        ("2026-06-20T22:00:00Z", "2026-06-21 00:00:00+02:00"),  # offset datetime
    ],
)
def test_start_as_a_toml_date_literal(tmp_path: Path, literal: str, expected: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(f'name = "d"\n[simulation]\nstart = {literal}\n', encoding="utf-8")
    from_file = load_scenario(path)
    from_set = load_scenario({}, [f"simulation.start={literal}"])
    for scenario in (from_file, from_set):
        assert str(scenario.simulation.start_timestamp()) == expected
        assert isinstance(scenario.simulation.start, str)  # the manifest stays JSON


def test_start_as_a_yaml_date(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("simulation:\n  start: 2026-12-24\n", encoding="utf-8")
    assert load_scenario(path).simulation.start == "2026-12-24"


def test_start_as_a_time_of_day_is_refused() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario({}, ["simulation.start=10:00:00"])
    assert "simulation.start" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [("battery_kwh", "battery_capacity_kwh", [6.0, 9.0]), ("ev_kwh", "ev_capacity_kwh", [30, 50])],
)
def test_old_capacity_keys_work_with_a_warning_naming_the_new_key(old, new, value) -> None:
    """``[community] battery_kwh``/``ev_kwh`` named capacities while agents.parquet's
    columns of the same names are energies per interval: the keys are now
    ``*_capacity_kwh``; the old spelling is read as the new one."""
    from scenarios.engine.inputs import community_households
    from scenarios.errors import RenamedKeyWarning

    current = load_scenario({"community": {new: value}})
    with pytest.warns(RenamedKeyWarning, match=rf"community\.{old} is renamed community\.{new}"):
        renamed = load_scenario({"community": {old: value}})
    assert getattr(renamed.community, new) == tuple(float(v) for v in value)
    assert renamed == current
    with pytest.warns(RenamedKeyWarning, match=rf"write community\.{new}"):
        overridden = load_scenario({}, [f"community.{old}={value}"])
    assert overridden == current
    # the same households: capacities drawn from the same range with the same seed
    capacity = f"{old.removesuffix('_kwh')}_capacity_kwh"
    drawn = getattr(community_households(renamed), capacity)
    assert drawn.max() <= value[1] and drawn[drawn > 0].min() >= value[0]
    assert (drawn == getattr(community_households(current), capacity)).all()


def test_old_and_new_capacity_key_together_is_an_error_naming_both() -> None:
    data = {"community": {"battery_kwh": [5, 10], "battery_capacity_kwh": [5, 10]}}
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    assert info.value.problems == [
        "community.battery_kwh: the old name of community.battery_capacity_kwh, which is "
        "also given (keep only community.battery_capacity_kwh)"
    ]


def test_an_override_replaces_a_capacity_key_however_either_side_spells_it() -> None:
    from scenarios.errors import RenamedKeyWarning

    new_file = {"community": {"battery_capacity_kwh": [5, 10]}}
    old_file = {"community": {"battery_kwh": [5, 10]}}
    with pytest.warns(RenamedKeyWarning):
        by_old = load_scenario(new_file, ["community.battery_kwh=[6, 8]"])
    assert by_old.community.battery_capacity_kwh == (6.0, 8.0)
    # no warning (warnings are errors here): the override replaces the file's old key
    by_new = load_scenario(old_file, ["community.battery_capacity_kwh=[6, 8]"])
    assert by_new == by_old
