"""One household's side of the bilateral negotiation of one interval (no MQTT here: the
runtime, :mod:`live.p2p_peers`, carries the messages).

The mechanism is :mod:`market.p2p`'s consensus ADMM, cut along its households: every
order pair of two partners is held by both, each with the same consensus ``z`` and
price ``λ`` (both update them from the same two proposals, so they never differ), and
each household proposes its own side only, through :func:`market.p2p.local_update` over
its own orders (its energies never leave it). Iteration ``k``:

1. propose ``v_k = local_update(z, coef, …)`` and send each partner its pairs' entries;
2. with every partner's proposal of ``k`` in (or its deadline passed: the late partner
   is dropped, its pairs leave the problem), update each pair's ``z`` and ``λ`` as the
   batch does, and this household's residuals ``r = max |x − y|``, ``s = ρ max |Δz|``
   over its pairs: ``L(k)`` is "both at most the tolerances".

**Termination without a coordinator.** The batch stops at the first ``k`` whose residuals
over *all* pairs are within the tolerances, i.e. where every household's ``L(k)`` holds.
Each proposal also carries ``ok``, the iterations the sender vouches for: ``A(j)`` is
"``L(j)`` holds for everybody within ``k − j`` hops" and is and-ed with every partner's
at each exchange; after iteration ``k`` a household knows ``G(j)`` for ``j = k − D``,
``D`` the partner graph's diameter (public: the scenario's partner relation). The first
such ``j`` with ``A(j)`` is the final iterate, the same one at every household (and the
batch's, for a connected partner graph: the batch's residuals are the community's; a
graph of several components stops each at its own). Without convergence the iterate of
``max_iterations`` is final. So a household runs ``D`` iterations past the final one,
and keeps the last ``D + 1`` iterates.

**Finals.** At the final iterate each pair's trade is ``min(x, y)`` (kept above
:data:`market.p2p.MIN_TRADE_KWH`) at ``λ`` clipped into ``[π_s, π_b]``, as in the batch;
each side signs the trades it holds with a partner (:func:`live.p2p_codec.final_body`)
and sends them; a partner whose final names another iterate is answered at the earlier
of the two when it is still held (the gate cut a negotiation short). The trade is agreed
when both sides' objects are equal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from market.p2p import MIN_TRADE_KWH, local_update
from market.p2p_pairs import P2PRule, order_pairs
from market.p2p_steps import pair_update, pairs_settled


@dataclass
class Offer:
    """A household's orders of the interval: side, limit price, kind; energy (own only)."""

    is_buy: np.ndarray
    price: np.ndarray
    kind: np.ndarray
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An iterate: each pair's trade and price."""

    partner: np.ndarray
    trade: np.ndarray
    price: np.ndarray


