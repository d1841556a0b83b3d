"""Heat pumps and weather through the engine (issue 14): the results columns, the energy
balance with heat pumps on, the comfort band, and the weather file and anomaly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.profiles.weather import AirTemperature, ambient_temperature_c
from scenarios import run
from scenarios.config.loader import load_scenario
from scenarios.results.schema import metered_net_kwh

EPW = Path(__file__).parent.parent / "agents" / "data" / "january.epw"


def _scenario(**community: object):
    keys = {"households": 20, "heat_pump_share": 0.5, "pv_share": 0.6, "battery_share": 0.3,
            "ev_share": 0.2, **community}  # fmt: skip
    return load_scenario(
        {
            "simulation": {"start": "2026-01-05", "days": 2},
            "grid": {"check": "off"},
            "community": keys,
        }
    )


@pytest.fixture(scope="module")
def hp_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("hp")
    sc = _scenario(heat_pump_mode="flexible", temp_anomaly_sd_k=3.0)
    run(sc, out)
    return {
        "sc": sc,
        "agents": pd.read_parquet(out / "agents.parquet"),
        "intervals": pd.read_parquet(out / "intervals.parquet"),
    }


def test_energy_balance_with_heat_pumps(hp_run: dict) -> None:
    a = hp_run["agents"]
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(metered_net_kwh(a) - rhs).max() < 1e-6
    assert a.heat_pump_kwh.sum() > 100.0, "heat pumps drew nothing: a weak test"
    iv = hp_run["intervals"]
    np.testing.assert_allclose(iv.heat_pump_kwh, a.groupby("t").heat_pump_kwh.sum(), atol=1e-9)


def test_band_and_columns(hp_run: dict) -> None:
    a = hp_run["agents"]
    has = a.indoor_temp_c.notna()
    assert has.groupby(a.agent_id, observed=True).all().sum() == 10  # 50 % of 20
    hp = a[has]
    ok = hp.unmet_heat_kwh == 0
    assert ok.all(), "the backup should cover a January week"
    assert hp.indoor_temp_c.min() >= 20.0 - 1e-9 and hp.indoor_temp_c.max() <= 22.0 + 1e-9
    rest = a[~has]
    assert (rest.heat_pump_kwh == 0).all() and (rest.unmet_heat_kwh == 0).all()
    # outdoor temperature: the seeded model at each interval start
    sc = hp_run["sc"]
    sim, c = sc.simulation, sc.community
    iv = hp_run["intervals"]
    air = AirTemperature(sim.start_timestamp(), sim.days, c.longitude, c.latitude, sim.seed,
                         3.0, 0.8)  # fmt: skip
    np.testing.assert_allclose(iv.outdoor_temp_c, air.at(pd.DatetimeIndex(iv.timestamp)))


def test_weather_file_drives_the_temperature(tmp_path: Path) -> None:
    sc = _scenario(weather_file=str(EPW), households=4)
    run(sc, tmp_path)
    iv = pd.read_parquet(tmp_path / "intervals.parquet")
    ts = pd.DatetimeIndex(iv.timestamp)  # Europe/Berlin in January is the file's UTC+1
    expected = -3.0 + 0.5 * ts.hour - 0.2 * ts.day
    np.testing.assert_allclose(iv.outdoor_temp_c, expected, atol=1e-9)


def test_weather_file_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weather_file '.*nowhere.epw': no such file"):
        run(_scenario(weather_file=str(tmp_path / "nowhere.epw")), tmp_path / "a")
    bad = tmp_path / "bad.epw"
    bad.write_text("LOCATION,x\nnot an epw\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"weather_file '.*bad.epw': not a readable EPW file"):
        run(_scenario(weather_file=str(bad)), tmp_path / "b")
    feb = {"start": "2026-02-01", "days": 1}
    late = load_scenario(
        {"simulation": feb, "grid": {"check": "off"}, "community": {"weather_file": str(EPW)}}
    )
    with pytest.raises(ValueError, match=r"january.epw': has no hour 02-01 00:00"):
        run(late, tmp_path / "c")


def test_temperature_anomaly_is_a_seeded_ar1() -> None:
    start = pd.Timestamp("2026-01-01", tz="Europe/Berlin")
    air = AirTemperature(start, 20000, 13.4, 52.52, 7, 3.0, 0.8)
    x = air.daily_anomaly_k
    assert x.std() == pytest.approx(3.0, rel=0.03)
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(0.8, abs=0.02)
    same = AirTemperature(start, 20000, 13.4, 52.52, 7, 3.0, 0.8).daily_anomaly_k
    assert np.array_equal(x, same)
    # without an anomaly the model is the climatology the PV model always used
    times = start + pd.to_timedelta(np.arange(96) * 15, unit="min")
    plain = AirTemperature(start, 1, 13.4, 52.52, 7).at(times)
    assert np.array_equal(plain, ambient_temperature_c(times, 13.4, 52.52))
    # at noon of day 3 the anomaly is day 2's value (day centres; linear in between)
    noon = start + pd.Timedelta(days=2, hours=12)
    shift = air.at(pd.DatetimeIndex([noon])) - ambient_temperature_c(
        pd.DatetimeIndex([noon]), 13.4, 52.52
    )
    assert shift[0] == pytest.approx(x[2], abs=1e-9)


def test_flexible_heat_pumps_buy_only_what_is_matched(tmp_path: Path) -> None:
    """With the price-aware storage strategy, flexible heat pumps place buy orders (kind
    ``heat_pump``) at the strategy's charge limit; a fill never exceeds the order, and a
    household's heat-pump energy is its thermostat default plus self-consumed PV plus
    those fills — which keeps the house inside the band."""
    sc = load_scenario(
        {
            "simulation": {"start": "2026-04-06", "days": 4},
            "grid": {"check": "off"},
            "output": {"order_books": True},
            "community": {
                "households": 30,
                "heat_pump_share": 0.5,
                "pv_share": 0.8,
                "pv_kwp": [6.0, 12.0],
                "heat_pump_mode": "flexible",
            },
        }
    )
    run(sc, tmp_path)
    books = pd.read_parquet(tmp_path / "books.parquet")
    mine = books[books.kind == "heat_pump"]
    assert len(mine) > 0 and (mine.side == "buy").all()
    trades = pd.read_parquet(tmp_path / "trades.parquet")
    got = trades[trades.buy_kind == "heat_pump"].groupby(["t", "buyer_id"], observed=True)
    ordered = mine.groupby(["t", "agent_id"], observed=True).energy_kwh.sum()
    filled = got.energy_kwh.sum()
    assert filled.sum() > 0, "no heat-pump order was matched: a weak test"
    assert (filled <= ordered.reindex(filled.index) + 1e-9).all()
    a = pd.read_parquet(tmp_path / "agents.parquet")
    hp = a[a.indoor_temp_c.notna()]
    assert hp.indoor_temp_c.max() <= 22.0 + 1e-9 and hp.indoor_temp_c.min() >= 20.0 - 1e-9
    assert hp.indoor_temp_c.max() > 20.5, "no pre-heating: a weak test"
