"""§14a dimming is batch-only for now: the live market refuses it with a clear message
instead of settling agents against charging they were never told was dimmed."""

import pytest

from live.market import MarketService
from scenarios import load_scenario


def test_live_market_refuses_dimming(tmp_path) -> None:
    scenario = load_scenario({"grid": {"controllable_share": 0.5}})
    with pytest.raises(ValueError, match=r"grid\.controllable_share: .*grid\.dimming = false"):
        MarketService(scenario, None, tmp_path)  # refused before any connection
