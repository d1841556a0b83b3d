"""The community's static table: one row per household, sampled from the seed.

Struct of arrays (PyPSA's static component table): every device parameter is an array of
length ``n``, zero where the household does not own the device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from agents.households.buildings import HeatPumpSpec, HeatPumpTable, sample_heat_pumps

STREAM_HOUSEHOLDS = 101
#: attributes whose ``households.parquet`` column (part of the results contract, kept as
#: it was) has another name: the capacities
FILE_COLUMNS = {"battery_capacity_kwh": "battery_kwh", "ev_capacity_kwh": "ev_kwh"}


@dataclass(frozen=True)
class HouseholdSpec:
    """How the households are drawn (the ``[community]`` scenario keys).

    Ranges are ``(low, high)`` and sampled uniformly per household.
    """

    households: int
    annual_kwh: tuple[float, float]
    pv_share: float
    pv_kwp: tuple[float, float]
    pv_tilt_deg: tuple[float, float]
    pv_azimuth_deg: tuple[float, float]
    battery_share: float
    battery_capacity_kwh: tuple[float, float]
    battery_c_rate: float
    battery_round_trip_efficiency: float
    battery_soc_min_frac: float
    battery_soc_max_frac: float
    battery_initial_soc_frac: float
    ev_share: float
    v2g_share: float
    ev_capacity_kwh: tuple[float, float]
    ev_charger_kw: float
    ev_efficiency: float
    ev_departure_soc_frac: float
    ev_soc_min_frac: float
    ev_km_per_day: tuple[float, float]
    ev_kwh_per_km: float
    heat: HeatPumpSpec | None = None


@dataclass(frozen=True)
class Households:
    """The static household table (one row per household, arrays of length ``n``).

    Attributes
    ----------
    agent_id : household ids ``h0001`` …
    annual_kwh : yearly household consumption [kWh]
    pv_kwp, pv_tilt_deg, pv_azimuth_deg : rooftop PV size [kWp] and orientation [deg]
        (azimuth 180 = south); kWp is 0 without PV
    battery_capacity_kwh : usable-span capacity [kWh], 0 without a battery
    battery_power_kw : charge and discharge limit at the AC terminal [kW]
    battery_eta_charge, battery_eta_discharge : one-way efficiencies (their product is
        the round-trip efficiency)
    battery_soc_min_kwh, battery_soc_max_kwh : state-of-charge limits [kWh]
    battery_soc0_kwh : initial state of charge [kWh]
    ev_capacity_kwh : EV battery capacity [kWh], 0 without an EV
    ev_charger_kw : charger power [kW]; ev_v2g: whether it can discharge to the grid
    ev_eta : one-way charger efficiency
    ev_departure_soc_kwh : state of charge every departure must have [kWh]
    ev_soc_min_kwh : floor that V2G never goes below [kWh]
    ev_trip_kwh_mean : mean energy of a day's driving [kWh]
    hp_source … indoor_temp_max_c : the building and heat pump
        (:class:`agents.households.buildings.HeatPumpTable`; zeros without one)
    """

    agent_id: np.ndarray
    annual_kwh: np.ndarray
    pv_kwp: np.ndarray
    pv_tilt_deg: np.ndarray
    pv_azimuth_deg: np.ndarray
    battery_capacity_kwh: np.ndarray
    battery_power_kw: np.ndarray
    battery_eta_charge: np.ndarray
    battery_eta_discharge: np.ndarray
    battery_soc_min_kwh: np.ndarray
    battery_soc_max_kwh: np.ndarray
    battery_soc0_kwh: np.ndarray
    ev_capacity_kwh: np.ndarray
    ev_charger_kw: np.ndarray
    ev_v2g: np.ndarray
    ev_eta: np.ndarray
    ev_departure_soc_kwh: np.ndarray
    ev_soc_min_kwh: np.ndarray
    ev_trip_kwh_mean: np.ndarray
    hp_source: np.ndarray
    floor_area_m2: np.ndarray
    building_h_kw_k: np.ndarray
    building_c_kwh_k: np.ndarray
    internal_gains_kw: np.ndarray
    hp_cop_a: np.ndarray
    hp_cop_b: np.ndarray
    hp_cop_c: np.ndarray
    hp_sink_offset_c: np.ndarray
    hp_sink_slope: np.ndarray
    hp_power_kw: np.ndarray
    hp_backup_kw: np.ndarray
    indoor_temp_min_c: np.ndarray
    indoor_temp_max_c: np.ndarray
    hp_flexible: np.ndarray

    @property
    def n(self) -> int:
        return len(self.agent_id)

    @property
    def has_ev(self) -> np.ndarray:
        return self.ev_capacity_kwh > 0

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame indexed by ``agent_id``, columns named as in
        ``households.parquet`` (:data:`FILE_COLUMNS`)."""
        data = {FILE_COLUMNS.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}
        return pd.DataFrame(data).set_index("agent_id")


