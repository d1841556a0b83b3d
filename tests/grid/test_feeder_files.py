"""Hand-written feeder files: JSON and CSV pair, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grid import FeederError, load_feeder

from .conftest import HAND_FEEDER


def test_json_feeder_loads(hand_file: Path) -> None:
    f = load_feeder(str(hand_file), households=2)
    assert f.name == "hand3"
    assert f.household_buses.tolist() == [1, 2]
    assert f.lines["s_max_kva"].tolist() == [1000.0, 100.0]
    assert f.transformer_s_max_kva is None


def test_json_with_cable_types_and_a_transformer(tmp_path: Path) -> None:
    doc = {
        "buses": [
            {"bus": "mv", "vn_kv": 20}, {"bus": "lv", "vn_kv": 0.4}, {"bus": "h", "vn_kv": 0.4}
        ],
        "lines": [
            {"line": "t", "from_bus": "mv", "to_bus": "lv", "kind": "trafo", "sn_kva": 250,
             "vk_percent": 4, "vkr_percent": 1.3},
            # written backwards on purpose: lines are re-oriented away from the slack
            {"line": "c", "from_bus": "h", "to_bus": "lv", "cable": "NAYY 4x150 SE",
             "length_km": 0.1},
        ],
    }  # fmt: skip
    path = tmp_path / "street.json"
    path.write_text(json.dumps(doc))
    f = load_feeder(str(path), households=3)
    assert f.transformer_s_max_kva == 250.0
    c = f.lines.iloc[1]
    assert (c.from_bus, c.to_bus) == (1, 2)
    assert c.r_ohm == pytest.approx(0.0208) and c.s_max_kva == pytest.approx(187.06, abs=0.01)
    t = f.lines.iloc[0]
    assert t.r_ohm == pytest.approx(0.013 * 0.4**2 * 1000 / 250)


def test_bad_json_lists_every_problem_with_its_place(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(HAND_FEEDER))
    doc["colour"] = "red"
    doc["buses"][1]["vn_kv"] = -0.4
    doc["buses"][2]["household_bus"] = "maybe"
    doc["lines"][0]["r_ohm"] = "small"
    doc["lines"][1]["to_bus"] = "9"
    del doc["lines"][1]["s_max_kva"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FeederError) as err:
        load_feeder(str(path), households=2)
    msg = str(err.value)
    assert f"{path}: unknown key 'colour'" in msg
    assert f"{path}: buses[1].vn_kv: -0.4 must be > 0" in msg
    assert f"{path}: buses[2].household_bus: 'maybe' is not true or false" in msg
    assert f"{path}: lines[0].r_ohm: 'small' is not a number" in msg
    assert f"{path}: lines[1].s_max_kva: missing" in msg
    assert f"{path}: lines[1].to_bus: '9' is not one of the buses" in msg
    assert len(err.value.problems) == 6


def test_structural_problems(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(HAND_FEEDER))
    doc["lines"][1]["to_bus"] = "9"
    path = tmp_path / "dangling.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FeederError, match=r"lines\[1\]\.to_bus: '9' is not one of the buses"):
        load_feeder(str(path), households=2)
    doc = json.loads(json.dumps(HAND_FEEDER))
    doc["lines"].append(
        {"line": "c", "from_bus": "0", "to_bus": "2", "r_ohm": 0.1, "x_ohm": 0.1, "s_max_kva": 50}
    )
    path.write_text(json.dumps(doc))
    with pytest.raises(FeederError) as err:
        load_feeder(str(path), households=2)
    assert "a radial feeder with 3 buses has 2 lines, this one has 3" in str(err.value)
    assert "loop closed by" in str(err.value)


@pytest.mark.parametrize(
    "text, fragment", [("{not json", "not valid JSON"), ("[1, 2]", "top level")]
)
def test_unreadable_json(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(FeederError, match=fragment):
        load_feeder(str(path), households=1)


def test_missing_file() -> None:
    with pytest.raises(FeederError, match="file not found"):
        load_feeder("/nonexistent/feeder.json", households=1)


def _write_csv_pair(d: Path, lines_extra: str = "") -> None:
    (d / "buses.csv").write_text(
        "bus,vn_kv,household_bus,slack\n0,0.4,false,true\n1,0.4,,\n2,0.4,,\n"
    )
    (d / "lines.csv").write_text(
        "line,from_bus,to_bus,r_ohm,x_ohm,s_max_kva,cable,length_km\n"
        "a,0,1,0.001,0.0005,1000,,\n"
        "b,1,2,,,,NAYY 4x50 SE,0.05\n" + lines_extra
    )


def test_csv_pair_loads(tmp_path: Path) -> None:
    _write_csv_pair(tmp_path)
    for spec in (tmp_path, tmp_path / "buses.csv"):
        f = load_feeder(str(spec), households=2)
        assert f.n_bus == 3 and f.slack_bus == 0
        np.testing.assert_allclose(f.lines["r_ohm"], [0.001, 0.642 * 0.05])


def test_bad_csv_names_file_and_row(tmp_path: Path) -> None:
    _write_csv_pair(tmp_path, "c,2,3,-1,0.1,50,,\n")
    with pytest.raises(FeederError) as err:
        load_feeder(str(tmp_path), households=2)
    msg = str(err.value)
    assert f"{tmp_path / 'lines.csv'} row 3.r_ohm: '-1' must be > 0" in msg
    (tmp_path / "lines.csv").unlink()
    with pytest.raises(FeederError, match=r"lines\.csv: file not found"):
        load_feeder(str(tmp_path), households=2)
