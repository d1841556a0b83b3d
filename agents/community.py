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
   :class:`agents.strategy.PriceAwareStorage`) that happen only if matched.
3. **Apply fills.** Battery and EV energy = self-consumption + filled flexible orders;
   states of charge advance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from agents.households import Households
from agents.own_need import OwnNeed
from agents.storage import battery_limits, ev_limits, next_soc
from agents.strategy import PriceAwareStorage

KIND_NET, KIND_BATTERY, KIND_EV = 0, 1, 2
TINY_KWH = 1e-9


@dataclass(frozen=True, slots=True)
class Plan:
    """What each household does before the market, and the orders it places.

    Orders are arrays of length ``m``: ``household`` (row in the table), ``is_buy``,
    ``energy_kwh`` (> 0), ``price_per_kwh`` (limit) and ``kind`` (KIND_NET for the
    inflexible net position, KIND_BATTERY / KIND_EV for flexible storage orders).
    """

    generation_kwh: np.ndarray
    demand_kwh: np.ndarray
    battery_self_kwh: np.ndarray
    ev_self_kwh: np.ndarray
    ev_drive_kwh: np.ndarray
    ev_deferrable_kwh: np.ndarray
    net_kwh: np.ndarray
    household: np.ndarray
    is_buy: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    kind: np.ndarray

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
    """What each household did in the interval [kWh]; charging positive."""

    battery_kwh: np.ndarray
    ev_kwh: np.ndarray
    bought_kwh: np.ndarray
    sold_kwh: np.ndarray
    battery_soc_kwh: np.ndarray
    ev_soc_kwh: np.ndarray


