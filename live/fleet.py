"""The scenario's simulated households as MQTT agents (``p2pgrid agents``).

The fleet holds the same community the batch engine simulates (struct of arrays, drawn
from the seed by :class:`scenarios.engine.inputs.CommunityInputs`) and speaks for each of its
households on that household's own topics: on every ``clock`` for interval ``t`` it
plans (:meth:`agents.households.community.Community.plan`), publishes each household's reading and
orders, and, once the settlements of ``t`` are in, applies every household's fills
(:meth:`~agents.households.community.Community.outcome`, ``commit``) before it plans ``t + 1``.
A repeated clock for an unsettled interval (after a market restart or a broker
reconnect) makes it send the same messages again; repeated settlements are ignored.
Only the clock of its run drives it (:mod:`live.runfilter`): never a retained clock
an earlier run left on the broker.

One MQTT connection serves the whole fleet (a gateway; 5,000 clients in one process
would measure the machine, not the market); the ACL lets that one account write every
simulated household's topics and nothing else.

With keys (``keys``: ``--keys DIR``, else the folder of the scenario's ``[live] keys``)
each household signs its reading and orders with its own key, ``DIR/<agent_id>.key``
(:mod:`live.signatures`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from agents.households.community import Community, Plan, device_flows
from agents.strategies.bidding import PriceAwareStorage
from live.bus import BrokerConfig, Bus
from live.clock import read_clock
from live.fleet_base import FleetBase
from live.protocol import (
    Order,
    Reading,
    orders_payload,
    reading_payload,
    topics_for,
)
from live.signatures import signers_for
from scenarios.config.schema import Scenario
from scenarios.engine.inputs import CommunityInputs

SETTLEMENT_WAIT_S = 10.0


@dataclass
class FleetStats:
    intervals: int = 0
    readings_sent: int = 0
    order_messages_sent: int = 0
    orders_sent: int = 0
    resent: int = 0
    settlements: int = 0
    missing_settlements: int = 0


class AgentFleet(FleetBase):
    """Every household of the scenario that is neither backed by a meter nor external
    (``[live] external``: run by a third-party client)."""

    def __init__(
        self,
        scenario: Scenario,
        broker: BrokerConfig,
        run: str | None = None,
        bus: Bus | None = None,
        keys: Path | None = None,
    ) -> None:
        """``bus``: speak through that (started and stopped by its owner) instead of a
        connection of the fleet's own: the market's, in the market's process. ``keys``:
        the folder of every household's private key (each must be there); default: the
        keys found beside the scenario's ``[live] keys``."""
        sim = scenario.simulation
        self.scenario = scenario
        self.topics = topics_for(scenario)
        self.inputs = CommunityInputs(scenario)
        hh = self.inputs.hh
        self.ids = [str(a) for a in hh.agent_id]
        external = np.isin(self.ids, scenario.live.external)
        self.rows = np.flatnonzero(~self.inputs.metered & ~external)
        self.signers = signers_for(scenario.live, [self.ids[r] for r in self.rows], keys)
        """The households' private keys by agent id (none: messages go unsigned)."""
        self.ipd = sim.intervals_per_day
        self.storage = None
        if scenario.community.storage_strategy == "price_aware" and not scenario.market.is_sharing:
            self.storage = PriceAwareStorage(self.inputs.band, self.ipd)
        self.community = Community(hh, sim.interval_hours, self.storage)
        self.stats = FleetStats()
        self._planned: tuple[int, Plan, dict[int, list[int]], list[tuple[str, Any]]] | None = None
        self._settled: dict[str, dict[str, Any]] = {}
        self._last_settled = -1
        self._run: str | None = None
        """The run of the clocks handled so far."""
        super().__init__(broker, self.topics.root, self.topics.clock, "fleet", run, bus)
        self.bus.subscribe(self.topics.settlement("+"), self._enqueue("settle"))

    # --- worker -------------------------------------------------------------------
    def _work(self) -> None:
        pending_clock: dict[str, Any] | None = None
        waiting_since = 0.0
        while not self.done.is_set():
            kind, topic, payload = self._next(0.2)
            if kind == "stop":
                return
            if kind == "settle":
                self._on_settlement(topic, payload)
            elif kind == "clock":
                clock = read_clock(payload)
                if clock is None:
                    continue
                if clock.get("run") != self._run:
                    # a run adopted from a stale retained clock was replaced (live.runfilter):
                    # what was planned for it is dropped, nothing of it was applied
                    self._run = clock.get("run")
                    self._planned, self._settled, pending_clock = None, {}, None
                if clock.get("done"):
                    if self._planned is not None and self._planned[0] < clock.get("t", 0):
                        pending_clock = clock
                        waiting_since = time.monotonic()
                    else:
                        self.done.set()
                        return
                else:
                    pending_clock = clock
                    waiting_since = time.monotonic()
            if pending_clock is not None:
                if self._advance(pending_clock, time.monotonic() - waiting_since):
                    if pending_clock.get("done"):
                        self.done.set()
                        return
                    pending_clock = None

    def _on_settlement(self, topic: str, payload: bytes) -> None:
        if self._planned is None:
            return
        try:
            data = orjson.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("t") != self._planned[0]:
            return  # a repeat of an interval already applied, or not ours yet
        agent = self.topics.agent_of(topic)
        if agent not in self._settled:
            self.stats.settlements += 1
        self._settled[agent] = data

    def _advance(self, clock: dict[str, Any], waited_s: float) -> bool:
        """Handle a clock; False while the previous interval's settlements are awaited."""
        t = int(clock.get("t", -1))
        if self._planned is not None:
            t_prev = self._planned[0]
            if t == t_prev and not clock.get("done"):
                self._send(self._planned[3], resend=True)  # asked again: same messages
                return True
            if t > t_prev:
                expected = len(self.rows)
                if len(self._settled) < expected and waited_s < SETTLEMENT_WAIT_S:
                    return False
                self._apply()
            elif t < t_prev:
                return True
        if clock.get("done") or t >= self.scenario.simulation.n_intervals or t < 0:
            return True
        self._plan(t)
        return True

    def _apply(self) -> None:
        assert self._planned is not None
        t, plan, order_rows, _ = self._planned
        n = self.community.hh.n
        filled = np.zeros(len(plan.energy_kwh))
        deferred = np.zeros(n)
        price = float("nan")
        any_deferred = False
        dimmed: dict[int, dict[str, Any]] = {}
        for row in self.rows:
            agent = self.ids[row]
            s = self._settled.get(agent)
            if s is None:
                self.stats.missing_settlements += 1
                continue
            idx = order_rows.get(int(row), [])
            got = s.get("filled_kwh", [])
            if len(got) == len(idx):
                filled[idx] = got
            d = s.get("ev_deferred_kwh") or 0.0
            if d:
                deferred[row] = d
                any_deferred = True
            if s.get("price_per_kwh") is not None:
                price = float(s["price_per_kwh"])
            if s.get("dimmed_kwh"):
                dimmed[int(row)] = s
        ev_deferred = deferred if any_deferred else None
        if dimmed:
            plan = as_dimmed(plan, filled, ev_deferred, dimmed)
        flows = self.community.outcome(plan, filled, ev_deferred)
        self.community.commit(flows)
        if self.storage is not None:
            self.storage.observe(t % self.ipd, price)
        self._last_settled = t
        self.stats.intervals += 1
        self._settled = {}

    def _plan(self, t: int) -> None:
        slot = t % self.ipd
        if self.storage is not None and slot == 0:
            self.storage.new_day()
        plan, order_rows, messages = self.messages(t)
        self._planned = (t, plan, order_rows, messages)
        self._settled = {}
        self._send(messages, resend=False)

    def messages(
        self, t: int
    ) -> tuple[Plan, dict[int, list[int]], list[tuple[str, dict[str, Any]]]]:
        """Plan interval ``t`` from the fleet's current state (nothing is sent or applied):
        the plan, each household's order indices, and every (topic, payload) to publish."""
        plan = self.community.plan(*self.inputs.at(t).observed(t, self.ipd))
        order_rows: dict[int, list[int]] = {}
        for j, row in enumerate(plan.household.tolist()):
            order_rows.setdefault(row, []).append(j)
        kinds = plan.kind.tolist()
        buy, energy, price = (
            plan.is_buy.tolist(),
            plan.energy_kwh.tolist(),
            plan.price_per_kwh.tolist(),
        )
        gen, demand = plan.generation_kwh.tolist(), plan.demand_kwh.tolist()
        devices = self.community.devices
        soc, deferrable = (devices["battery"].soc_kwh.tolist(), plan.ev_deferrable_kwh.tolist())
        battery, ev = plan.battery_self_kwh.tolist(), plan.ev_self_kwh.tolist()
        ev_soc = devices["ev"].soc_kwh.tolist()
        heat_pump = plan.self_kwh["heat_pump"].tolist()
        messages: list[tuple[str, Any]] = []
        signers = self.signers
        run = {} if self._run is None else {"run": self._run}  # binds a signature to it
        for row in self.rows.tolist():
            agent = self.ids[row]
            # its devices on their own; the market adds the flexible fills
            reading = Reading(
                gen[row],
                demand[row],
                soc[row],
                deferrable[row],
                battery[row],
                ev[row],
                ev_soc[row],
                heat_pump[row],
            )
            orders = [Order(buy[j], energy[j], price[j], kinds[j]) for j in order_rows.get(row, [])]
            pair = signers.get(agent)
            for topic, payload in (
                (self.topics.reading(agent), reading_payload(t, reading) | run),
                (self.topics.orders(agent), orders_payload(t, orders) | run),
            ):
                messages.append((topic, payload if pair is None else pair.sign(payload)))
        return plan, order_rows, messages

    def _send(self, messages: list[tuple[str, Any]], resend: bool) -> None:
        for topic, payload in messages:
            self.bus.publish(topic, payload, qos=1)
            if resend:
                continue
            if topic.endswith("/reading"):
                self.stats.readings_sent += 1
            else:
                self.stats.order_messages_sent += 1
                self.stats.orders_sent += len(payload["orders"])
        if resend:
            self.stats.resent += 1


def as_dimmed(
    plan: Plan, filled: np.ndarray, deferred: np.ndarray | None, settled: dict[int, dict]
) -> Plan:
    """The plan with the own energy of each dimmed household's devices cut (§14a: the
    grid operator dimmed them) so that they draw what its settlement says
    (``<device>_kwh``: ``battery_kwh``, ``ev_kwh``, ``heat_pump_kwh``); ``filled`` holds
    the fills of its dimmed orders already. ``settled``: settlement by household row."""
    planned = device_flows(plan, filled, deferred).device_kwh
    rows = np.fromiter(settled, np.int64, len(settled))
    cuts = {}
    for name, energy in planned.items():
        got = [settled[r].get(f"{name}_kwh", energy[r]) for r in rows.tolist()]
        cut = np.zeros(len(energy))
        cut[rows] = energy[rows] - np.asarray(got, dtype=float)
        cuts[name] = cut
    return plan.dim(cuts)