class Negotiation:
    """Household ``me`` (a row) with its partners' rows, in interval ``t``."""

    def __init__(self, me: int, partners: list[int], offer: Offer, rule: P2PRule, diameter: int):
        self.me = me
        self.offer = offer
        self.rule = rule
        self.diameter = max(int(diameter), 1)
        self.active = set(partners)
        self.offers: dict[int, Offer] = {}
        self.k = 0
        """The last iteration proposed."""
        self.inbox: dict[int, dict[int, dict[str, Any]]] = {}
        self.known: dict[int, bool] = {}
        self.history: deque[tuple[int, Snapshot]] = deque(maxlen=self.diameter + 2)
        self.final_k: int | None = None
        self.converged = False
        self.dropped: list[int] = []
        self._slices: dict[int, np.ndarray] | None = None
        self.committed = np.zeros(len(offer.energy))
        """Energy of each own order agreed with partners that ended before us [kWh]."""

    # --- pairs ---------------------------------------------------------------------
    def build(self) -> None:
        """The order pairs with the partners whose offers are in (the others dropped),
        in canonical order (buyer row, buy order, sell order) per partner."""
        self.dropped += sorted(self.active - set(self.offers))
        self.active &= set(self.offers)
        rows = [self.me, *sorted(self.active)]
        offers = [self.offer, *(self.offers[p] for p in rows[1:])]
        owner = np.concatenate(
            [np.full(len(o.is_buy), r) for r, o in zip(rows, offers, strict=True)]
        )
        local = np.concatenate([np.arange(len(o.is_buy)) for o in offers])
        is_buy = np.concatenate([o.is_buy for o in offers]).astype(bool)
        price = np.concatenate([o.price for o in offers])
        kind = np.concatenate([o.kind for o in offers])
        buy, sell = np.flatnonzero(is_buy), np.flatnonzero(~is_buy)
        pairs = order_pairs(len(buy), len(sell), owner[buy], owner[sell], self.rule)
        bi, si = buy[pairs.buy], sell[pairs.sell]
        bp, sp, cost = price[bi], price[si], pairs.cost_per_kwh
        mine = ((owner[bi] == self.me) | (owner[si] == self.me)) & (bp - sp - cost >= 0)
        bi, si, cost = bi[mine], si[mine], cost[mine]
        other = np.where(owner[bi] == self.me, owner[si], owner[bi])
        order = np.lexsort((local[si], local[bi], owner[bi], other))
        bi, si, cost = bi[order], si[order], cost[order]
        self.buyer = owner[bi] == self.me
        self.partner = np.where(self.buyer, owner[si], owner[bi])
        self.bp, self.sp = price[bi], price[si]
        self.value = self.bp - cost
        self.ask = self.sp
        self.buy_order, self.sell_order = local[bi], local[si]
        self.buy_kind, self.sell_kind = kind[bi], kind[si]
        self.buyer_row = owner[bi]
        self.seg = np.where(self.buyer, self.buy_order, self.sell_order)
        n = len(bi)
        self.z = np.zeros(n)
        self.lam = 0.5 * (self.value + self.ask)
        self.mine = np.zeros(n)
        self.mu: np.ndarray | None = None
        self._slices = None

    def slices(self) -> dict[int, np.ndarray]:
        """Each active partner's entries (possibly none: it still exchanges messages)."""
        if self._slices is None:
            self._slices = {p: np.flatnonzero(self.partner == p) for p in sorted(self.active)}
        return self._slices

    # --- iterations ----------------------------------------------------------------
    def propose(self) -> dict[int, tuple[list[float], list[float], list[int]]]:
        """Iteration ``k + 1``'s proposals: per partner ``(kwh, price, ok)``."""
        self.k += 1
        coef = np.where(self.buyer, self.lam - self.value, self.ask - self.lam)
        cap = np.maximum(self.offer.energy - self.committed, 0.0)
        if len(self.z):
            self.mine, self.mu = local_update(self.z, coef, self.seg, cap, self.rule.rho, self.mu)
        lo = self.k - 1 - self.diameter
        ok = [j for j in range(max(lo, 1), self.k) if self.known.get(j)]
        return {
            p: (self.mine[i].tolist(), self.lam[i].tolist(), ok) for p, i in self.slices().items()
        }

    def take(self, sender: int, k: int, message: dict[str, Any]) -> None:
        """A partner's proposal of iteration ``k`` (or, ``k = 0``, its offer)."""
        if k == 0:
            if sender in self.active and not hasattr(self, "buyer"):
                o = message["orders"]
                self.offers[sender] = Offer(
                    np.array([b for b, _, _ in o], bool),
                    np.array([p for _, p, _ in o], float),
                    np.array([c for _, _, c in o], np.int64),
                )
            return
        if sender in self.active and k >= self.k:
            self.inbox.setdefault(k, {})[sender] = message

    def waiting(self) -> set[int]:
        """The active partners whose message of the current iteration is not in."""
        if self.k == 0:
            return self.active - set(self.offers)
        return self.active - set(self.inbox.get(self.k, {}))

    def drop(self, partners: set[int]) -> None:
        """Go on without ``partners`` (they missed a deadline): their pairs leave."""
        self.active -= partners
        self.dropped += sorted(partners)
        if hasattr(self, "buyer"):
            keep = ~np.isin(self.partner, list(partners))
            for name in ("buyer", "partner", "bp", "sp", "value", "ask", "buy_order",
                         "sell_order", "buy_kind", "sell_kind", "buyer_row", "seg", "z",
                         "lam", "mine"):  # fmt: skip
                setattr(self, name, getattr(self, name)[keep])
            self.mu = None
        self._slices = None

    def advance(self) -> bool:
        """Iteration ``k``'s exchange (every active partner's proposal in): update the
        pairs, the termination flood; True once the final iterate is known."""
        got = self.inbox.pop(self.k, {})
        theirs = np.zeros(len(self.z))
        for p, i in self.slices().items():
            kwh = got[p]["kwh"]
            if len(kwh) != len(i):  # the partner holds other pairs: it dropped some
                self.drop({p})
                return self.advance_after_drop(got)
            theirs[i] = kwh
        return self._update(theirs, got)

    def advance_after_drop(self, got: dict[int, dict[str, Any]]) -> bool:
        theirs = np.zeros(len(self.z))
        for p, i in self.slices().items():
            theirs[i] = got[p]["kwh"]
        return self._update(theirs, got)

    def _update(self, theirs: np.ndarray, got: dict[int, dict[str, Any]]) -> bool:
        rule = self.rule
        x = np.where(self.buyer, self.mine, theirs)
        y = np.where(self.buyer, theirs, self.mine)
        z_new, self.lam = pair_update(x, y, self.z, self.lam, rule.rho, rule.relaxation)
        settled = bool(pairs_settled(x - y, z_new - self.z, x, y, self.lam, rule).all())
        self.z = z_new
        k, d = self.k, self.diameter
        for j in range(max(k - 1 - d, 1), k):
            for p in self.active:
                if j not in got[p]["ok"]:
                    self.known[j] = False
        self.known[k] = settled
        trade = np.minimum(x, y)
        price = np.clip(self.lam, self.sp, self.bp)
        self.history.append((k, Snapshot(self.partner.copy(), trade, price)))
        j = k - d
        if j >= 1 and self.known.get(j):
            self.final_k, self.converged = j, True
        elif j >= self.rule.max_iterations:
            self.final_k = self.rule.max_iterations
        return self.final_k is not None

    # --- finals --------------------------------------------------------------------
    def settle(self, partner: int, trades: list[list[Any]], ids: list[str]) -> None:
        """``partner`` has ended: its agreed ``trades`` (none: no agreement) are taken
        off this household's orders and its pairs leave the problem (not a drop)."""
        me = ids[self.me]
        for buyer, b, _, s, _, kwh, _ in trades:
            self.committed[b if buyer == me else s] += kwh
        self.drop({partner})
        self.dropped.remove(partner)

    def snapshot(self, k: int) -> Snapshot | None:
        for j, snap in self.history:
            if j == k:
                return snap
        return None

    def last_k(self) -> int:
        """The last completed iterate (0: none)."""
        return self.history[-1][0] if self.history else 0

    def trades_with(self, partner: int, k: int, ids: list[str]) -> list[list[Any]] | None:
        """The trades with ``partner`` at iterate ``k`` (None: not held)."""
        snap = self.snapshot(k)
        if snap is None:
            return None
        rows = np.flatnonzero(self.partner == partner)
        if len(rows) != int((snap.partner == partner).sum()):
            return None  # a drop since: the iterate's pairs are no longer ours
        i = np.flatnonzero(snap.partner == partner)
        return [
            [ids[int(self.buyer_row[r])], int(self.buy_order[r]), int(self.buy_kind[r]),
             int(self.sell_order[r]), int(self.sell_kind[r]), float(snap.trade[j]),
             float(snap.price[j])]
            for r, j in zip(rows.tolist(), i.tolist(), strict=True)
            if snap.trade[j] > MIN_TRADE_KWH
        ]  # fmt: skip


def filled_kwh(me: str, n_orders: int, agreed: list[list[list[Any]]]) -> np.ndarray:
    """Each of household ``me``'s orders' energy in the agreed trades [kWh]."""
    out = np.zeros(n_orders)
    for trades in agreed:
        for buyer, b, _, s, _, kwh, _ in trades:
            out[b if buyer == me else s] += kwh
    return out


@dataclass
class PeerStats:
    intervals: int = 0
    sent: int = 0
    received: int = 0
    rejected: int = 0
    iterations: list[int] = field(default_factory=list)
    """Each interval's final iterate (the largest over the households)."""
    not_converged: list[int] = field(default_factory=list)
    dropped: int = 0
    agreed: int = 0


@dataclass(frozen=True, slots=True)
class Settled:
    """One interval's orders (household row, side, energy) and their agreed fills [kWh];
    ``dead``: the households silenced by then (their orders unfilled: the utility's)."""

    t: int
    household: np.ndarray
    is_buy: np.ndarray
    energy_kwh: np.ndarray
    filled_kwh: np.ndarray
    dead: list[int]
