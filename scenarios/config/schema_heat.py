"""The ``[community]`` keys of weather, buildings and heat pumps (issue 14)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.households.building_classes import BUILDING_CLASSES

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class HeatKeys(BaseModel):
    """Weather, buildings and heat pumps of the community (mixed into ``Community``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    weather_file: str | None = None
    """A TMY/EPW weather file (read with ``pvlib.iotools.read_epw``): its air temperature
    drives PV cell temperature and heat demand, month-day-hour matched to the run's
    timestamps. Default: the seeded synthetic temperature."""
    temp_anomaly_sd_k: float = Field(0.0, ge=0, le=15)
    """Standard deviation of the synthetic daily temperature anomaly [K] (an AR(1) over
    days, :mod:`agents.profiles.weather`); 0 keeps the climatological days (the default,
    as before). About 3 K is typical of Berlin's daily means."""
    temp_anomaly_persistence: float = Field(0.8, ge=0, lt=1)
    """Lag-1 correlation of the daily temperature anomaly from one day to the next [-]."""
    heat_pump_share: Share = 0.0
    """Fraction of households heated by a heat pump (in a TABULA building class)."""
    heat_pump_ground_share: Share = 0.0
    """Of the heat pumps, the share with a ground source (the rest air source)."""
    building_classes: tuple[str, ...] = tuple(BUILDING_CLASSES)
    """TABULA German single-family house classes drawn uniformly per heat-pump household
    (``SFH.01`` … ``SFH.12``, :mod:`agents.households.buildings`)."""
    indoor_temp_min_c: float = Field(20.0, ge=5, le=30)
    """Lower end of the comfort band [°C]: the thermostat holds it."""
    indoor_temp_max_c: float = Field(22.0, ge=5, le=35)
    """Upper end of the comfort band [°C]: flexible pre-heating stops there."""
    heat_pump_backup_kw: float = Field(6.0, ge=0, le=50)
    """Resistive backup heater of each heat pump [kW] (COP 1)."""
    heat_pump_mode: Literal["thermostat", "flexible"] = "thermostat"
    """thermostat: hold the lower setpoint; flexible: also pre-heat within the band on own
    PV surplus and with the storage strategy's buy orders (filled only if matched)."""

    @model_validator(mode="after")
    def _heat_consistent(self) -> HeatKeys:
        problems = []
        unknown = [c for c in self.building_classes if c not in BUILDING_CLASSES]
        if unknown or not self.building_classes:
            problems.append(
                f"building_classes: {unknown or 'empty'} not among {', '.join(BUILDING_CLASSES)}"
            )
        if self.indoor_temp_min_c >= self.indoor_temp_max_c:
            problems.append(
                f"indoor_temp_min_c: {self.indoor_temp_min_c} must be below "
                f"indoor_temp_max_c ({self.indoor_temp_max_c})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self
