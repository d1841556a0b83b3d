"""The households of a decentralised p2p market (``p2pgrid live --decentralised``): every
household negotiates its own bilateral trades with its partners over the peer topics
(:mod:`live.p2p_peer` the protocol, :mod:`live.p2p_codec` the payloads); no process
holds the book.

One process runs a community's peers (as :class:`live.fleet.AgentFleet` runs its
simulated households): one MQTT connection shared by all of them (the ``fleet``
account, which the ACL lets publish and read every household's peer topics; a real
household's device would connect as itself and could publish only
``peers/<itself>/+``). Each peer is a :class:`~live.p2p_peer.Negotiation` of its own:
it reads only the messages addressed to it and sends only its own, so killing some
(:meth:`PeerFleet.kill`: they fall silent) leaves the others trading: they drop the
silent ones at the first missed deadline.

Per interval ``t`` (the ``clock``, :mod:`live.p2p_run`): each household plans its orders
(the fleet's planning, :class:`agents.households.community.Community`), sends its offer
to each partner, negotiates until the final iterate or until ``stop_fraction`` (90 %) of
the gate time has passed (then its last completed iterate is final, at most the
cap's), exchanges signed finals and, at the next clock, applies the fills of its
agreed trades (what is unmatched goes to the utility at retail / feed-in, as in every
mechanism) and publishes its agreed, doubly signed trades on ``peers/<itself>/trades``
for the recorder.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from agents.households.community import Community
from agents.strategies.bidding import PriceAwareStorage
from live.bus import BrokerConfig
from live.clock import read_clock
from live.fleet_base import FleetBase
from live.p2p_codec import final_body, offer_payload, proposal_payload, read_peer
from live.p2p_partners import partner_rows, scenario_rule
from live.p2p_peer import Negotiation, Offer, PeerStats, Settled, filled_kwh
from live.p2p_topics import peers_topic
from live.protocol import VERSION, Rejected, topics_for
from live.signatures import signers_for
from scenarios.audit.canonical import unsigned
from scenarios.config.schema import Scenario
from scenarios.engine.inputs import CommunityInputs

TRADES = "trades"
"""``peers/<id>/trades``: a household's agreed trades of an interval, for the recorder."""


