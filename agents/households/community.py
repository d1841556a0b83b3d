"""The community's state and its two moves per interval: plan orders, apply fills.

One interval for every household at once (arrays of length ``n``):

1. **Net first.** Inflexible position ``gen − demand − ev_default``: a plugged-in EV
   charges at once until it holds its departure SoC (of which only the least-laxity part
   ``ev_must`` cannot wait; the rest, ``ev_deferrable_kwh``, the feeder may postpone).
   The home battery covers a deficit or stores a surplus within its limits, then the EV
   soaks up what surplus is left (or, with V2G, covers what deficit is left, but only
   from energy stored above its departure SoC plus a day's mean driving: a car still
   charging never discharges, so V2G never cancels the car's own arrival charging nor
   moves the house's import to the car's next arrival). The remainder is the
   household's net position.
2. **Order the rest.** A positive remainder becomes a sell order, a negative one a buy
   order, at the strategy's limit price; whatever of it is not matched is exchanged with
   the utility. With the ``price_aware`` storage strategy, batteries and EVs also place
   flexible orders (charge when cheap, discharge when dear, see
   :class:`agents.strategies.bidding.PriceAwareStorage`) that happen only if matched.
3. **Apply fills.** Each device's energy = self-consumption + its filled flexible
   orders; states of charge advance.

The devices are the kinds registered in :mod:`agents.devices` (battery, EV, …), run in
registration order: the community knows no device by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agents.devices import DEVICE_KINDS, Battery, Device, Ev, Step
from agents.devices.own_need import OwnNeed
from agents.households.table import Households
from agents.strategies.bidding import PriceAwareStorage
from market.orders import OrderKind

KIND_NET = int(OrderKind.NET)
KIND_BATTERY, KIND_EV = Battery.kind, Ev.kind
TINY_KWH = 1e-9


@dataclass(frozen=True, slots=True)
class Plan:
    """What each household does before the market, and the orders it places.

    ``self_kwh`` is each device's own energy before the market (by device name),
    ``drawn_kwh`` what leaves a device's store other than at its terminal (EV driving).
    Orders are arrays of length ``m``: ``household`` (row in the table), ``is_buy``,
    ``energy_kwh`` (> 0), ``price_per_kwh`` (limit) and ``kind`` (``OrderKind.NET`` for
    the inflexible net position, a device's code, :mod:`agents.devices`, for its
    flexible orders). ``limits`` holds each device's limits of the interval (by name,
    for its state update), ``inputs`` the interval's other observations
    (:attr:`agents.devices.base.Step.inputs`).
    """

    generation_kwh: np.ndarray
    demand_kwh: np.ndarray
    self_kwh: Mapping[str, np.ndarray]
    drawn_kwh: Mapping[str, np.ndarray]
    ev_deferrable_kwh: np.ndarray
    net_kwh: np.ndarray
    household: np.ndarray
    is_buy: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    kind: np.ndarray
    limits: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def battery_self_kwh(self) -> np.ndarray:
        return self.self_kwh[Battery.name]

    @property
    def ev_self_kwh(self) -> np.ndarray:
        return self.self_kwh[Ev.name]

    def postpone(self, deferred_kwh: np.ndarray) -> Plan:
        """The plan with ``deferred_kwh`` (at most :attr:`ev_deferrable_kwh`) taken off
        the own energy of the device kind whose default the feeder may postpone."""
        own = dict(self.self_kwh)
        for kind in DEVICE_KINDS:
            if kind.defers:
                own[kind.name] = own[kind.name] - deferred_kwh
        return replace(self, self_kwh=own)

    def dim(self, own_cut_kwh: Mapping[str, np.ndarray]) -> Plan:
        """The plan with each named device kind's own energy cut by ``own_cut_kwh`` (§14a
        dimming; orders unchanged): the cut is first what the feeder could have postponed,
        and the household's net position grows by it."""
        own = dict(self.self_kwh)
        deferrable, net = self.ev_deferrable_kwh, self.net_kwh
        for kind in DEVICE_KINDS:
            cut = own_cut_kwh.get(kind.name)
            if cut is None:
                continue
            own[kind.name] = own.get(kind.name, np.zeros_like(cut)) - cut
            net = net + cut
            if kind.defers:
                deferrable = np.maximum(deferrable - cut, 0.0)
        return replace(self, self_kwh=own, ev_deferrable_kwh=deferrable, net_kwh=net)

    def dimmed_shortfall_kwh(self, own_cut_kwh: Mapping[str, np.ndarray]) -> np.ndarray:
        """The part of ``own_cut_kwh`` on the deferring kinds beyond what the feeder could
        have postponed: least-laxity EV charging, which the car lacks at departure (it
        charges at full power from then on, so it never makes it up) [kWh AC]."""
        cut = np.zeros(len(self.net_kwh))
        for kind in DEVICE_KINDS:
            if kind.defers and kind.name in own_cut_kwh:
                cut = cut + own_cut_kwh[kind.name]
        return np.maximum(cut - self.ev_deferrable_kwh, 0.0)

    def with_orders(self, keep: np.ndarray, energy_kwh: np.ndarray | None = None) -> Plan:
        """The plan with only the orders in ``keep`` (and their energies replaced by
        ``energy_kwh``, given for every order, when given)."""
        energy = self.energy_kwh if energy_kwh is None else energy_kwh
        return replace(
            self,
            household=self.household[keep],
            is_buy=self.is_buy[keep],
            energy_kwh=energy[keep],
            price_per_kwh=self.price_per_kwh[keep],
            kind=self.kind[keep],
        )


