"""Buildings and heat pumps of the households: documented classes, seeded draws.

Building classes: the German single-family house types of the TABULA/EPISCOPE typology
(IWU, "Deutsche Wohngebäudetypologie", 2nd ed. 2015; the TABULA web tool's data set
``DE.N.SFH.<class>.Gen.ReEx.001.001``, existing state, as shipped in
github.com/FZJ-IEK3-VSA/HiSim ``hisim/inputs/housing/data_raw/tabula_DE_complete.csv``).
Per class: reference floor area ``A_C_Ref`` [m²], heat transfer coefficients of
transmission and ventilation per floor area ``h_Transmission + h_Ventilation``
[W/(m²K)], and TABULA's internal heat capacity ``c_m = 45 Wh/(m²K)`` (medium); internal
gains ``phi_int = 3 W/m²``. Hence ``H = (h_tr + h_ve)·A`` [W/K] and ``C = c_m·A`` [Wh/K].
Classes from 2002 on get floor heating, older ones radiators (an assumption for the
heating curve, :mod:`agents.devices.thermal`).

Heat pumps are sized to the design heat load ``H·(T_min − T_design)`` at the norm outdoor
temperature :data:`DESIGN_TEMP_C` (DIN/TS 12831-1 for Berlin/Potsdam, −14 °C): the heat
pump's electric limit is that load over its COP at design conditions, so that with the
backup heater it meets the design load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.devices.thermal import COP_COEFFICIENTS, HEATING_CURVES, heat_pump_cop
from agents.households.building_classes import BUILDING_CLASSES

STREAM_HEAT_PUMPS = 104
#: Norm outdoor temperature of the design heat load [°C] (Berlin, DIN/TS 12831-1).
DESIGN_TEMP_C: float = -14.0
#: TABULA internal heat capacity, class "medium" [Wh/(m²K)].
C_M_WH_M2K: float = 45.0
#: TABULA internal gains of residential use [W/m²].
INTERNAL_GAINS_W_M2: float = 3.0

FLOOR_HEATING_FROM_YEAR = 2002


@dataclass(frozen=True)
class HeatPumpSpec:
    """How the heat pumps are drawn (the ``[community]`` heat keys)."""

    heat_pump_share: float
    heat_pump_ground_share: float
    building_classes: tuple[str, ...]
    indoor_temp_min_c: float
    indoor_temp_max_c: float
    heat_pump_backup_kw: float
    heat_pump_mode: str = "thermostat"


@dataclass(frozen=True)
class HeatPumpTable:
    """Per household (zeros where none): building and heat pump."""

    hp_source: np.ndarray  # 0 none, 1 air, 2 ground
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


def building_params(name: str) -> tuple[float, float, float, float]:
    """``(floor area [m²], H [kW/K], C [kWh/K], internal gains [kW])`` of a class."""
    _, area, h, _ = BUILDING_CLASSES[name]
    return area, h * area / 1000.0, C_M_WH_M2K * area / 1000.0, INTERNAL_GAINS_W_M2 * area / 1000.0


def sample_heat_pumps(spec: HeatPumpSpec, n: int, seed: int) -> HeatPumpTable:
    """Draw ``round(share·n)`` heat pumps (own stream: the other draws stay as they were),
    each in a building of a class drawn uniformly from ``spec.building_classes``."""
    rng = np.random.default_rng([seed, STREAM_HEAT_PUMPS])
    k = round(spec.heat_pump_share * n)
    owner = np.zeros(n, dtype=bool)
    owner[rng.permutation(n)[:k]] = True
    ground = owner & (rng.uniform(size=n) < spec.heat_pump_ground_share)
    names = list(spec.building_classes)
    pick = rng.integers(0, len(names), n)
    params = np.array([building_params(c) for c in names])[pick]
    floor = np.array([BUILDING_CLASSES[c][0] >= FLOOR_HEATING_FROM_YEAR for c in names])[pick]
    area, h, c, gains = (np.where(owner, params[:, i], 0.0) for i in range(4))
    coef = np.where(ground[:, None], COP_COEFFICIENTS["ground"], COP_COEFFICIENTS["air"])
    curve = np.where(floor[:, None], HEATING_CURVES["floor"], HEATING_CURVES["radiator"])
    design_kw = h * (spec.indoor_temp_min_c - DESIGN_TEMP_C)
    design_cop = heat_pump_cop(
        DESIGN_TEMP_C, ground, curve[:, 0], curve[:, 1], coef[:, 0], coef[:, 1], coef[:, 2]
    )
    return HeatPumpTable(
        hp_source=np.where(owner, np.where(ground, 2, 1), 0).astype(np.int8),
        floor_area_m2=area,
        building_h_kw_k=h,
        building_c_kwh_k=c,
        internal_gains_kw=gains,
        hp_cop_a=coef[:, 0],
        hp_cop_b=coef[:, 1],
        hp_cop_c=coef[:, 2],
        hp_sink_offset_c=curve[:, 0],
        hp_sink_slope=curve[:, 1],
        hp_power_kw=np.where(owner, design_kw / design_cop, 0.0),
        hp_backup_kw=np.where(owner, spec.heat_pump_backup_kw, 0.0),
        indoor_temp_min_c=np.where(owner, spec.indoor_temp_min_c, 0.0),
        indoor_temp_max_c=np.where(owner, spec.indoor_temp_max_c, 0.0),
        hp_flexible=owner & (spec.heat_pump_mode == "flexible"),
    )
