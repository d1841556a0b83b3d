"""The community's inputs, drawn from the scenario's seed (what the batch engine, the live
agents and the meter emulator all see).

:class:`CommunityInputs` draws the households, their profiles, the outdoor air
temperature, EV trips and limit prices, in windows of :data:`WINDOW_DAYS` days (the same
draws whoever asks). Meter-backed households (``[live] meters``) have no devices of their
own and see their grid connection (:func:`agents.meters.connection.as_metered`); price takers
bid ``retail − fee`` and ask ``feed_in``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from agents.devices.ev_trips import EvSchedule, EvWindow, draw_ev_schedule
from agents.households.buildings import HeatPumpSpec
from agents.households.table import Households, HouseholdSpec, sample_households
from agents.meters.connection import as_metered, without_devices
from agents.profiles.daytime import weekday_daytime_kwh
from agents.profiles.source import ProfileSource, Site
from agents.profiles.weather import AirTemperature
from agents.profiles.weather_file import check_covers, read_epw_temperature
from agents.strategies.bidding import PriceBand, draw_limit_prices
from scenarios.config.preflight import require_profiles
from scenarios.config.schema import Scenario

WINDOW_DAYS = 7
"""Days of intervals simulated and written per window (bounds memory)."""


def household_spec(scenario: Scenario) -> HouseholdSpec:
    """The ``[community]`` keys that shape the household table."""
    c = scenario.community
    names = HouseholdSpec.__dataclass_fields__
    keys = c.model_dump()
    heat = HeatPumpSpec(**{k: keys[k] for k in HeatPumpSpec.__dataclass_fields__})
    return HouseholdSpec(**{k: v for k, v in keys.items() if k in names}, heat=heat)


def make_profiles(scenario: Scenario, hh: Households) -> ProfileSource:
    """The profile source the scenario asks for."""
    sim, c = scenario.simulation, scenario.community
    site = Site(c.latitude, c.longitude, c.altitude_m, sim.timezone)
    start = sim.start_timestamp()
    air = air_temperature(scenario)
    if c.profiles == "simbench":
        from agents.profiles.simbench import SimbenchProfiles

        require_profiles(scenario)

        return SimbenchProfiles(
            start,
            sim.days,
            sim.interval_minutes,
            site,
            hh.annual_kwh,
            hh.pv_kwp,
            sim.seed,
            grid_code=c.simbench_code,
            air=air,
        )
    from agents.profiles.source import SyntheticProfiles

    return SyntheticProfiles(
        start,
        sim.days,
        sim.interval_minutes,
        site,
        hh.annual_kwh,
        hh.pv_kwp,
        hh.pv_tilt_deg,
        hh.pv_azimuth_deg,
        sim.seed,
        air=air,
        weather_seed=sim.sky_seed,
    )


def air_temperature(scenario: Scenario) -> AirTemperature:
    """The community's air temperature: a weather file's, or the seeded model's."""
    sim, c = scenario.simulation, scenario.community
    table, offset = None, 0.0
    if c.weather_file is not None:
        table, offset = read_epw_temperature(c.weather_file)
        check_covers(table, timeline(scenario), offset, c.weather_file)
    return AirTemperature(
        sim.start_timestamp(),
        sim.days,
        c.longitude,
        c.latitude,
        sim.sky_seed,
        c.temp_anomaly_sd_k,
        c.temp_anomaly_persistence,
        table,
        offset,
    )


def timeline(scenario: Scenario) -> pd.DatetimeIndex:
    """Tz-aware timestamps of every interval start (elapsed time from the start)."""
    sim = scenario.simulation
    start = sim.start_timestamp()
    utc = pd.date_range(
        start.tz_convert("UTC"), periods=sim.n_intervals, freq=f"{sim.interval_minutes}min"
    )
    return utc.tz_convert(sim.timezone)


def price_band(scenario: Scenario) -> PriceBand:
    mk = scenario.market
    return PriceBand(mk.feed_in_price_per_kwh, mk.retail_price_per_kwh, mk.max_grid_fee_per_kwh)


@dataclass(frozen=True)
class InputWindow:
    """A window of whole days of inputs, arrays of shape (intervals, households)."""

    first_day: int
    t0: int
    generation_kwh: np.ndarray
    demand_kwh: np.ndarray
    bids: np.ndarray
    asks: np.ndarray
    ev: EvWindow
    outdoor_temp_c: np.ndarray

    @property
    def n(self) -> int:
        return len(self.generation_kwh)

    def observed(self, t: int, intervals_per_day: int) -> tuple:
        """The arguments of :meth:`agents.households.community.Community.plan` for ``t``."""
        i = t - self.t0
        ev = self.ev
        return (
            t % intervals_per_day,
            self.generation_kwh[i],
            self.demand_kwh[i],
            self.bids[i],
            self.asks[i],
            ev.present[i],
            ev.drive_kwh[i],
            ev.intervals_to_departure[i],
            {"outdoor_temp_c": float(self.outdoor_temp_c[i])},
        )


