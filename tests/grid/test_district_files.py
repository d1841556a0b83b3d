"""District files (an MV grid with LV feeders in the feeder file format): the round trip of
``district:2x20`` through JSON and a CSV pair, bad files and their located errors, and
district specs where feeder names are read."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from grid.district import District
from grid.district_files import district_records, read_district_file, write_district_file
from grid.district_networks import is_district, load_district
from grid.errors import FeederError
from grid.feeder_files import read_feeder_file
from grid.feeder_names import load_feeder, parse_feeder


def assert_same_district(a: District, b: District) -> None:
    assert a.feeder_ids == b.feeder_ids
    np.testing.assert_array_equal(a.mv_bus, b.mv_bus)
    for fa, fb in zip((a.mv, *a.feeders), (b.mv, *b.feeders), strict=True):
        pd.testing.assert_frame_equal(fa.buses, fb.buses, check_exact=True)
        pd.testing.assert_frame_equal(fa.lines, fb.lines, check_exact=True)
        assert (fa.slack_bus, fa.v_slack_pu, fa.transformer_s_max_kva, fa.s_base_kva) == (
            fb.slack_bus, fb.v_slack_pu, fb.transformer_s_max_kva, fb.s_base_kva,
        )  # fmt: skip


@pytest.mark.parametrize("target", ["d.json", "d-csv"])
def test_round_trip(tmp_path: Path, target: str) -> None:
    d = load_district("district:2x20")
    path = write_district_file(d, tmp_path / target)
    assert is_district(str(path))
    back = load_district(str(path))
    assert_same_district(d, back)
    for a, b in zip((d.mv, *d.feeders), (back.mv, *back.feeders), strict=True):
        assert b.name == a.name.replace("district:2x20", back.name)
    assert back.name == ("district:2x20" if target.endswith(".json") else "d-csv")


def test_the_csv_pair_reads_as_written(tmp_path: Path) -> None:
    """One row per bus, the LV feeders' rows tagged with their id; each LV feeder's slack row
    names the MV bus it is (lv1 hangs on station m1s1, lv2 on m1s2)."""
    write_district_file(load_district("district:2x20"), tmp_path)
    with open(tmp_path / "buses.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["feeder", "bus", "vn_kv"]
    assert [r["bus"] for r in rows if r["feeder"] == ""] == ["hv", "mv", "m1s1", "m1s2"]
    assert [(r["feeder"], r["bus"]) for r in rows if r["mv_bus"]] == [("lv1", "mv"), ("lv2", "mv")]
    assert [r["mv_bus"] for r in rows if r["mv_bus"]] == ["m1s1", "m1s2"]
    assert sum(r["feeder"] == "lv1" for r in rows) == 16  # radial:20 has 16 buses
    assert sum(r["household_bus"] == "true" for r in rows) == 2 * 7


def _doc() -> dict[str, Any]:
    """A small district by hand: a 20 kV MV line from the substation to station s1, and two
    LV feeders ("a" on s1, "b" on the busbar) with a transformer and one cable each."""
    trafo = {"kind": "trafo", "sn_kva": 250, "vk_percent": 4, "vkr_percent": 1.3}
    return {
        "name": "hand",
        "slack_bus": "sub",
        "buses": [
            {"bus": "sub", "vn_kv": 20}, {"bus": "s1", "vn_kv": 20, "base_p_kw": 50},
            {"feeder": "a", "bus": "mv", "vn_kv": 20, "mv_bus": "s1"},
            {"feeder": "a", "bus": "lv", "vn_kv": 0.4, "household_bus": False},
            {"feeder": "a", "bus": "h", "vn_kv": 0.4},
            {"feeder": "b", "bus": "mv", "vn_kv": 20, "mv_bus": "sub"},
            {"feeder": "b", "bus": "lv", "vn_kv": 0.4, "household_bus": False},
            {"feeder": "b", "bus": "h", "vn_kv": 0.4},
        ],
        "lines": [
            {"line": "m", "from_bus": "sub", "to_bus": "s1", "r_ohm": 0.5, "x_ohm": 0.4,
             "s_max_kva": 8000},
            {"feeder": "a", "line": "t", "from_bus": "mv", "to_bus": "lv", **trafo},
            {"feeder": "a", "line": "c", "from_bus": "lv", "to_bus": "h",
             "cable": "NAYY 4x150 SE", "length_km": 0.1},
            {"feeder": "b", "line": "t", "from_bus": "mv", "to_bus": "lv", **trafo},
            {"feeder": "b", "line": "c", "from_bus": "lv", "to_bus": "h",
             "cable": "NAYY 4x50 SE", "length_km": 0.2},
        ],
    }  # fmt: skip


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "district.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_hand_written_district(tmp_path: Path) -> None:
    """MV background 50 kW at s1, no MV households; LV feeder a on s1, b on the busbar: the
    MV slack is not an MV/LV station of the generated kind, but any MV bus below it is."""
    spec = _write(tmp_path, _doc(), "on-the-slack.json")
    doc = _doc()
    doc["buses"][5]["mv_bus"] = "s1"
    d = load_district(_write(tmp_path, doc))
    assert d.name == "hand" and d.feeder_ids == ("a", "b")
    assert d.mv.buses["base_p_kw"].tolist() == [0.0, 50.0]
    assert not d.mv.buses["household_bus"].any()
    assert d.mv_bus.tolist() == [1, 1]
    a, b = d.feeders
    assert a.buses["bus"].tolist() == ["mv", "lv", "h"] and a.household_buses.tolist() == [2]
    assert b.lines["r_ohm"].iloc[1] == pytest.approx(0.642 * 0.2)
    # b on the substation's bus is refused by the District: it names the feeder
    with pytest.raises(FeederError, match="LV feeder 'b' hangs on the MV slack bus"):
        load_district(spec)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d["buses"][2].pop("mv_bus"),
         "LV feeder 'a': 0 buses have mv_bus (none); exactly one must"),
        (lambda d: d["buses"][4].update(mv_bus="s1"),
         "LV feeder 'a': 2 buses have mv_bus ({path}: buses[2], {path}: buses[4])"),
        (lambda d: d["buses"][2].update(mv_bus="s9"),
         "{path}: buses[2].mv_bus: 's9' is not one of the MV buses"),
        (lambda d: d["buses"][1].update(household_bus=True),
         "{path}: buses[1].household_bus: True: MV buses host no households"),
        (lambda d: d["buses"][2].update(vn_kv=10),
         "{path}: buses[2].vn_kv: 10 differs from MV bus 's1''s 20 kV"),
        (lambda d: d["lines"][2].update(to_bus="s1"),
         "LV feeder 'a': {path}: lines[2].to_bus: 's1' is not one of the buses"),
        (lambda d: d["lines"][4].update(r_ohm="thin"),
         "LV feeder 'b': {path}: lines[4].r_ohm: 'thin' is not a number"),
        (lambda d: d["lines"][0].update(to_bus="sub"),
         "MV grid: {path}: lines[0]: from_bus and to_bus are both 'sub'"),
        (lambda d: d["buses"][3].update(colour="red"),
         "LV feeder 'a': {path}: buses[3]: unknown key 'colour'"),
    ],
)  # fmt: skip
def test_bad_district_files_name_file_record_and_key(
    tmp_path: Path, edit: Any, fragment: str
) -> None:
    doc = _doc()
    doc["buses"][5]["mv_bus"] = "s1"
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(FeederError) as err:
        load_district(path)
    assert fragment.format(path=path) in str(err.value)


def test_a_bad_csv_row_is_named_by_file_and_row(tmp_path: Path) -> None:
    write_district_file(load_district("district:2x20"), tmp_path)
    lines = (tmp_path / "lines.csv").read_text().splitlines()
    assert lines[5].startswith("lv1,lv-f1c1,lv,f1c1,line,")
    lines[5] = lines[5].replace(",0.00832,", ",abc,")
    (tmp_path / "lines.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FeederError) as err:
        read_district_file(tmp_path)
    assert f"LV feeder 'lv1': {tmp_path / 'lines.csv'} row 5.r_ohm: 'abc' is not a number" in str(
        err.value
    )


def test_a_district_file_is_not_a_feeder_and_a_feeder_file_not_a_district(
    tmp_path: Path, hand_file: Path
) -> None:
    path = write_district_file(load_district("district:2x20"), tmp_path / "d.json")
    with pytest.raises(FeederError, match=r"d\.json is a district \(2 LV feeders under an MV"):
        load_feeder(str(path), households=4)
    with pytest.raises(FeederError, match=r"a district file .* needs the district engine"):
        read_feeder_file(path)
    assert not is_district(str(hand_file)) and not is_district("radial:20")
    assert not is_district(str(tmp_path / "missing.json"))
    with pytest.raises(FeederError, match="not a district file"):
        read_district_file(hand_file)
    buses, lines = district_records(load_district("district:1x10"))
    assert sum("mv_bus" in b for b in buses) == 1 and lines[0]["line"] == "hvmv"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("district:2x20", "district:2x20 is a district (2 LV feeders under an MV grid of 4 "
                          "buses), not a feeder: a district needs the district engine"),
        ("district:2x900", "district:2x900: each LV feeder is radial:900: the number of "
                           "households must be between 1 and 833 for one LV transformer"),
    ],
)  # fmt: skip
def test_feeder_names_recognise_districts(spec: str, fragment: str) -> None:
    """Where a scenario's feeder name is read (p2pgrid validate, run), a district spec is a
    district: its own problems, or the district engine named."""
    parsed = parse_feeder(spec, households=10)
    assert parsed.district and not parsed.generated
    with pytest.raises(FeederError) as err:
        parsed.load()
    assert fragment in str(err.value)