def device_flows(
    plan: Plan, filled_kwh: np.ndarray, ev_deferred_kwh: np.ndarray | None = None
) -> Flows:
    """Each household's energies with these fills (``filled_kwh`` per order) [kWh].

    Battery and EV: self-consumption plus the flexible orders as filled, less the EV
    charging the feeder postponed (``ev_deferred_kwh``); P2P bought and sold. States of
    charge are zeros here (:meth:`Community.outcome` advances them; the live market
    leaves them to the agents).
    """
    n = len(plan.generation_kwh)
    signed = np.where(plan.is_buy, filled_kwh, -filled_kwh)
    battery = plan.battery_self_kwh + np.bincount(
        plan.household, signed * (plan.kind == KIND_BATTERY), n
    )
    ev = plan.ev_self_kwh + np.bincount(plan.household, signed * (plan.kind == KIND_EV), n)
    if ev_deferred_kwh is not None:
        ev = ev - ev_deferred_kwh
    return Flows(
        battery_kwh=battery,
        ev_kwh=ev,
        bought_kwh=np.bincount(plan.household, np.where(plan.is_buy, filled_kwh, 0.0), n),
        sold_kwh=np.bincount(plan.household, np.where(plan.is_buy, 0.0, filled_kwh), n),
        battery_soc_kwh=np.zeros(n),
        ev_soc_kwh=np.zeros(n),
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
        self.battery_soc_kwh = households.battery_soc0_kwh.copy()
        self.ev_soc_kwh = households.ev_departure_soc_kwh.copy()
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
    ) -> Plan:
        """Net each household's own PV, load and storage; order the rest."""
        hh, dt_h = self.hh, self.dt_h
        b_ch, b_dis = battery_limits(
            self.battery_soc_kwh,
            hh.battery_soc_min_kwh,
            hh.battery_soc_max_kwh,
            hh.battery_power_kw,
            hh.battery_eta_charge,
            hh.battery_eta_discharge,
            dt_h,
        )
        e_must, e_ch, e_dis = ev_limits(
            self.ev_soc_kwh,
            hh.ev_kwh,
            hh.ev_soc_min_kwh,
            hh.ev_departure_soc_kwh,
            hh.ev_trip_kwh_mean,
            hh.ev_charger_kw,
            hh.ev_eta,
            hh.ev_v2g,
            ev_present,
            ev_intervals_to_departure,
            dt_h,
        )
        # A plugged-in EV charges at once until it holds its departure SoC; of that, only
        # the least-laxity part cannot wait (the feeder may defer the rest).
        to_target = np.clip((hh.ev_departure_soc_kwh - self.ev_soc_kwh) / hh.ev_eta, 0.0, e_ch)
        e_default = np.maximum(to_target, e_must)
        net0 = generation_kwh - demand_kwh - e_default
        self._own = (slot, net0)
        b_self = np.clip(net0, -b_dis, b_ch)
        rest = net0 - b_self
        e_flex = np.clip(rest, -e_dis, e_ch - e_default)
        net = rest - e_flex
        e_self = e_default + e_flex
        ev_deferrable = np.maximum(np.minimum(e_self, e_default) - e_must, 0.0)

        parts_hh = [self._idx]
        parts_buy = [net < 0]
        parts_kwh = [np.abs(net)]
        parts_price = [np.where(net < 0, bid_price, ask_price)]
        parts_kind = [np.full(hh.n, KIND_NET, dtype=np.int8)]
        flexible = self._flexible(
            slot, b_self, b_ch, b_dis, e_self, e_ch, ev_intervals_to_departure
        )
        for kind, is_buy, kwh, price in flexible:
            parts_hh.append(self._idx)
            parts_buy.append(np.full(hh.n, is_buy))
            parts_kwh.append(kwh)
            parts_price.append(price)
            parts_kind.append(np.full(hh.n, kind, dtype=np.int8))
        household = np.concatenate(parts_hh)
        energy = np.concatenate(parts_kwh)
        keep = energy > TINY_KWH
        return Plan(
            generation_kwh=generation_kwh,
            demand_kwh=demand_kwh,
            battery_self_kwh=b_self,
            ev_self_kwh=e_self,
            ev_drive_kwh=ev_drive_kwh,
            ev_deferrable_kwh=ev_deferrable,
            net_kwh=net,
            household=household[keep],
            is_buy=np.concatenate(parts_buy)[keep],
            energy_kwh=energy[keep],
            price_per_kwh=np.concatenate(parts_price)[keep],
            kind=np.concatenate(parts_kind)[keep],
        )

    def _flexible(
        self,
        slot: int,
        b_self: np.ndarray,
        b_ch: np.ndarray,
        b_dis: np.ndarray,
        e_self: np.ndarray,
        e_ch: np.ndarray,
        ev_intervals_to_departure: np.ndarray,
    ) -> list[tuple[int, bool, np.ndarray, np.ndarray]]:
        """The storage rule's orders ``(kind, is_buy, energy, limit)``, one per household.

        A battery buys up to what its owner will need at the start of the next interval
        (:class:`agents.own_need.OwnNeed`) and offers only what it holds above that; an
        EV buys charging above what it already takes, but not the room the household's
        own forecast surplus will fill before the car leaves (bought energy there would
        only push that surplus out to be sold for less). Nothing while the forecast is
        still being learnt (the first day).
        """
        storage, need = self.storage, self.need
        if storage is None or need is None or not need.ready:
            return []
        direction = storage.signal(slot)
        if direction == 0:
            return []
        hh = self.hh
        nxt = (slot + 1) % len(storage.expected)
        after = next_soc(
            self.battery_soc_kwh, b_self, hh.battery_eta_charge, hh.battery_eta_discharge
        )
        spare = after - hh.battery_soc_min_kwh - need.need_kwh(nxt)
        battery_rt = hh.battery_eta_charge * hh.battery_eta_discharge
        if direction < 0:
            offer = np.maximum(spare, 0.0) * hh.battery_eta_discharge
            sell = np.where(b_self <= 0, np.minimum(b_dis + b_self, offer), 0.0)
            return [(KIND_BATTERY, False, sell, storage.sell_limit(slot, battery_rt))]
        room = np.maximum(-spare, 0.0) / hh.battery_eta_charge
        buy = np.where(b_self >= 0, np.minimum(b_ch - b_self, room), 0.0)
        ev_room = (hh.ev_kwh - self.ev_soc_kwh) / hh.ev_eta - e_self
        ev_room -= need.surplus_kwh(nxt, ev_intervals_to_departure - 1)
        ev_buy = np.clip(ev_room, 0.0, e_ch - e_self)
        return [
            (KIND_BATTERY, True, buy, storage.buy_limit(slot, battery_rt)),
            (KIND_EV, True, ev_buy, storage.buy_limit(slot, hh.ev_eta * hh.ev_eta)),
        ]

    def outcome(
        self, plan: Plan, filled_kwh: np.ndarray, ev_deferred_kwh: np.ndarray | None = None
    ) -> Flows:
        """What the households would do with these fills (``filled_kwh`` per order).

        ``ev_deferred_kwh`` is EV charging the feeder postponed (at most the plan's
        ``ev_deferrable_kwh``). Pure: the states of charge are not advanced until
        :meth:`commit`.
        """
        hh = self.hh
        flows = device_flows(plan, filled_kwh, ev_deferred_kwh)
        return replace(
            flows,
            battery_soc_kwh=next_soc(
                self.battery_soc_kwh,
                flows.battery_kwh,
                hh.battery_eta_charge,
                hh.battery_eta_discharge,
            ),
            ev_soc_kwh=next_soc(self.ev_soc_kwh, flows.ev_kwh, hh.ev_eta, hh.ev_eta)
            - plan.ev_drive_kwh,
        )

    @property
    def stored_kwh(self) -> np.ndarray:
        """Energy held in each household's battery and EV now [kWh]."""
        return self.battery_soc_kwh + self.ev_soc_kwh

    def commit(self, flows: Flows) -> None:
        """Advance the states of charge to the end of the interval (and learn the
        households' own positions of the interval last planned)."""
        self.battery_soc_kwh = flows.battery_soc_kwh
        self.ev_soc_kwh = flows.ev_soc_kwh
        if self.need is not None and self._own is not None:
            self.need.observe(*self._own)
            self._own = None

    def apply(self, plan: Plan, filled_kwh: np.ndarray) -> Flows:
        """:meth:`outcome` and :meth:`commit` in one step."""
        flows = self.outcome(plan, filled_kwh)
        self.commit(flows)
        return flows
