"""The scenario schema: every key, its type, unit, default and bounds.

A scenario is a frozen, validated tree of pydantic models. Every key has a default;
unknown keys, wrong types, out-of-range values and impossible combinations are all
collected and reported together by :func:`scenarios.config.loader.load_scenario` as one
:class:`~scenarios.errors.ScenarioError` naming each key path.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from grid.district_networks import is_district
from scenarios.config.renamed_keys import renamed_in_section
from scenarios.config.schema_heat import HeatKeys
from scenarios.config.schema_live import LiveSection, check_meter_households, household_ids
from scenarios.config.schema_market import MarketSection, check_levels
from scenarios.config.schema_members import Member, check_members
from scenarios.config.schema_p2p import check_p2p_dso, check_p2p_members
from scenarios.config.schema_sharing import check_sharing_members
from scenarios.config.section import Section as _Section

if TYPE_CHECKING:
    import pandas as pd


_ISO_START = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?"
)
"""The ISO forms of ``simulation.start`` the standard library reads as pandas does; any
other text goes to pandas (imported only then: it is most of ``p2pgrid validate``'s
start-up)."""


def _iso_start(start: str) -> datetime.datetime | None:
    """``start`` read by the standard library, or None when it is not in an ISO form."""
    if not _ISO_START.fullmatch(start):
        return None
    try:
        return datetime.datetime.fromisoformat(start)
    except ValueError:
        return None


NonNegRange = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class Simulation(_Section):
    """When and how finely the community is simulated."""

    start: str = "2026-06-01"
    """Local date (``YYYY-MM-DD``), or an ISO timestamp at local midnight, of the first
    interval; a TOML/YAML date or datetime literal (``start = 2026-06-01``) is the same."""
    days: int = Field(2, ge=1, le=3660)
    interval_minutes: Literal[5, 10, 15, 20, 30, 60] = 15
    timezone: str = "Europe/Berlin"
    seed: int = Field(1, ge=0, lt=2**32)
    weather_seed: int | None = Field(None, ge=0, lt=2**32)
    """Seed of the weather alone (the sky's clouds, the air temperature's daily anomaly);
    default: ``seed``. A district's LV feeders draw their households from ``seed + k`` and
    share the district's weather (one sky over a few km)."""

    @property
    def sky_seed(self) -> int:
        """The seed the weather is drawn from: ``weather_seed``, else ``seed``."""
        return self.seed if self.weather_seed is None else self.weather_seed

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _date_literal(cls, value: object) -> object:
        # TOML and YAML read `start = 2026-06-21` as a date (or a datetime): the same
        # day as the string "2026-06-21"
        if isinstance(value, datetime.date):  # datetime.datetime is a date too
            return value.isoformat()
        return value

    @field_validator("start")
    @classmethod
    def _parsable_start(cls, value: str) -> str:
        if _iso_start(value) is not None:
            return value
        import pandas as pd

        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ValueError(f"{value!r} is not a date or ISO timestamp") from None
        return value

    @model_validator(mode="after")
    def _starts_at_midnight(self) -> Simulation:
        # the profile generators lay whole days out from the first interval
        iso = _iso_start(self.start)
        if iso is not None:
            tz = zoneinfo.ZoneInfo(self.timezone)
            local = iso.replace(tzinfo=tz) if iso.tzinfo is None else iso.astimezone(tz)
            midnight = local.time() == datetime.time(0)
        else:
            stamp = self.start_timestamp()
            local, midnight = stamp, stamp == stamp.normalize()
        if not midnight:
            raise ValueError(
                f"start {self.start!r} is {local.strftime('%H:%M')} in {self.timezone}, but a "
                "run starts at local midnight (give a date, or a timestamp at 00:00 local time)"
            )
        return self

    def start_timestamp(self) -> pd.Timestamp:
        """First interval as a tz-aware timestamp (local midnight for a bare date)."""
        import pandas as pd

        ts = pd.Timestamp(self.start)
        if ts.tzinfo is None:
            return ts.tz_localize(self.timezone)
        return ts.tz_convert(self.timezone)

    @property
    def intervals_per_day(self) -> int:
        return 1440 // self.interval_minutes

    @property
    def interval_hours(self) -> float:
        return self.interval_minutes / 60.0

    @property
    def n_intervals(self) -> int:
        return self.days * self.intervals_per_day