def community_households(scenario: Scenario) -> Households:
    """The scenario's households as sampled from its seed; a household behind a smart
    meter (``[[live.meters]]``) keeps no simulated devices (the meter measures them); a
    ``[[community.members]]`` entry replaces its member's consumption and PV and keeps no
    devices (:mod:`scenarios.config.schema_members`)."""
    hh = sample_households(household_spec(scenario), scenario.simulation.seed)
    members = scenario.community.members
    if members:
        ids = hh.agent_id.tolist()
        rows = np.array([ids.index(m.id) for m in members], dtype=np.int64)
        given = {
            name: getattr(hh, name).copy()
            for name in ("annual_kwh", "pv_kwp", "pv_tilt_deg", "pv_azimuth_deg")
        }
        for name, values in given.items():
            values[rows] = [getattr(m, name) for m in members]
        hh = without_devices(replace(hh, **given), np.isin(hh.agent_id, [m.id for m in members]))
    metered = np.isin(hh.agent_id, [m.household for m in scenario.live.meters])
    return without_devices(hh, metered) if metered.any() else hh


def member_loads(
    scenario: Scenario, ids: list[str], stamps: pd.DatetimeIndex
) -> list[tuple[int, np.ndarray]]:
    """``(row, demand_kwh per interval)`` of the members whose load is not a household's."""
    sim = scenario.simulation
    return [
        (
            ids.index(m.id),
            weekday_daytime_kwh(
                stamps, m.annual_kwh, m.load_hours, m.base_load_frac, sim.interval_hours
            ),
        )
        for m in scenario.community.members
        if m.load == "weekday_daytime"
    ]


class CommunityInputs:
    """The scenario's households and everything they observe, drawn from its seed."""

    def __init__(self, scenario: Scenario) -> None:
        sim = scenario.simulation
        self.scenario = scenario
        self.stamps = timeline(scenario)
        self.band = price_band(scenario)
        hh = community_households(scenario)
        ids = list(hh.agent_id)
        meters = scenario.live.meters
        self.meter_rows = np.array([ids.index(m.household) for m in meters], dtype=np.int64)
        self.price_takers = np.array(
            [ids.index(m.household) for m in meters if m.strategy == "price_taker"], dtype=np.int64
        )
        self.metered = np.zeros(hh.n, dtype=bool)
        self.metered[self.meter_rows] = True
        self.hh = hh
        self.profiles = make_profiles(scenario, hh)
        self.member_loads = member_loads(scenario, ids, self.stamps)
        self.schedule: EvSchedule = draw_ev_schedule(
            hh,
            self.stamps[:: sim.intervals_per_day].dayofweek.to_numpy(),
            sim.intervals_per_day,
            sim.interval_hours,
            sim.seed,
        )
        self._window: InputWindow | None = None

    def window(self, first_day: int, n_days: int) -> InputWindow:
        """Inputs of days ``first_day … first_day + n_days − 1``."""
        sc = self.scenario
        ipd = sc.simulation.intervals_per_day
        window = self.profiles.window(first_day, n_days)
        gen, demand = window.generation_kwh, window.demand_kwh
        if self.member_loads:
            demand = demand.copy()
            t0 = first_day * ipd
            for row, load in self.member_loads:
                demand[:, row] = load[t0 : t0 + demand.shape[0]]
        bids, asks = draw_limit_prices(
            sc.community.strategy, self.band, demand.shape, sc.simulation.seed, first_day
        )
        for m in sc.live.meters:
            if m.strategy != "price_taker" and m.strategy != sc.community.strategy:
                col = self.hh.agent_id.tolist().index(m.household)
                own_bid, own_ask = draw_limit_prices(
                    m.strategy, self.band, demand.shape, sc.simulation.seed, first_day
                )
                bids[:, col], asks[:, col] = own_bid[:, col], own_ask[:, col]
        if self.metered.any():
            rows = self.meter_rows
            gen, demand = gen.copy(), demand.copy()
            gen[:, rows], demand[:, rows] = as_metered(gen[:, rows], demand[:, rows])
            bids[:, self.price_takers] = self.band.high
            asks[:, self.price_takers] = self.band.low
        return InputWindow(
            first_day,
            first_day * ipd,
            gen,
            demand,
            bids,
            asks,
            self.schedule.window(first_day, n_days),
            window.outdoor_temp_c,
        )

    def at(self, t: int) -> InputWindow:
        """The window holding interval ``t`` (cached: live callers walk forward)."""
        sim = self.scenario.simulation
        win = self._window
        if win is None or not (win.t0 <= t < win.t0 + win.n):
            first_day = (t // sim.intervals_per_day) // WINDOW_DAYS * WINDOW_DAYS
            win = self.window(first_day, min(WINDOW_DAYS, sim.days - first_day))
            self._window = win
        return win
