"""An interval's book as the step's :class:`~agents.households.community.Plan`.

The households' readings and orders as accepted (:mod:`live.ingest`), and for every
meter-backed household its reading from its meter (:meth:`MeterTracker.settle
<agents.meters.tracker.MeterTracker.settle>`: an estimate when the meter is late) and its
net order placed by the market: a price taker (bids at the retail price, asks at the
feed-in price) unless the scenario names a strategy. The orders are put in a canonical
order (kind, household, order in message): arrival order never matters.
"""

from __future__ import annotations

import numpy as np

from agents.households.community import KIND_NET, TINY_KWH, Plan
from agents.meters.tracker import MeterTracker
from live.ingest import IntervalBook
from live.protocol import Order
from scenarios.config.schema import Scenario
from scenarios.engine.inputs import CommunityInputs, price_band

Where = list[tuple[int, int]]
"""Each order's (household row, index in its message), in the plan's order."""


class Planner:
    """Builds every interval's plan.

    Parameters
    ----------
    scenario : the validated scenario (its meters and their strategies)
    row : each household's row, by agent id
    trackers : each meter's tracker, by meter id
    """

    def __init__(
        self, scenario: Scenario, row: dict[str, int], trackers: dict[str, MeterTracker]
    ) -> None:
        self.n = scenario.community.households
        self.meters = [(m, row[m.household]) for m in scenario.live.meters]
        self.trackers = trackers
        self.band = price_band(scenario)
        self.inputs = (
            CommunityInputs(scenario)
            if any(m.strategy != "price_taker" for m, _ in self.meters)
            else None
        )
        """The community's own bids and asks, for meter-backed households that follow a
        strategy (None when every one is a price taker)."""

    def _meter_orders(
        self, book: IntervalBook, t: int, gen: np.ndarray, demand: np.ndarray
    ) -> tuple[dict[int, Order], int]:
        """Every meter's energy in ``t`` into ``gen`` / ``demand``, its net order, and
        how many meters were estimated."""
        bids = asks = None
        if self.inputs is not None:
            win = self.inputs.at(t)
            bids, asks = win.bids[t - win.t0], win.asks[t - win.t0]
        orders: dict[int, Order] = {}
        estimates = 0
        for meter, row in self.meters:
            imp, exp, estimated = self.trackers[meter.id].settle(t)
            if estimated:
                estimates += 1
                book.estimated.add(row)
            gen[row], demand[row] = exp, imp
            net = exp - imp
            if meter.strategy == "price_taker" or bids is None or asks is None:
                bid, ask = self.band.high, self.band.low
            else:
                bid, ask = float(bids[row]), float(asks[row])
            if abs(net) > TINY_KWH:
                orders[row] = Order(net < 0, abs(net), bid if net < 0 else ask, KIND_NET)
        return orders, estimates

    def plan(self, book: IntervalBook, t: int) -> tuple[Plan, Where, dict[str, int]]:
        """The book of ``t`` in canonical order, each order's place in its message, and
        the interval's counts (``market/result``'s ``counts``); settles every meter's
        energy of ``t`` (under the ingest lock)."""
        n = self.n
        gen, demand, deferrable = np.zeros(n), np.zeros(n), np.zeros(n)
        battery, ev = np.zeros(n), np.zeros(n)
        for row, r in book.readings.items():
            gen[row], demand[row], deferrable[row], battery[row], ev[row] = (
                r.generation_kwh,
                r.demand_kwh,
                r.ev_deferrable_kwh,
                r.battery_kwh,
                r.ev_kwh,
            )
        meter_orders, incomplete = self._meter_orders(book, t, gen, demand)
        entries = []  # (kind, row, index, order)
        for row, orders in book.orders.items():
            for i, o in enumerate(orders):
                entries.append((o.kind, row, i, o))
        for row, o in meter_orders.items():
            entries.append((o.kind, row, 0, o))
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        k = len(entries)
        household = np.fromiter((e[1] for e in entries), np.int64, k)
        is_buy = np.fromiter((e[3].is_buy for e in entries), bool, k)
        energy = np.fromiter((e[3].energy_kwh for e in entries), float, k)
        price = np.fromiter((e[3].price_per_kwh for e in entries), float, k)
        kind = np.fromiter((e[0] for e in entries), np.int8, k)
        signed_net = np.where(is_buy, -energy, energy) * (kind == KIND_NET)
        net_kwh = np.bincount(household, signed_net, n)
        plan = Plan(
            generation_kwh=gen,
            demand_kwh=demand,
            self_kwh={"battery": battery, "ev": ev},
            drawn_kwh={},
            ev_deferrable_kwh=deferrable,
            net_kwh=net_kwh,
            household=household,
            is_buy=is_buy,
            energy_kwh=energy,
            price_per_kwh=price,
            kind=kind,
        )
        counts = {
            "readings": len(book.readings),
            "order_messages": book.order_messages,
            "orders": sum(len(v) for v in book.orders.values()),
            "meter_readings": len(self.trackers) - incomplete,
            "meters_incomplete": incomplete,
            "missing_agents": int(
                n - len(self.meters) - len(set(book.readings) | set(book.orders))
            ),
        }
        return plan, [(e[1], e[2]) for e in entries], counts