def draw_owners(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Exactly ``round(share * n)`` owners, placed at random."""
    k = round(share * n)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[:k]] = True
    return mask


def sample_households(spec: HouseholdSpec, seed: int) -> Households:
    """Draw the community's households deterministically from ``seed``.

    Device ownership is exact: ``round(share * households)`` households own each device,
    chosen at random; sizes are uniform in the given ranges.
    """
    n = spec.households
    rng = np.random.default_rng([seed, STREAM_HOUSEHOLDS])

    def uniform(bounds: tuple[float, float]) -> np.ndarray:
        return rng.uniform(bounds[0], bounds[1], n)

    annual = uniform(spec.annual_kwh)
    has_pv = draw_owners(rng, n, spec.pv_share)
    pv_kwp = np.where(has_pv, uniform(spec.pv_kwp), 0.0)
    tilt = uniform(spec.pv_tilt_deg)
    azimuth = uniform(spec.pv_azimuth_deg)

    has_bat = draw_owners(rng, n, spec.battery_share)
    bat_kwh = np.where(has_bat, uniform(spec.battery_capacity_kwh), 0.0)
    eta_one_way = np.sqrt(spec.battery_round_trip_efficiency)
    soc_min = spec.battery_soc_min_frac * bat_kwh
    soc_max = spec.battery_soc_max_frac * bat_kwh

    has_ev = draw_owners(rng, n, spec.ev_share)
    v2g = has_ev & (rng.uniform(size=n) < spec.v2g_share)
    ev_kwh = np.where(has_ev, uniform(spec.ev_capacity_kwh), 0.0)
    km = uniform(spec.ev_km_per_day)

    width = max(4, len(str(n)))
    heat = spec.heat or HeatPumpSpec(0.0, 0.0, ("SFH.05",), 20.0, 22.0, 0.0)
    table = sample_heat_pumps(heat, n, seed)
    return Households(
        agent_id=np.array([f"h{i + 1:0{width}d}" for i in range(n)]),
        annual_kwh=annual,
        pv_kwp=pv_kwp,
        pv_tilt_deg=tilt,
        pv_azimuth_deg=azimuth,
        battery_capacity_kwh=bat_kwh,
        battery_power_kw=spec.battery_c_rate * bat_kwh,
        battery_eta_charge=np.full(n, eta_one_way),
        battery_eta_discharge=np.full(n, eta_one_way),
        battery_soc_min_kwh=soc_min,
        battery_soc_max_kwh=soc_max,
        battery_soc0_kwh=spec.battery_initial_soc_frac * bat_kwh,
        ev_capacity_kwh=ev_kwh,
        ev_charger_kw=np.where(has_ev, spec.ev_charger_kw, 0.0),
        ev_v2g=v2g,
        ev_eta=np.full(n, spec.ev_efficiency),
        ev_departure_soc_kwh=spec.ev_departure_soc_frac * ev_kwh,
        ev_soc_min_kwh=spec.ev_soc_min_frac * ev_kwh,
        ev_trip_kwh_mean=np.where(has_ev, km * spec.ev_kwh_per_km, 0.0),
        **{f.name: getattr(table, f.name) for f in fields(HeatPumpTable)},
    )