@dataclass(frozen=True, slots=True)
class Flows:
    """What each household did in the interval [kWh]; charging positive.

    ``device_kwh`` and ``soc_kwh`` hold each registered device's energy and state of
    charge at the end of the interval, by device name, in registration order;
    ``results`` every device's own results columns
    (:attr:`agents.devices.base.Device.result_columns`), by column name.
    """

    device_kwh: Mapping[str, np.ndarray]
    bought_kwh: np.ndarray
    sold_kwh: np.ndarray
    soc_kwh: Mapping[str, np.ndarray]
    results: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def battery_kwh(self) -> np.ndarray:
        return self.device_kwh[Battery.name]

    @property
    def ev_kwh(self) -> np.ndarray:
        return self.device_kwh[Ev.name]

    @property
    def battery_soc_kwh(self) -> np.ndarray:
        return self.soc_kwh[Battery.name]

    @property
    def ev_soc_kwh(self) -> np.ndarray:
        return self.soc_kwh[Ev.name]

    def net_kwh(self, generation_kwh: np.ndarray, demand_kwh: np.ndarray) -> np.ndarray:
        """Each household's position at its meter with these flows (generation less
        demand less every device's energy) [kWh, positive = export]."""
        net = generation_kwh - demand_kwh
        for energy in self.device_kwh.values():
            net = net - energy
        return net


def device_flows(
    plan: Plan, filled_kwh: np.ndarray, ev_deferred_kwh: np.ndarray | None = None
) -> Flows:
    """Each household's energies with these fills (``filled_kwh`` per order) [kWh].

    Each registered device: its self-consumption (zero where the plan has none, as in a
    live market's reading) plus its flexible orders as filled, less what the feeder
    postponed of a deferring device's energy (``ev_deferred_kwh``); P2P bought and
    sold. States of charge are zeros here (:meth:`Community.outcome` advances them; the
    live market leaves them to the agents).
    """
    n = len(plan.generation_kwh)
    signed = np.where(plan.is_buy, filled_kwh, -filled_kwh)
    energy = {}
    for kind in DEVICE_KINDS:
        own = plan.self_kwh.get(kind.name)
        fills = np.bincount(plan.household, signed * (plan.kind == kind.kind), n)
        e = fills if own is None else own + fills
        if kind.defers and ev_deferred_kwh is not None:
            e = e - ev_deferred_kwh
        energy[kind.name] = e
    return Flows(
        device_kwh=energy,
        bought_kwh=np.bincount(plan.household, np.where(plan.is_buy, filled_kwh, 0.0), n),
        sold_kwh=np.bincount(plan.household, np.where(plan.is_buy, 0.0, filled_kwh), n),
        soc_kwh={kind.name: np.zeros(n) for kind in DEVICE_KINDS},
        results={
            col: np.full(n, fill)
            for kind in DEVICE_KINDS
            for col, fill in kind.result_columns.items()
        },
    )


