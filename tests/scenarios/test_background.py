"""The feeder's background-load calendars, checked against the published tables by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grid.background import RTS_WEEKLY_PEAK_PU, rts_factor
from scenarios import load_scenario
from scenarios.engine.background import background_factor
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.inputs import timeline


def test_rts_calendar_by_hand() -> None:
    local = pd.DatetimeIndex(
        [
            "2026-12-22 17:30",  # Tue, week 51 (day 356): 1.000 x 1.00 x 1.00, the annual peak
            "2026-06-03 12:15",  # Wed, week 22 (day 154): 0.811 x 0.98 x summer weekday 0.99
            "2026-06-07 03:00",  # Sun, week 23 (day 158): 0.900 x 0.75 x summer weekend 0.65
            "2026-04-06 08:00",  # Mon, week 14 (day 96): 0.750 x 0.93 x spring weekday 0.95
            "2026-12-31 23:00",  # Thu, day 365 belongs to week 52: 0.952 x 0.96 x winter 0.63
        ],
        tz="Europe/Berlin",
    )
    expected = [
        1.0,
        0.811 * 0.98 * 0.99,
        0.900 * 0.75 * 0.65,
        0.750 * 0.93 * 0.95,
        0.952 * 0.96 * 0.63,
    ]
    np.testing.assert_allclose(rts_factor(local), expected)


def test_rts_calendar_peaks_once_a_year_at_one() -> None:
    year = pd.date_range("2026-01-01", "2026-12-31 23:00", freq="h", tz="Europe/Berlin")
    f = rts_factor(year)
    assert f.max() == pytest.approx(1.0)
    assert year[np.argmax(f)] == pd.Timestamp("2026-12-22 17:00", tz="Europe/Berlin")
    assert len(RTS_WEEKLY_PEAK_PU) == 52
    # RTS-79 states an annual load factor of 61.4 % over its 8,736 hours
    assert f.mean() == pytest.approx(0.614, abs=0.005)


def test_h0_calendar_is_one_at_its_annual_peak_and_residential_in_summer() -> None:
    year = pd.date_range("2026-01-01", periods=365 * 96, freq="15min", tz="Europe/Berlin")
    f = background_factor("bdew_h0", year, 15)
    assert f.max() == pytest.approx(1.0)
    assert year[np.argmax(f)].month in (1, 11, 12)
    assert 0.40 < f.mean() < 0.46  # residential load factor
    june = year.month == 6
    assert f[june].max() < 0.75
    # hourly intervals average their four quarter hours
    hourly = background_factor("bdew_h0", year[::4][:48], 60)
    np.testing.assert_allclose(hourly, f[: 48 * 4].reshape(48, 4).mean(axis=1))


def test_peak_calendar_and_unknown_calendar() -> None:
    stamps = pd.date_range("2026-06-01", periods=3, freq="15min", tz="Europe/Berlin")
    np.testing.assert_array_equal(background_factor("peak", stamps, 15), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"grid\.background"):
        background_factor("flat", stamps, 15)


@pytest.mark.parametrize("kind, most", [("bdew_h0", 0.25), ("rts", 1.0), ("peak", 1.0)])
def test_ieee33_summer_background_alone_mostly_within_limits(tmp_path, kind, most) -> None:
    """The library's ieee33-summer week: its own loads alone break a limit in at most a
    quarter of the intervals on the default calendar; on the snapshot in every one."""
    scenario = load_scenario("scenarios/library/ieee33-summer.toml", [f"grid.background={kind}"])
    stage = GridStage(scenario, scenario.community.households, tmp_path)
    try:
        bg_p, bg_q = stage.background(timeline(scenario))
        broken = stage.background_violations(bg_p, bg_q) > 0
    finally:
        stage.close()
    assert broken.mean() <= most
    if kind == "peak":
        assert broken.all()
    if kind == "rts":
        assert broken.mean() > 0.5  # a utility's system load is too heavy for this feeder