class PeerFleet(FleetBase):
    """Every household of the scenario as a peer (module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        broker: BrokerConfig,
        run: str | None = None,
        keys: Path | None = None,
        deadline_s: float = 1.0,
        stop_fraction: float = 0.9,
    ) -> None:
        if scenario.market.mechanism != "p2p":
            raise ValueError(
                f"--decentralised needs market.mechanism = 'p2p', not {scenario.market.mechanism!r}"
            )
        sim = scenario.simulation
        self.scenario = scenario
        self.topics = topics_for(scenario)
        self.inputs = CommunityInputs(scenario)
        hh = self.inputs.hh
        self.ids = [str(a) for a in hh.agent_id]
        self.rule = scenario_rule(scenario, self.ids, hh.pv_kwp)
        self.partners, self.diameter = partner_rows(self.rule.partners, len(self.ids))
        self.row = {a: i for i, a in enumerate(self.ids)}
        self.signers = signers_for(scenario.live, self.ids, keys)
        self.ipd = sim.intervals_per_day
        self.storage = None
        if scenario.community.storage_strategy == "price_aware":
            self.storage = PriceAwareStorage(self.inputs.band, self.ipd)
        self.community = Community(hh, sim.interval_hours, self.storage)
        self.deadline_s = deadline_s
        self.stop_fraction = stop_fraction
        self.stats = PeerStats()
        self.dead: set[int] = set()
        self._run = ""
        self._t = -1
        self._plan: Any = None
        self._order_rows: dict[int, np.ndarray] = {}
        self._neg: dict[int, Negotiation] = {}
        self._sent_at: dict[int, float] = {}
        self._finals: dict[int, dict[int, dict[str, Any]]] = {}
        """Per household: the partners' finals received before its own was made."""
        self._sent: dict[int, dict[int, dict[str, Any]]] = {}
        """Per household: the final it sent each partner."""
        self._checked = 0.0
        self._last_rx = 0.0
        """When the last peer message came in: while messages flow, none is late."""
        self._kill_at: tuple[tuple[int, int], list[str]] | None = None
        self.settled: deque[Settled] = deque(maxlen=8)
        """The last intervals' orders and fills (what each household applied)."""
        self._agreed: dict[int, dict[int, dict[str, Any]]] = {}
        self._stop_at = 0.0
        super().__init__(broker, self.topics.root, self.topics.clock, "peers", run)
        self.bus.subscribe(peers_topic(self.topics, "+", "+"), self._on_peer, qos=0)

    # --- lifecycle (start, stop: live.fleet_base) --------------------------------------
    def kill(self, agents: list[str], at: tuple[int, int] | None = None) -> None:
        """Silence these households from now on (as if their processes were killed), or
        from when a household of this process first proposes iteration ``k`` of
        interval ``t`` (``at = (t, k)``: mid-negotiation)."""
        if at is None:
            self._events.put(("kill", ",".join(agents), b""))
        else:
            self._kill_at = (at, list(agents))

    def _on_peer(self, topic: str, payload: bytes) -> None:
        self._last_rx = time.monotonic()
        self._events.put(("peer", topic, payload))

    # --- the worker ------------------------------------------------------------------
    def _work(self) -> None:
        while not self.done.is_set():
            kind, topic, payload = self._next(0.05)
            if kind == "stop":
                return
            if kind == "kill":
                self._silence(topic.split(","))
            elif kind == "clock":
                clock = read_clock(payload)
                t = clock.get("t") if clock is not None else None
                if clock is None or not isinstance(t, int):
                    continue
                if t <= self._t and not clock.get("done"):
                    continue  # a clock again (a reconnect): the interval is under way or done
                self._close()
                if clock.get("done"):
                    self.done.set()
                    return
                self._open(clock)
            elif kind == "peer":
                self._on_message(topic, payload)
            if self._events.empty():  # a backlog is not a late partner
                self._deadlines()

    def _silence(self, agents: list[str]) -> None:
        self.dead |= {self.row[a] for a in agents if a in self.row}
        for r in self.dead:
            self._neg.pop(r, None)

    def _send(
        self, sender: int, receiver: int | str, payload: dict[str, Any], qos: int = 0
    ) -> None:
        to = self.ids[receiver] if isinstance(receiver, int) else receiver
        self.bus.publish(peers_topic(self.topics, self.ids[sender], to), payload, qos=qos)
        self.stats.sent += 1

    def _open(self, clock: dict[str, Any]) -> None:
        self._run, self._t = str(clock.get("run")), int(clock["t"])
        t = self._t
        slot = t % self.ipd
        if self.storage is not None and slot == 0:
            self.storage.new_day()
        plan = self.community.plan(*self.inputs.at(t).observed(t, self.ipd))
        self._plan = plan
        hh = plan.household
        self._order_rows = {r: np.flatnonzero(hh == r) for r in range(len(self.ids))}
        gate = clock.get("gate_closes_at")
        now = time.time()
        end = datetime.fromisoformat(gate).timestamp() if gate else now + 10.0
        self._stop_at = time.monotonic() + self.stop_fraction * max(end - now, 0.0)
        self._neg, self._finals, self._sent, self._agreed = {}, {}, {}, {}
        for r in range(len(self.ids)):
            if r in self.dead:
                continue
            rows = self._order_rows[r]
            offer = Offer(plan.is_buy[rows], plan.price_per_kwh[rows],
                          plan.kind[rows].astype(np.int64), plan.energy_kwh[rows])  # fmt: skip
            neg = Negotiation(r, self.partners[r], offer, self.rule, self.diameter)
            self._neg[r] = neg
            orders = list(zip(offer.is_buy.tolist(), offer.price.tolist(), offer.kind.tolist(),
                              strict=True))  # fmt: skip
            payload = offer_payload(self._run, t, orders)
            for p in neg.active:
                self._send(r, p, payload)
            self._sent_at[r] = time.monotonic()
            self._finals[r], self._sent[r], self._agreed[r] = {}, {}, {}

    def _on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.rsplit("/", 2)
        sender, receiver = self.row.get(parts[-2]), self.row.get(parts[-1])
        if sender is None or receiver is None or receiver in self.dead:
            return  # a trades record (the recorder's), or not a household of ours
        self.stats.received += 1
        try:
            data = read_peer(payload, self._run)
        except Rejected:
            self.stats.rejected += 1
            return
        if data["t"] != self._t:
            return
        neg = self._neg.get(receiver)
        if neg is None:
            return
        if data.get("final"):
            self._on_final(neg, sender, data)
            return
        neg.take(sender, data["k"], data)
        self._try_step(neg)

    def _try_step(self, neg: Negotiation) -> None:
        while neg.final_k is None and not neg.waiting() and neg.me in self._neg:
            if neg.k == 0:
                neg.build()
            elif neg.advance():
                self._finalise(neg, neg.final_k)
                return
            self._propose(neg)

    def _propose(self, neg: Negotiation) -> None:
        for p, (kwh, price, ok) in neg.propose().items():
            self._send(neg.me, p, proposal_payload(self._run, self._t, neg.k, kwh, price, ok))
        self._sent_at[neg.me] = time.monotonic()
        if self._kill_at is not None and self._kill_at[0] <= (self._t, neg.k):
            self._silence(self._kill_at[1])
            self._kill_at = None

    def _deadlines(self) -> None:
        now = time.monotonic()
        if now - self._checked < 0.02:
            return
        self._checked = now
        # a backlog in the transport is not a late partner: only once no message has come
        # for a quarter of the deadline is a partner that has not answered late
        idle = now - self._last_rx >= self.deadline_s / 4
        expired = []
        for neg in list(self._neg.values()):
            if neg.final_k is not None or neg.me not in self._neg:
                continue
            if now >= self._stop_at:
                # the gate's cut: the last iterate done, at most the cap's
                self._finalise(neg, min(neg.last_k(), self.rule.max_iterations))
                continue
            sent = self._sent_at.get(neg.me, now)
            if idle and neg.waiting() and now - sent > self.deadline_s:
                expired.append((sent, neg))
        if not expired:
            return
        # a silent household stalls its partners, and theirs behind them one iteration
        # later: only those stalled at the earliest iteration (its own partners) drop
        # now; the others' late partners are blocked behind them
        first = min(neg.k for _, neg in expired)
        for _, neg in expired:
            if neg.k == first and neg.me in self._neg:
                late = neg.waiting()
                self.stats.dropped += len(late)
                neg.drop(late)
                self._try_step(neg)
        self._last_rx = now  # a quiet spell again before the next drops

    # --- finals ----------------------------------------------------------------------
    def _body(self, neg: Negotiation, p: int, k: int) -> dict[str, Any] | None:
        trades = neg.trades_with(p, k, self.ids)
        if trades is None:
            return None
        a, b = sorted((self.ids[neg.me], self.ids[p]))
        return final_body(self._run, self._t, k, a, b, trades)

    def _finalise(self, neg: Negotiation, k: int | None) -> None:
        neg.final_k = k or 0
        for p in sorted(neg.active):
            self._send_final(neg, p, neg.final_k)
            got = self._finals[neg.me].pop(p, None)
            if got is not None:
                self._on_final(neg, p, got)

    def _send_final(self, neg: Negotiation, p: int, k: int) -> None:
        body = self._body(neg, p, k)
        if body is None:
            return
        pair = self.signers.get(self.ids[neg.me])
        signed = body if pair is None else pair.sign(body)
        self._sent[neg.me][p] = signed
        self._send(neg.me, p, signed, qos=1)

    def _on_final(self, neg: Negotiation, p: int, data: dict[str, Any]) -> None:
        if neg.final_k is None:
            if p in neg.active and neg.snapshot(data["k"]) is not None:
                # the partner has ended (its flood decided, or its gate cut it): answer at
                # its iterate now and go on without it, its trades taken off our caps
                self._send_final(neg, p, data["k"])
                self._agree(neg, p, data)
                neg.settle(p, (self._agreed[neg.me].get(p) or {}).get("trades", []), self.ids)
                self._try_step(neg)
            else:
                self._finals[neg.me][p] = data  # kept until this household ends
            return
        self._agree(neg, p, data)

    def _agree(self, neg: Negotiation, p: int, data: dict[str, Any]) -> None:
        mine = self._sent[neg.me].get(p)
        if mine is None:
            return
        k_p, k_me = data["k"], mine["k"]
        if k_p < k_me:  # the partner was cut short earlier: answer at its iterate
            self._send_final(neg, p, k_p)
            mine = self._sent[neg.me][p]
            if mine["k"] != k_p:
                return
        elif k_p > k_me:
            return  # it answers at ours
        if unsigned(dict(mine)) != unsigned(dict(data)):
            return  # no agreement: nothing trades between the two
        sigs = {self.ids[neg.me]: mine.get("sig"), self.ids[p]: data.get("sig")}
        self._agreed[neg.me][p] = {**unsigned(dict(data)), "sigs": sigs}

    def _close(self) -> None:
        """The gate of the open interval: apply every live household's agreed trades and
        publish them for the recorder."""
        if self._t < 0 or self._plan is None:
            return
        plan = self._plan
        filled = np.zeros(len(plan.energy_kwh))
        volume = paid = 0.0
        final = [n.final_k or 0 for n in self._neg.values()]
        for r in self._neg:
            agreed = self._agreed.get(r, {})
            trades = [rec["trades"] for rec in agreed.values()]
            rows = self._order_rows[r]
            filled[rows] = filled_kwh(self.ids[r], len(rows), trades)
            for recs in trades:
                for buyer, *_, kwh, price in recs:
                    if buyer == self.ids[r]:
                        volume, paid = volume + kwh, paid + kwh * price
            self.stats.agreed += len(agreed)
            records = sorted(agreed.values(), key=lambda rec: (rec["a"], rec["b"]))
            self._send(r, TRADES, {"v": VERSION, "run": self._run, "t": self._t,
                                   "records": records}, qos=1)  # fmt: skip
        self.settled.append(Settled(self._t, plan.household, plan.is_buy, plan.energy_kwh,
                                    filled, sorted(self.dead)))  # fmt: skip
        flows = self.community.outcome(plan, filled, None)
        self.community.commit(flows)
        if self.storage is not None:
            self.storage.observe(self._t % self.ipd, paid / volume if volume else float("nan"))
        self.stats.intervals += 1
        self.stats.iterations.append(max(final, default=0))
        if any(not n.converged for n in self._neg.values()):
            self.stats.not_converged.append(self._t)
        self._plan = None