class Community:
    """The households' device states, advanced one interval at a time.

    Parameters
    ----------
    households : the static table
    interval_hours : interval length [h]
    storage : the flexible-storage rule, or None for self-consumption only
    """

    def __init__(
        self,
        households: Households,
        interval_hours: float,
        storage: PriceAwareStorage | None,
    ) -> None:
        self.hh = households
        self.dt_h = interval_hours
        self.storage = storage
        self.devices: dict[str, Device] = {
            kind.name: kind(households, interval_hours) for kind in DEVICE_KINDS
        }
        self._idx = np.arange(households.n)
        self.need: OwnNeed | None = None
        if storage is not None:
            self.need = OwnNeed(
                households.battery_soc_max_kwh - households.battery_soc_min_kwh,
                households.battery_power_kw * interval_hours,
                households.battery_eta_charge,
                households.battery_eta_discharge,
                households.has_ev,
                len(storage.expected),
            )
        self._own: tuple[int, np.ndarray] | None = None

    def plan(
        self,
        slot: int,
        generation_kwh: np.ndarray,
        demand_kwh: np.ndarray,
        bid_price: np.ndarray,
        ask_price: np.ndarray,
        ev_present: np.ndarray,
        ev_drive_kwh: np.ndarray,
        ev_intervals_to_departure: np.ndarray,
        inputs: Mapping[str, Any] | None = None,
    ) -> Plan:
        """Net each household's own PV, load and devices; order the rest (``inputs``:
        the interval's other observations, :attr:`agents.devices.base.Step.inputs`)."""
        n = self.hh.n
        inputs = {} if inputs is None else inputs
        step = self._step(slot, ev_present, ev_drive_kwh, ev_intervals_to_departure, inputs)
        devices = list(self.devices.values())
        limits = [d.limits(step) for d in devices]
        defaults = [d.default_kwh(lim) for d, lim in zip(devices, limits, strict=True)]
        rest = generation_kwh - demand_kwh
        for default in defaults:
            if default is not None:
                rest = rest - default
        self._own = (slot, rest)
        own: dict[str, np.ndarray] = {}
        deferrable: np.ndarray | None = None
        for d, lim, default in zip(devices, limits, defaults, strict=True):
            take = d.absorb(rest, default, lim)
            rest = rest - take
            own[d.name] = take if default is None else default + take
            if d.defers and default is not None:
                part = d.deferrable_kwh(own[d.name], default, lim)
                deferrable = part if deferrable is None else deferrable + part
        net = rest

        parts_hh = [self._idx]
        parts_buy = [net < 0]
        parts_kwh = [np.abs(net)]
        parts_price = [np.where(net < 0, bid_price, ask_price)]
        parts_kind = [np.full(n, KIND_NET, dtype=np.int8)]
        for d, lim in zip(devices, limits, strict=True):
            for is_buy, kwh, price in d.orders(step, lim, own[d.name]):
                parts_hh.append(self._idx)
                parts_buy.append(np.full(n, is_buy))
                parts_kwh.append(kwh)
                parts_price.append(np.broadcast_to(price, (n,)))
                parts_kind.append(np.full(n, d.kind, dtype=np.int8))
        household = np.concatenate(parts_hh)
        energy = np.concatenate(parts_kwh)
        keep = energy > TINY_KWH
        drawn = {d.name: x for d in devices if (x := d.drawn_kwh(step)) is not None}
        return Plan(
            generation_kwh=generation_kwh,
            demand_kwh=demand_kwh,
            self_kwh=own,
            drawn_kwh=drawn,
            ev_deferrable_kwh=np.zeros(n) if deferrable is None else deferrable,
            net_kwh=net,
            household=household[keep],
            is_buy=np.concatenate(parts_buy)[keep],
            energy_kwh=energy[keep],
            price_per_kwh=np.concatenate(parts_price)[keep],
            kind=np.concatenate(parts_kind)[keep],
            limits={d.name: lim for d, lim in zip(devices, limits, strict=True)},
            inputs=inputs,
        )

    def _step(
        self,
        slot: int,
        ev_present: np.ndarray,
        ev_drive_kwh: np.ndarray,
        ev_intervals_to_departure: np.ndarray,
        inputs: Mapping[str, Any],
    ) -> Step:
        """The interval as the devices see it. The storage rule signals nothing while
        the own-need forecast is still being learnt (the first day)."""
        storage, need = self.storage, self.need
        direction = 0
        next_slot = slot + 1
        if storage is not None and need is not None and need.ready:
            direction = storage.signal(slot)
            next_slot = (slot + 1) % len(storage.expected)
        return Step(
            slot=slot,
            next_slot=next_slot,
            interval_hours=self.dt_h,
            ev_present=ev_present,
            ev_drive_kwh=ev_drive_kwh,
            ev_intervals_to_departure=ev_intervals_to_departure,
            storage=storage,
            need=need,
            direction=direction,
            inputs=inputs,
        )

    def outcome(
        self, plan: Plan, filled_kwh: np.ndarray, ev_deferred_kwh: np.ndarray | None = None
    ) -> Flows:
        """What the households would do with these fills (``filled_kwh`` per order).

        ``ev_deferred_kwh`` is EV charging the feeder postponed (at most the plan's
        ``ev_deferrable_kwh``). Pure: the states of charge are not advanced until
        :meth:`commit`.
        """
        flows = device_flows(plan, filled_kwh, ev_deferred_kwh)
        soc, results = {}, dict(flows.results)
        for name, d in self.devices.items():
            lim, ac = plan.limits.get(name), flows.device_kwh[name]
            soc[name] = d.next_soc(ac, plan.drawn_kwh.get(name), lim)
            results.update(d.results(ac, soc[name], lim))
        return replace(flows, soc_kwh=soc, results=results)

    @property
    def stored_kwh(self) -> np.ndarray:
        """Electric energy held in each household's devices now [kWh] (a building's
        stored heat is not: :attr:`agents.devices.base.Device.stores_electricity`)."""
        socs = [d.soc_kwh for d in self.devices.values() if d.stores_electricity]
        total = socs[0]
        for soc in socs[1:]:
            total = total + soc
        return total

    def commit(self, flows: Flows) -> None:
        """Advance the states of charge to the end of the interval (and learn the
        households' own positions of the interval last planned)."""
        for name, d in self.devices.items():
            d.soc_kwh = flows.soc_kwh[name]
        if self.need is not None and self._own is not None:
            self.need.observe(*self._own)
            self._own = None

    def apply(self, plan: Plan, filled_kwh: np.ndarray) -> Flows:
        """:meth:`outcome` and :meth:`commit` in one step."""
        flows = self.outcome(plan, filled_kwh)
        self.commit(flows)
        return flows
