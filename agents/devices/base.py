"""What a device kind declares to the community (one class per kind, vectorised).

A device kind is a class whose instance holds the kind's static table (arrays of length
``n``, zeros where a household has no such device) and its state, and answers, for one
interval and the whole fleet at once:

- :meth:`Device.limits` — its limits this interval (any object the kind's other methods
  read back);
- :meth:`Device.default_kwh` — its default (inflexible) energy (None for none), taken
  before anything else is netted;
- :meth:`Device.absorb` — how much of the household's remaining position it takes on its
  own (self-consumption, on top of the default);
- :meth:`Device.orders` — its flexible orders ``(is_buy, energy, limit)``, each an order
  per household that happens only if matched;
- :meth:`Device.next_soc` — how its energy (own plus filled orders) advances its state.

AC energies are per interval [kWh], positive when the device takes energy. The community
(:class:`agents.households.community.Community`) runs the registered kinds in registration order
(:mod:`agents.devices`); the registry assigns each kind its order-kind code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from agents.devices.own_need import OwnNeed
    from agents.households.table import Households
    from agents.strategies.bidding import PriceAwareStorage

#: one flexible order per household: (is_buy, energy [kWh], limit [currency/kWh])
DeviceOrder = tuple[bool, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class Step:
    """One interval as the devices see it (arrays of length ``n``).

    ``direction`` is the storage rule's signal (+1 charge, −1 discharge, 0 none: also
    without a rule or while its forecast is still being learnt); ``need`` the
    households' learnt own need (:class:`agents.devices.own_need.OwnNeed`), ``next_slot`` the
    interval of the day after this one; ``inputs`` the interval's other observations by
    name (``outdoor_temp_c`` [°C], the community's air temperature).
    """

    slot: int
    next_slot: int
    interval_hours: float
    ev_present: np.ndarray
    ev_drive_kwh: np.ndarray
    ev_intervals_to_departure: np.ndarray
    storage: PriceAwareStorage | None
    need: OwnNeed | None
    direction: int
    inputs: Mapping[str, Any] = field(default_factory=dict)


class Device:
    """Base of the device kinds: no default, no self-consumption, no orders, no store.

    Subclasses set :attr:`name` (its word in the results files and on the wire) and
    override what they do; :attr:`kind` is assigned on registration.
    """

    name: ClassVar[str]
    kind: ClassVar[int] = 0
    #: its columns of the household table, zero (False) where a household has none
    columns: ClassVar[tuple[str, ...]] = ()
    #: whether the feeder may postpone part of its default energy (see :meth:`deferrable_kwh`)
    defers: ClassVar[bool] = False
    #: whether it is a controllable device under §14a EnWG: where its household is
    #: registered, the grid operator may dim its draw (own charging and flexible buy
    #: orders) to a guaranteed minimum per device (``scenarios/engine/dimming.py``)
    controllable: ClassVar[bool] = False
    #: whether its state is stored electric energy (valued at the end of a run)
    stores_electricity: ClassVar[bool] = True
    #: its own per-household results (``agents.parquet`` columns) and their value where
    #: a household has none or nothing computed them (see :meth:`results`)
    result_columns: ClassVar[dict[str, float]] = {}

    def __init__(self, households: Households, interval_hours: float) -> None:
        self.hh = households
        self.dt_h = interval_hours
        self.soc_kwh = np.zeros(households.n)

    def limits(self, step: Step) -> Any:
        return None

    def default_kwh(self, lim: Any) -> np.ndarray | None:
        """Its inflexible energy [kWh], or None for none."""
        return None

    def absorb(self, rest_kwh: np.ndarray, default_kwh: np.ndarray | None, lim: Any) -> np.ndarray:
        """What it takes of the household's remaining position ``rest_kwh`` on its own,
        on top of its default [kWh]."""
        return np.zeros(self.hh.n)

    def deferrable_kwh(self, self_kwh: np.ndarray, default_kwh: np.ndarray, lim: Any) -> np.ndarray:
        """Part of its own energy the feeder may postpone [kWh] (only if :attr:`defers`)."""
        return np.zeros(self.hh.n)

    def orders(self, step: Step, lim: Any, self_kwh: np.ndarray) -> list[DeviceOrder]:
        return []

    def drawn_kwh(self, step: Step) -> np.ndarray | None:
        """Energy leaving its store other than at the AC terminal (driving) [kWh]."""
        return None

    def max_draw_kwh(self, lim: Any) -> np.ndarray | None:
        """The most electric energy it can draw this interval [kWh] (None: it draws
        nothing of its own), for a grid operator's dimming."""
        return None

    def next_soc(
        self, ac_kwh: np.ndarray, drawn_kwh: np.ndarray | None, lim: Any = None
    ) -> np.ndarray:
        """State after an interval of AC energy ``ac_kwh`` with this interval's limits
        ``lim`` (pure) [kWh]."""
        return self.soc_kwh

    def results(
        self, ac_kwh: np.ndarray, soc_kwh: np.ndarray, lim: Any = None
    ) -> dict[str, np.ndarray]:
        """Its :attr:`result_columns` after an interval of AC energy ``ac_kwh`` ending
        in state ``soc_kwh`` (pure)."""
        return {}
