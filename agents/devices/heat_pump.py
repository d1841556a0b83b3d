"""Heat pumps in thermal buildings as a device kind (vectorised over the fleet).

Each heat-pump household's house is a 1R1C building (:mod:`agents.devices.thermal`,
parameters from :mod:`agents.households.buildings`); its state is the heat stored above
the comfort band's lower end, ``C·(T_in − T_min)`` [kWh heat], so that
``T_in = T_min + soc / C``. The interval's outdoor temperature comes in the step's
inputs (``outdoor_temp_c``).

- **Default (thermostat):** the heat that ends the interval at ``T_min`` (none if the
  house stays warm enough on its own), from the heat pump up to its electric limit at the
  interval's COP, the rest from the resistive backup (COP 1) up to its power; what both
  cannot deliver is reported as ``unmet_heat_kwh``.
- **Flexible** (``hp_flexible``): pre-heating up to ``T_max`` by the heat pump alone, on
  the household's own PV surplus (self-consumption, like a battery) and with the storage
  strategy's buy orders while it signals charging, filled only if matched.

Heat pumps are §14a controllable devices (:attr:`HeatPump.controllable`): where the
household is registered (``grid.controllable_share``) the grid operator may dim the
thermostat's draw to the guaranteed minimum; the house then cools and what the band
lacks is ``unmet_heat_kwh``.

Whatever electric energy the device ends up with (dimmed or deferred included) is split
heat pump first (up to its limit), backup after: the heat delivered follows from it,
and so the indoor temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from agents.devices.base import Device, DeviceOrder, Step
from agents.devices.thermal import (
    decay,
    end_temp_c,
    heat_delivered_kwh,
    heat_pump_cop,
    heat_to_reach_kw,
)

if TYPE_CHECKING:
    from agents.households.table import Households

TEMP_INPUT = "outdoor_temp_c"
#: heat shortfalls below this are rounding, not unmet heat [kWh]
TINY_KWH = 1e-9


@dataclass(frozen=True, slots=True)
class HeatPumpLimits:
    """One interval's heat-pump limits (arrays of length ``n``; energies per interval)."""

    t_out_c: float
    decay: np.ndarray
    cop: np.ndarray
    need_heat_kwh: np.ndarray
    """Heat that ends the interval at ``T_min`` (what the thermostat asks for)."""
    band_need_kwh: np.ndarray
    """The band's own need of the interval: ``need_heat_kwh`` for a house in the band, the
    heat that holds ``T_min`` for one already below it (its earlier shortfall was counted
    as unmet when it happened, and is not counted again while it recovers)."""
    default_kwh: np.ndarray
    """Electric energy the thermostat draws (heat pump plus backup)."""
    hp_max_kwh: np.ndarray
    """Most electric energy the heat pump itself can draw."""
    backup_max_kwh: np.ndarray
    extra_kwh: np.ndarray
    """Electric energy the heat pump could add on top of the default, up to ``T_max``."""


