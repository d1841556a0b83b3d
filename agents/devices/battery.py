"""Home batteries as a device kind: self-consumption first, then the storage rule's
orders (a battery buys up to what its owner will need at the start of the next interval,
:class:`agents.devices.own_need.OwnNeed`, and offers only what it holds above that)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.devices.base import Device, DeviceOrder, Step
from agents.devices.storage import battery_limits, next_soc

if TYPE_CHECKING:
    from agents.households.table import Households


class Battery(Device):
    name = "battery"
    columns = (
        "battery_capacity_kwh",
        "battery_power_kw",
        "battery_soc_min_kwh",
        "battery_soc_max_kwh",
        "battery_soc0_kwh",
    )
    controllable = True

    def __init__(self, households: Households, interval_hours: float) -> None:
        super().__init__(households, interval_hours)
        self.soc_kwh = households.battery_soc0_kwh.copy()

    def limits(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        hh = self.hh
        return battery_limits(
            self.soc_kwh,
            hh.battery_soc_min_kwh,
            hh.battery_soc_max_kwh,
            hh.battery_power_kw,
            hh.battery_eta_charge,
            hh.battery_eta_discharge,
            self.dt_h,
        )

    def absorb(
        self,
        rest_kwh: np.ndarray,
        default_kwh: np.ndarray | None,
        lim: tuple[np.ndarray, np.ndarray],
    ) -> np.ndarray:
        charge, discharge = lim
        return np.clip(rest_kwh, -discharge, charge)

    def orders(
        self, step: Step, lim: tuple[np.ndarray, np.ndarray], self_kwh: np.ndarray
    ) -> list[DeviceOrder]:
        storage, need = step.storage, step.need
        if step.direction == 0 or storage is None or need is None:
            return []
        hh = self.hh
        charge, discharge = lim
        after = next_soc(self.soc_kwh, self_kwh, hh.battery_eta_charge, hh.battery_eta_discharge)
        spare = after - hh.battery_soc_min_kwh - need.need_kwh(step.next_slot)
        round_trip = hh.battery_eta_charge * hh.battery_eta_discharge
        if step.direction < 0:
            offer = np.maximum(spare, 0.0) * hh.battery_eta_discharge
            sell = np.where(self_kwh <= 0, np.minimum(discharge + self_kwh, offer), 0.0)
            return [(False, sell, storage.sell_limit(step.slot, round_trip))]
        room = np.maximum(-spare, 0.0) / hh.battery_eta_charge
        buy = np.where(self_kwh >= 0, np.minimum(charge - self_kwh, room), 0.0)
        return [(True, buy, storage.buy_limit(step.slot, round_trip))]

    def max_draw_kwh(self, lim: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return lim[0]

    def next_soc(
        self, ac_kwh: np.ndarray, drawn_kwh: np.ndarray | None, lim: object = None
    ) -> np.ndarray:
        hh = self.hh
        return next_soc(self.soc_kwh, ac_kwh, hh.battery_eta_charge, hh.battery_eta_discharge)
