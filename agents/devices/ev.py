"""EVs as a device kind: a plugged-in car charges at once until it holds its departure
SoC (of which only the least-laxity part cannot wait; the rest the feeder may postpone),
soaks up the household's surplus left after the battery (or, with V2G, covers what
deficit is left from energy above its departure SoC plus a day's driving,
:func:`agents.devices.storage.ev_limits`), and with the storage rule bids for charging above what
it already takes, but not for the room the household's own forecast surplus will fill
before it leaves (bought energy there would only push that surplus out to be sold for
less)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.devices.base import Device, DeviceOrder, Step
from agents.devices.storage import ev_limits, next_soc

if TYPE_CHECKING:
    from agents.households.table import Households

#: (must charge, max charge, max discharge, default charge) this interval [kWh AC]
EvLimits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Ev(Device):
    name = "ev"
    columns = (
        "ev_capacity_kwh",
        "ev_charger_kw",
        "ev_v2g",
        "ev_departure_soc_kwh",
        "ev_soc_min_kwh",
        "ev_trip_kwh_mean",
    )
    defers = True
    controllable = True

    def __init__(self, households: Households, interval_hours: float) -> None:
        super().__init__(households, interval_hours)
        self.soc_kwh = households.ev_departure_soc_kwh.copy()

    def limits(self, step: Step) -> EvLimits:
        hh = self.hh
        must, charge, discharge = ev_limits(
            self.soc_kwh,
            hh.ev_capacity_kwh,
            hh.ev_soc_min_kwh,
            hh.ev_departure_soc_kwh,
            hh.ev_trip_kwh_mean,
            hh.ev_charger_kw,
            hh.ev_eta,
            hh.ev_v2g,
            step.ev_present,
            step.ev_intervals_to_departure,
            self.dt_h,
        )
        to_target = np.clip((hh.ev_departure_soc_kwh - self.soc_kwh) / hh.ev_eta, 0.0, charge)
        return must, charge, discharge, np.maximum(to_target, must)

    def default_kwh(self, lim: EvLimits) -> np.ndarray:
        return lim[3]

    def absorb(
        self, rest_kwh: np.ndarray, default_kwh: np.ndarray | None, lim: EvLimits
    ) -> np.ndarray:
        _, charge, discharge, default = lim
        return np.clip(rest_kwh, -discharge, charge - default)

    def deferrable_kwh(
        self, self_kwh: np.ndarray, default_kwh: np.ndarray, lim: EvLimits
    ) -> np.ndarray:
        return np.maximum(np.minimum(self_kwh, default_kwh) - lim[0], 0.0)

    def orders(self, step: Step, lim: EvLimits, self_kwh: np.ndarray) -> list[DeviceOrder]:
        storage, need = step.storage, step.need
        if step.direction <= 0 or storage is None or need is None:
            return []
        hh = self.hh
        room = (hh.ev_capacity_kwh - self.soc_kwh) / hh.ev_eta - self_kwh
        room -= need.surplus_kwh(step.next_slot, step.ev_intervals_to_departure - 1)
        buy = np.clip(room, 0.0, lim[1] - self_kwh)
        return [(True, buy, storage.buy_limit(step.slot, hh.ev_eta * hh.ev_eta))]

    def drawn_kwh(self, step: Step) -> np.ndarray:
        return step.ev_drive_kwh

    def max_draw_kwh(self, lim: EvLimits) -> np.ndarray:
        return lim[1]

    def next_soc(
        self, ac_kwh: np.ndarray, drawn_kwh: np.ndarray | None, lim: object = None
    ) -> np.ndarray:
        hh = self.hh
        soc = next_soc(self.soc_kwh, ac_kwh, hh.ev_eta, hh.ev_eta)
        return soc if drawn_kwh is None else soc - drawn_kwh