class HeatPump(Device):
    name = "heat_pump"
    columns = (
        "hp_source",
        "floor_area_m2",
        "building_h_kw_k",
        "building_c_kwh_k",
        "internal_gains_kw",
        "hp_power_kw",
        "hp_backup_kw",
    )
    stores_electricity = False
    #: a §14a controllable device (heat pump and backup dimmed together, as one device)
    controllable = True
    result_columns: ClassVar[dict[str, float]] = {"indoor_temp_c": np.nan, "unmet_heat_kwh": 0.0}

    def __init__(self, households: Households, interval_hours: float) -> None:
        super().__init__(households, interval_hours)
        self.owner = households.hp_source > 0
        self.ground = households.hp_source == 2

    def temp_c(self, soc_kwh: np.ndarray) -> np.ndarray:
        """Indoor temperature [°C] with ``soc_kwh`` stored above the band (NaN without)."""
        hh = self.hh
        c = np.where(self.owner, hh.building_c_kwh_k, 1.0)
        return np.where(self.owner, hh.indoor_temp_min_c + soc_kwh / c, np.nan)

    def limits(self, step: Step) -> HeatPumpLimits | None:
        if not self.owner.any():
            return None
        hh, dt = self.hh, self.dt_h
        t_out = float(step.inputs[TEMP_INPUT])
        a = decay(hh.building_h_kw_k, hh.building_c_kwh_k, dt)
        t0 = np.where(self.owner, self.temp_c(self.soc_kwh), 0.0)
        h, gains = hh.building_h_kw_k, hh.internal_gains_kw
        need = np.maximum(heat_to_reach_kw(t0, hh.indoor_temp_min_c, t_out, h, a) - gains, 0.0)
        t_held = np.maximum(t0, hh.indoor_temp_min_c)
        hold = np.maximum(heat_to_reach_kw(t_held, hh.indoor_temp_min_c, t_out, h, a) - gains, 0)
        band = np.maximum(heat_to_reach_kw(t0, hh.indoor_temp_max_c, t_out, h, a) - gains, 0.0)
        c = heat_pump_cop(
            t_out, self.ground, hh.hp_sink_offset_c, hh.hp_sink_slope,
            hh.hp_cop_a, hh.hp_cop_b, hh.hp_cop_c,
        )  # fmt: skip
        c = np.where(self.owner, c, 1.0)
        hp_max = hh.hp_power_kw * dt
        backup_max = hh.hp_backup_kw * dt
        need_kwh, band_kwh = need * dt, band * dt
        hp_heat = np.minimum(need_kwh, hp_max * c)
        backup = np.minimum(need_kwh - hp_heat, backup_max)
        hp_el = hp_heat / c
        extra = np.clip(np.minimum((band_kwh - hp_heat) / c, hp_max - hp_el), 0.0, None)
        return HeatPumpLimits(
            t_out_c=t_out,
            decay=a,
            cop=c,
            need_heat_kwh=need_kwh,
            band_need_kwh=np.where(self.owner, hold * dt, 0.0),
            default_kwh=hp_el + backup,
            hp_max_kwh=hp_max,
            backup_max_kwh=backup_max,
            extra_kwh=np.where(hh.hp_flexible, extra, 0.0),
        )

    def default_kwh(self, lim: HeatPumpLimits | None) -> np.ndarray | None:
        return None if lim is None else lim.default_kwh

    def absorb(
        self, rest_kwh: np.ndarray, default_kwh: np.ndarray | None, lim: HeatPumpLimits | None
    ) -> np.ndarray:
        if lim is None:
            return np.zeros(self.hh.n)
        return np.clip(rest_kwh, 0.0, lim.extra_kwh)

    def orders(
        self, step: Step, lim: HeatPumpLimits | None, self_kwh: np.ndarray
    ) -> list[DeviceOrder]:
        storage = step.storage
        if lim is None or step.direction <= 0 or storage is None:
            return []
        buy = np.clip(lim.extra_kwh - (self_kwh - lim.default_kwh), 0.0, None)
        return [(True, buy, storage.buy_limit(step.slot, np.ones(self.hh.n)))]

    def max_draw_kwh(self, lim: HeatPumpLimits | None) -> np.ndarray | None:
        return None if lim is None else lim.hp_max_kwh + lim.backup_max_kwh

    def _heat_kwh(self, ac_kwh: np.ndarray, lim: HeatPumpLimits) -> np.ndarray:
        return heat_delivered_kwh(ac_kwh, lim.hp_max_kwh, lim.cop)

    def next_soc(
        self, ac_kwh: np.ndarray, drawn_kwh: np.ndarray | None, lim: object = None
    ) -> np.ndarray:
        if not isinstance(lim, HeatPumpLimits):
            return self.soc_kwh
        hh = self.hh
        q_kw = self._heat_kwh(ac_kwh, lim) / self.dt_h + hh.internal_gains_kw
        t0 = np.where(self.owner, self.temp_c(self.soc_kwh), 0.0)
        t_end = end_temp_c(t0, lim.t_out_c, q_kw, hh.building_h_kw_k, lim.decay)
        return np.where(self.owner, hh.building_c_kwh_k * (t_end - hh.indoor_temp_min_c), 0.0)

    def results(
        self, ac_kwh: np.ndarray, soc_kwh: np.ndarray, lim: object = None
    ) -> dict[str, np.ndarray]:
        if not isinstance(lim, HeatPumpLimits):
            return {}
        unmet = lim.band_need_kwh - self._heat_kwh(ac_kwh, lim)
        unmet = np.where(unmet > TINY_KWH, unmet, 0.0)
        return {"indoor_temp_c": self.temp_c(soc_kwh), "unmet_heat_kwh": unmet}