class Community(HeatKeys, _Section):
    """The households: how many, which devices they own, how they bid."""

    households: int = Field(40, ge=1, le=200_000)
    profiles: Literal["synthetic", "simbench"] = "synthetic"
    simbench_code: str = "1-LV-rural1--0-sw"
    """SimBench grid whose household and PV profiles are used when profiles = "simbench"."""
    latitude: float = Field(52.52, ge=-90, le=90)
    longitude: float = Field(13.40, ge=-180, le=180)
    altitude_m: float = Field(35.0, ge=-500, le=9000)
    annual_kwh: NonNegRange = (2000.0, 5500.0)
    """Household yearly consumption [kWh], sampled uniformly per household."""
    pv_share: Share = 0.5
    pv_kwp: NonNegRange = (3.0, 10.0)
    pv_tilt_deg: tuple[float, float] = (20.0, 45.0)
    pv_azimuth_deg: tuple[float, float] = (120.0, 240.0)
    battery_share: Share = 0.3
    battery_capacity_kwh: NonNegRange = (5.0, 13.5)
    """Usable capacity of a home battery [kWh], sampled uniformly per battery household
    (formerly ``battery_kwh``)."""
    battery_c_rate: float = Field(0.5, gt=0, le=4)
    """Power limit as a fraction of capacity per hour [1/h]."""
    battery_round_trip_efficiency: float = Field(0.90, gt=0, le=1)
    battery_soc_min_frac: Share = 0.05
    battery_soc_max_frac: Share = 0.95
    battery_initial_soc_frac: Share = 0.5
    ev_share: Share = 0.2
    v2g_share: Share = 0.5
    """Of the EV owners, the share with a bidirectional (V2G) charger."""
    ev_capacity_kwh: NonNegRange = (40.0, 80.0)
    """Battery capacity of an EV [kWh], sampled uniformly per EV owner (formerly
    ``ev_kwh``)."""
    ev_charger_kw: float = Field(11.0, gt=0, le=350)
    ev_efficiency: float = Field(0.92, gt=0, le=1)
    """One-way charger efficiency (AC to battery and back)."""
    ev_departure_soc_frac: Share = 0.8
    ev_soc_min_frac: Share = 0.2
    ev_km_per_day: NonNegRange = (10.0, 60.0)
    ev_kwh_per_km: float = Field(0.18, gt=0, le=1)
    strategy: Literal["zic", "truthful"] = "zic"
    """Bidding strategy of the households' net positions."""
    storage_strategy: Literal["price_aware", "self_consumption"] = "price_aware"
    """Whether batteries and EVs also trade flexibly (price_aware) or only self-consume
    (always under ``market.mechanism = "sharing"``: allocation keys have no prices)."""
    members: tuple[Member, ...] = ()
    """Members given instead of drawn (a school, …): :mod:`scenarios.config.schema_members`."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: object) -> object:
        return renamed_in_section("community", data)

    @model_validator(mode="after")
    def _consistent(self) -> Community:
        problems = []
        for name in (
            "annual_kwh",
            "pv_kwp",
            "pv_tilt_deg",
            "pv_azimuth_deg",
            "battery_capacity_kwh",
            "ev_capacity_kwh",
            "ev_km_per_day",
        ):
            value = getattr(self, name)
            if value[0] > value[1]:
                problems.append(f"{name}: lower bound {value[0]} is above upper bound {value[1]}")
        if not (0 <= self.pv_tilt_deg[0] and self.pv_tilt_deg[1] <= 90):
            problems.append(f"pv_tilt_deg: {list(self.pv_tilt_deg)} must lie within [0, 90]")
        if not (0 <= self.pv_azimuth_deg[0] and self.pv_azimuth_deg[1] <= 360):
            problems.append(f"pv_azimuth_deg: {list(self.pv_azimuth_deg)} must lie within [0, 360]")
        if self.battery_soc_min_frac >= self.battery_soc_max_frac:
            problems.append(
                f"battery_soc_min_frac: {self.battery_soc_min_frac} must be below "
                f"battery_soc_max_frac ({self.battery_soc_max_frac})"
            )
        if not (
            self.battery_soc_min_frac <= self.battery_initial_soc_frac <= self.battery_soc_max_frac
        ):
            problems.append(
                f"battery_initial_soc_frac: {self.battery_initial_soc_frac} must lie between "
                f"battery_soc_min_frac ({self.battery_soc_min_frac}) and "
                f"battery_soc_max_frac ({self.battery_soc_max_frac})"
            )
        if self.ev_soc_min_frac >= self.ev_departure_soc_frac:
            problems.append(
                f"ev_soc_min_frac: {self.ev_soc_min_frac} must be below "
                f"ev_departure_soc_frac ({self.ev_departure_soc_frac})"
            )
        if self.pv_share > 0 and self.pv_kwp[1] <= 0:
            problems.append("pv_kwp: households with PV need a positive size")
        if self.battery_share > 0 and self.battery_capacity_kwh[0] <= 0:
            problems.append(
                "battery_capacity_kwh: households with a battery need a positive capacity"
            )
        if self.ev_share > 0 and self.ev_capacity_kwh[0] <= 0:
            problems.append("ev_capacity_kwh: EV owners need a positive battery capacity")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class GridSection(_Section):
    """The distribution feeder and its limits."""

    feeder: str = "ieee33"
    """ieee33 | radial:<households> | simbench:<code> | path to a feeder file (JSON or CSV pair)."""
    v_min_pu: float = Field(0.95, gt=0.5, lt=1.5)
    v_max_pu: float = Field(1.05, gt=0.5, lt=1.5)
    v_margin_pu: float = Field(0.01, ge=0, lt=0.1)
    """Safety margin inside the voltage limits, so that what the linear model calls
    feasible is feasible in AC (LinDistFlow is optimistic under low voltage)."""
    household_power_factor: float = Field(0.97, gt=0.5, le=1.0)
    """Power factor of household demand (inductive); PV and storage run at unity."""
    check: Literal["off", "pyomo", "pyomo+ac"] = "pyomo"
    controllable_share: Share = 0.0
    """Share of households whose wallbox, battery, heat pump (and any other
    §14a-controllable device kind) is registered with the grid operator as controllable
    (§14a EnWG), drawn from the seed like the device shares."""
    dimming: bool = True
    """Whether the grid operator dims registered devices when the feeder is stressed,
    before curtailing or deferring anything else (off: the same devices are not dimmed)."""
    dimming_min_kw: float = Field(4.2, ge=0, le=1000)
    """Power every dimmed device keeps [kW]: 4.2 kW by §14a EnWG and BNetzA BK6-22-300
    (determination of 27 Nov 2023); ``grid.dimming`` turns the dimming off."""
    background: Literal["bdew_h0", "rts", "peak"] = "bdew_h0"
    """Calendar of the feeder's own (background) load, whose bus table holds its annual
    peak: ``bdew_h0`` the residential BDEW H0 profile (the households' own shape),
    ``rts`` the IEEE RTS weekly x daily x hourly utility load, ``peak`` the snapshot on
    every interval (a worst case). See :mod:`scenarios.engine.background`."""

    @model_validator(mode="after")
    def _limits_ordered(self) -> GridSection:
        if self.v_min_pu + self.v_margin_pu >= self.v_max_pu - self.v_margin_pu:
            raise ValueError(
                f"v_min_pu: {self.v_min_pu} plus the margin ({self.v_margin_pu}) must stay "
                f"below v_max_pu ({self.v_max_pu}) minus the margin"
            )
        return self


class OutputSection(_Section):
    """Optional extra results files (off by default: the core files stay as they are)."""

    order_books: bool = False
    """Also write books.parquet: every interval's order book as submitted (``t, agent_id,
    side, kind, energy_kwh, price_per_kwh``), for the dashboard's supply and demand
    curves of a finished run. Adds about one row per household and interval."""
    agents: Literal["full", "daily", "none"] = "full"
    """The per-household table: ``full`` writes agents.parquet (one row per household and
    interval), ``daily`` agents_daily.parquet instead (one row per household and day:
    energies and money summed, states at the day's end), ``none`` neither; the KPIs per
    member come from totals accumulated during the run in every mode (README "The
    outputs")."""


class Scenario(_Section):
    """A whole scenario as run."""

    name: str = Field("scenario", min_length=1, max_length=200)
    simulation: Simulation = Simulation()
    community: Community = Community()
    market: MarketSection = MarketSection()
    grid: GridSection = GridSection()
    live: LiveSection = LiveSection()
    output: OutputSection = OutputSection()

    @model_validator(mode="after")
    def _cross_section(self) -> Scenario:
        problems = []
        if self.community.profiles == "simbench" and self.simulation.interval_minutes % 15:
            problems.append(
                "community.profiles = 'simbench' needs simulation.interval_minutes to be a "
                f"multiple of 15 (got {self.simulation.interval_minutes})"
            )
        if self.market.grid_fee_model == "distance" and self.grid.check == "off":
            problems.append(
                "market.grid_fee_model = 'distance' charges by the electrical distance on "
                "the feeder, which needs the feeder in the run: set grid.check to 'pyomo' "
                "or 'pyomo+ac' (it is 'off'), or use market.grid_fee_model = 'flat'"
            )
        g = self.grid
        if g.controllable_share > 0 and g.dimming and g.check == "off":
            problems.append(
                f"grid.controllable_share = {g.controllable_share}: the grid operator dims "
                "registered devices where the feeder check finds a limit broken, which needs "
                "grid.check = 'pyomo' or 'pyomo+ac' (it is 'off'), or set grid.dimming = false"
            )
        problems += check_meter_households(self.live, self.community.households)
        problems += check_levels(self.market, g.feeder, is_district(g.feeder))
        if "district" in self.market.levels and self.output.agents != "full":
            problems.append(
                f"output.agents = {self.output.agents!r}: the district market books its fills "
                "into each feeder's agents.parquet, so a district run needs "
                "output.agents = 'full'"
            )
        ids = household_ids(self.community.households)
        problems += check_members(self.community.members, ids)
        if self.market.mechanism == "p2p":
            problems += check_p2p_members(self.market.p2p, ids)
            problems += check_p2p_dso(self.market.p2p, self.grid.check)
            if self.market.p2p.needs_feeder and self.grid.check == "off":
                problems.append(
                    "market.p2p: partners by number, distance_per_kwh or the neighbour "
                    "premium need the feeder's electrical distances (grid.check != 'off')"
                )
        if self.market.is_sharing:
            problems += check_sharing_members(self.market.sharing, ids)
            if self.market.grid_fee_model != "flat":
                problems.append(
                    "market.mechanism = 'sharing' charges each shared kWh the jurisdiction's "
                    "fee ([market.sharing]): it needs market.grid_fee_model = 'flat' (it is "
                    f"{self.market.grid_fee_model!r})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self
