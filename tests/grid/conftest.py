"""Shared fixtures of the grid tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grid import Feeder, FeederModel, load_feeder

HAND_FEEDER = {
    "name": "hand3",
    "slack_bus": "0",
    "buses": [
        {"bus": "0", "vn_kv": 0.4, "household_bus": False},
        {"bus": "1", "vn_kv": 0.4},
        {"bus": "2", "vn_kv": 0.4},
    ],
    "lines": [
        {
            "line": "a",
            "from_bus": "0",
            "to_bus": "1",
            "r_ohm": 0.001,
            "x_ohm": 0.0005,
            "s_max_kva": 1000,
        },
        {
            "line": "b",
            "from_bus": "1",
            "to_bus": "2",
            "r_ohm": 0.01,
            "x_ohm": 0.005,
            "s_max_kva": 100,
        },
    ],
}


@pytest.fixture(scope="session")
def ieee33() -> Feeder:
    return load_feeder("ieee33", households=0)


@pytest.fixture(scope="session")
def ieee33_model(ieee33: Feeder) -> FeederModel:
    return FeederModel(ieee33)


@pytest.fixture()
def hand_file(tmp_path: Path) -> Path:
    path = tmp_path / "hand3.json"
    path.write_text(json.dumps(HAND_FEEDER))
    return path
