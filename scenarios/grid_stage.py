"""The feeder in the interval loop: check the flows the trades imply, re-clear if needed.

Per interval, with ``grid.check`` on:

1. the households' physical net injections (after the unconstrained clearing) are summed
   per bus, the feeder's background load added; households' reactive power follows
   their demand at the power factor ``grid.household_power_factor`` (PV and storage at
   unity);
2. the persistent feeder model checks them (screen, or Pyomo near a limit);
3. if a limit is broken, the interval is re-cleared by :meth:`grid.FeederModel.clear_constrained`:
   welfare over the same orders with the feeder's limits, PV curtailment and the utility
   at the slack; flexible storage orders flow only as far as they are filled. The result
   replaces the unconstrained trades. Curtailment and deferred EV charging are shared
   over the buses pro rata to what each can give wherever that keeps every limit
   (:meth:`GridStage.spread`; where only some buses relieve the limit they carry it),
   and at a bus among its households: curtailment first from the surplus they could not
   sell peer to peer, then from the PV they used themselves, each pro rata. The
   re-cleared fills become trades only where both orders' limits allow them
   (:func:`pair_fills`), priced at the dual of the P2P balance kept inside every pair's
   bid and ask; fills that no bid accepts are settled with the utility. Without P2P
   (``p2p=False``, the no-P2P baseline, :mod:`scenarios.baseline`) the re-clearing
   fills no order and only curtails and defers.
4. Nodal prices (the duals of the bus balances) exist where the re-clearing ran and
   restored every limit; elsewhere they are null (where a limit cannot be restored the
   duals price the violation penalty, not energy).
5. Re-clearing is skipped where the market holds nothing that could relieve the broken
   limit (:meth:`GridStage.can_relieve`), and replaced by its known optimum where only an
   under-voltage is broken that stays broken without any flexible charging
   (:meth:`GridStage.saturated_relief`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from agents.community import KIND_NET, TINY_KWH, Plan
from grid import AcPowerFlow, FeederModel, GridCheck, assign_households
from grid.clearing import reserve_order_slots
from market.settlement import Tariffs
from scenarios.background import background_factor
from scenarios.preflight import scenario_feeder
from scenarios.results import BUSES_FILE, LINES_FILE, TableStream
from scenarios.schema import Scenario

VIOLATION_TOL_PU = 1e-6


@dataclass(frozen=True, slots=True)
class Pairing:
    """Trades as household rows, energies and the prices each side faces; ``buy_kind``
    and ``sell_kind`` say which of the household's orders (``agents.community.KIND_*``)
    each trade fills, so that a trade can be checked against its own order's limit."""

    buyer: np.ndarray
    seller: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    seller_price_per_kwh: np.ndarray
    buy_kind: np.ndarray
    sell_kind: np.ndarray

    def traded_kwh(self, n_households: int) -> tuple[np.ndarray, np.ndarray]:
        """Energy each household bought and sold in these trades [kWh]."""
        return (np.bincount(self.buyer, self.energy_kwh, n_households),
                np.bincount(self.seller, self.energy_kwh, n_households))


@dataclass(frozen=True, slots=True)
class GridOutcome:
    """The feeder's verdict on one interval."""

    check: GridCheck | None
    p_kw: np.ndarray
    q_kvar: np.ndarray
    recleared: bool
    filled_kwh: np.ndarray | None = None
    curtailed_kwh: np.ndarray | None = None
    pairing: Pairing | None = None
    nodal_price_per_kwh: np.ndarray | None = None
    p2p_price_per_kwh: float = float("nan")
    dropped_orders: np.ndarray | None = None
    ev_deferred_kwh: np.ndarray | None = None
    violations_before: int | None = None

    @property
    def violations_before_reclear(self) -> int:
        """Limits broken before any re-clearing."""
        if self.violations_before is not None:
            return self.violations_before
        assert self.check is not None
        return self.check.violations


def _take_first(owner: np.ndarray, key: np.ndarray, fill_kwh: np.ndarray,
                amount_kwh: np.ndarray) -> np.ndarray:
    """Take ``amount_kwh[h]`` from the fills of owner ``h``'s orders, smallest ``key``
    first [kWh per order]."""
    order = np.lexsort((key, owner))
    f = fill_kwh[order]
    h = owner[order]
    before = np.cumsum(f) - f
    first = np.bincount(h, f, len(amount_kwh)).cumsum() - np.bincount(h, f, len(amount_kwh))
    take = np.clip(amount_kwh[h] - (before - first[h]), 0.0, f)
    out = np.empty_like(fill_kwh)
    out[order] = take
    return out


def _segments(first_kwh: np.ndarray, second_kwh: np.ndarray,
              volume_kwh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay two ranked runs of energies end to end over [0, volume] and cut where either
    changes: (position in the first, position in the second, length) of every piece."""
    d, s = np.cumsum(first_kwh), np.cumsum(second_kwh)
    tol = max(TINY_KWH, 64 * np.finfo(float).eps * volume_kwh)
    ends = np.unique(np.concatenate([d, s]))
    ends = np.append(ends[ends < volume_kwh - tol], volume_kwh)
    starts = np.concatenate([[0.0], ends[:-1]])
    mid = 0.5 * (starts + ends)
    length = ends - starts
    keep = length > tol
    return (np.searchsorted(d, mid[keep]), np.searchsorted(s, mid[keep]), length[keep])


def pair_fills(plan: Plan, filled_kwh: np.ndarray, price_per_kwh: float) -> Pairing:
    """Turn the fills of the network-constrained clearing into trades, order by order.

    The constrained clearing fills orders so that the P2P volume balances, but it may
    fill orders that no counterparty's limit accepts: storage forced to discharge (or to
    charge) to relieve a limit, say, at an ask above every filled bid. Trades are made
    only where both limits allow them; the rest is settled with the utility like any
    unmatched position (the physical fills stand, only their money goes to the utility):

    1. **Own orders first.** A household with fills on both sides (net buy and battery
       sell, say) serves itself: ``min(bought, sold)`` of its own fills is not a trade
       (its lowest bids and highest asks first). No household trades with itself.
    2. **Individually rational pairs, as many as possible.** Of the remaining fills, the
       largest volume ``q`` that can be paired with every pair's bid >= its ask is the
       highest-bid ``q`` kWh against the lowest-ask ``q`` kWh, paired in opposite order
       (highest bid with the highest of those asks); ``q`` is the smallest
       ``D_{i-1} + S_{j-1}`` over the ranked bid steps ``i`` and ask steps ``j`` with
       ``b_i < a_j`` (``D``, ``S`` the cumulative ranked fills), capped at the volume.
    3. **Prices.** ``price_per_kwh`` (the dual of the P2P balance) where it lies in
       every pair's [ask, bid]: clipped into [highest paired ask, lowest paired bid]
       when that interval exists, else into each pair's own [ask, bid]; the midpoint of
       the pair when the dual is not finite. So no buyer pays above the bid of its
       order and no seller receives below the ask of its order.

    What is left over (the lowest bids and highest asks beyond ``q``: the forced
    dispatch) is no trade: the buyer imports it at retail, the seller's energy is
    exported at feed-in.
    """
    fill = np.where(filled_kwh > 0, filled_kwh, 0.0)
    n = len(plan.generation_kwh)
    hh, is_buy, limit = plan.household, plan.is_buy, plan.price_per_kwh
    own = np.minimum(np.bincount(hh, np.where(is_buy, fill, 0.0), n),
                     np.bincount(hh, np.where(is_buy, 0.0, fill), n))
    if own.any():
        buys, sells = np.flatnonzero(is_buy), np.flatnonzero(~is_buy)
        fill = fill.copy()
        fill[buys] -= _take_first(hh[buys], limit[buys], fill[buys], own)
        fill[sells] -= _take_first(hh[sells], -limit[sells], fill[sells], own)
    # ranked: bids descending, asks ascending (stable: ties in plan order)
    buy = np.flatnonzero(is_buy & (fill > TINY_KWH))
    buy = buy[np.argsort(-limit[buy], kind="stable")]
    sell = np.flatnonzero(~is_buy & (fill > TINY_KWH))
    sell = sell[np.argsort(limit[sell], kind="stable")]
    bid, ask = limit[buy], limit[sell]
    d, s = np.cumsum(fill[buy]), np.cumsum(fill[sell])
    volume = min(d[-1], s[-1]) if len(d) and len(s) else 0.0
    first_above = np.searchsorted(ask, bid, side="right")  # first ask above each bid
    conflict = first_above < len(sell)
    s_before = np.concatenate([[0.0], s])
    q = min([volume, *((d - fill[buy])[conflict] + s_before[first_above[conflict]])])
    empty = np.zeros(0)
    if q <= TINY_KWH:
        return Pairing(empty.astype(np.int64), empty.astype(np.int64), empty, empty, empty,
                       empty.astype(np.int8), empty.astype(np.int8))
    take_buy = np.clip(q - (d - fill[buy]), 0.0, fill[buy])
    take_sell = np.clip(q - (s - fill[sell]), 0.0, fill[sell])
    in_b, in_s = take_buy > 0, take_sell > 0
    buy, sell, take_buy, take_sell = buy[in_b], sell[in_s][::-1], take_buy[in_b], \
        take_sell[in_s][::-1]
    i, j, energy = _segments(take_buy, take_sell, q)
    b_order, s_order = buy[i], sell[j]
    pair_bid, pair_ask = limit[b_order], limit[s_order]
    lo, hi = pair_ask.max(), pair_bid.min()
    if not math.isfinite(price_per_kwh):
        price = 0.5 * (pair_bid + pair_ask) if lo > hi else np.full(len(i), 0.5 * (lo + hi))
    elif lo <= hi:
        price = np.full(len(i), min(max(price_per_kwh, lo), hi))
    else:
        price = np.clip(price_per_kwh, pair_ask, pair_bid)
    return Pairing(
        buyer=hh[b_order],
        seller=hh[s_order],
        energy_kwh=energy,
        price_per_kwh=price,
        seller_price_per_kwh=price.copy(),
        buy_kind=plan.kind[b_order],
        sell_kind=plan.kind[s_order],
    )


def share_at_buses(
    amount_kwh_bus: np.ndarray,
    household_bus: np.ndarray,
    first_kwh: np.ndarray,
    total_kwh: np.ndarray,
) -> np.ndarray:
    """Share an amount per bus among its households: ``first_kwh`` pools first, then the
    rest of ``total_kwh``, each pro rata [kWh per household]."""
    n_bus = len(amount_kwh_bus)
    first = np.minimum(first_kwh, total_kwh)
    pools = (first, np.maximum(total_kwh - first, 0.0))
    out = np.zeros_like(total_kwh)
    left = amount_kwh_bus.copy()
    for pool in pools:
        total = np.bincount(household_bus, pool, n_bus)
        take = np.minimum(left, total)
        frac = np.divide(take, total, out=np.zeros(n_bus), where=total > 0)
        out += pool * frac[household_bus]
        left -= take
    return np.minimum(out, total_kwh)


def share_curtailment(
    curtailed_kwh_bus: np.ndarray,
    household_bus: np.ndarray,
    generation_kwh: np.ndarray,
    unsold_kwh: np.ndarray,
) -> np.ndarray:
    """Curtailment per household [kWh]: unsold surplus first, then self-used PV, pro rata."""
    return share_at_buses(curtailed_kwh_bus, household_bus, unsold_kwh, generation_kwh)


@dataclass(frozen=True, slots=True)
class BusBook:
    """The orders as the constrained clearing sees them: flexible orders of one bus, side
    and limit price merged into one (the optimisation is indifferent between them, so
    sharing the merged fill pro rata is one of its optima). That keeps the model small:
    the price-aware storage rule gives all storage orders of a side one price."""

    bus: np.ndarray
    is_buy: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    flexible: np.ndarray
    n_fixed: int
    fixed_rows: np.ndarray
    flex_rows: np.ndarray
    flex_group: np.ndarray
    flex_energy_kwh: np.ndarray

    def split(self, filled_kwh: np.ndarray) -> np.ndarray:
        """Fills of the merged book back on the plan's orders."""
        n_orders = len(self.fixed_rows) + len(self.flex_rows)
        out = np.zeros(n_orders)
        out[self.fixed_rows] = filled_kwh[: self.n_fixed]
        group_fill = filled_kwh[self.n_fixed :]
        group_energy = self.energy_kwh[self.n_fixed :]
        share = np.divide(group_fill, group_energy, out=np.zeros(len(group_fill)),
                          where=group_energy > 0)
        out[self.flex_rows] = share[self.flex_group] * self.flex_energy_kwh
        return out


def merge_flexible(plan: Plan, household_bus: np.ndarray) -> BusBook:
    """Merge the plan's flexible orders per (bus, side, limit price)."""
    flexible = plan.kind != KIND_NET
    fixed_rows = np.flatnonzero(~flexible)
    flex_rows = np.flatnonzero(flexible)
    order_bus = household_bus[plan.household]
    keys = np.stack([order_bus[flex_rows], plan.is_buy[flex_rows],
                     plan.price_per_kwh[flex_rows]])
    uniq, group = np.unique(keys, axis=1, return_inverse=True)
    group = group.reshape(-1)
    merged_energy = np.bincount(group, plan.energy_kwh[flex_rows], uniq.shape[1])
    return BusBook(
        bus=np.concatenate([order_bus[fixed_rows], uniq[0].astype(np.int64)]),
        is_buy=np.concatenate([plan.is_buy[fixed_rows], uniq[1].astype(bool)]),
        energy_kwh=np.concatenate([plan.energy_kwh[fixed_rows], merged_energy]),
        price_per_kwh=np.concatenate([plan.price_per_kwh[fixed_rows], uniq[2]]),
        flexible=np.concatenate([np.zeros(len(fixed_rows), bool),
                                 np.ones(uniq.shape[1], bool)]),
        n_fixed=len(fixed_rows),
        fixed_rows=fixed_rows,
        flex_rows=flex_rows,
        flex_group=group,
        flex_energy_kwh=plan.energy_kwh[flex_rows],
    )


class GridStage:
    """The feeder of a run, its model, and the bus and line tables being written."""

    def __init__(self, scenario: Scenario, n_households: int, out_dir: Path) -> None:
        g, sim = scenario.grid, scenario.simulation
        self.feeder = scenario_feeder(scenario, n_households)
        self.bus = assign_households(self.feeder, n_households, sim.seed)
        self._limits = (g.v_min_pu, g.v_max_pu, g.v_margin_pu)
        self.model = FeederModel(self.feeder, *self._limits)
        self.ac = AcPowerFlow(self.feeder) if g.check == "pyomo+ac" else None
        self.tan_phi = math.tan(math.acos(g.household_power_factor))
        self.dt_h = sim.interval_hours
        self.interval_minutes = sim.interval_minutes
        self.background_kind = g.background
        self.n_bus = self.feeder.n_bus
        self._reserved = False
        self.bus_labels = self.feeder.buses["bus"].astype(str).to_numpy()
        lines = self.feeder.lines
        self.line_labels = lines["line"].astype(str).to_numpy()
        self._from = lines["from_bus"].to_numpy(np.int32)
        self._to = lines["to_bus"].to_numpy(np.int32)
        ids = pa.dictionary(pa.int32(), pa.string())
        self._buses_out = TableStream(out_dir / BUSES_FILE, pa.schema([
            ("t", pa.int32()), ("bus", ids), ("p_kw", pa.float64()), ("q_kvar", pa.float64()),
            ("v_pu", pa.float64()), ("nodal_price_per_kwh", pa.float64()),
        ]), ["bus"])
        self._lines_out = TableStream(out_dir / LINES_FILE, pa.schema([
            ("t", pa.int32()), ("line", ids), ("from_bus", ids), ("to_bus", ids),
            ("p_kw", pa.float64()), ("q_kvar", pa.float64()), ("loading_frac", pa.float64()),
        ]), ["line", "from_bus", "to_bus"])

    def twin(self) -> GridStage:
        """A stage on the same feeder, household buses and AC network with a feeder model
        of its own and no bus or line tables: the no-P2P baseline's. Its solves never
        warm-start the run's, so the run's results do not depend on the baseline's."""
        twin = copy.copy(self)
        twin.model = FeederModel(self.feeder, *self._limits)
        twin._reserved = False
        twin._buses_out = twin._lines_out = None
        return twin

    def background(self, local: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """Background injections for the intervals starting at ``local`` [kW, kvar],
        shape (T, n_bus), on the scenario's calendar (:mod:`scenarios.background`)."""
        factor = background_factor(self.background_kind, local, self.interval_minutes)
        return (self.feeder.background_injection_kw(factor),
                self.feeder.background_injection_kvar(factor))

    def background_violations(self, bg_p: np.ndarray, bg_q: np.ndarray) -> np.ndarray:
        """Limits the background load alone breaks, per interval of a window (T,).

        From the vectorised screen of the same linear model (exact for it), so a planner
        can tell the feeder's own violations from the community's.
        """
        return self.screen_violations(bg_p, bg_q)

    def screen_violations(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> np.ndarray:
        """Limits the injections break in the screen of the linear model, per interval."""
        v, loading, _ = self.model.screen(p_kw, q_kvar)
        m = self.model
        bus_bad = (v < m.v_lo_pu - VIOLATION_TOL_PU) | (v > m.v_hi_pu + VIOLATION_TOL_PU)
        line_bad = loading > m.loading_limit_frac + VIOLATION_TOL_PU
        return bus_bad.sum(axis=-1) + line_bad.sum(axis=-1)

    def spread(
        self, amount_kw: np.ndarray, room_kw: np.ndarray, sign: float, p_kw: np.ndarray,
        q_kvar: np.ndarray,
    ) -> np.ndarray:
        """The re-clearing's curtailment (``sign`` −1) or deferral (+1) per bus [kW],
        shared over the feeder pro rata to what each bus can give (``room_kw``) wherever
        that keeps every limit in the screen of the same linear model; else as solved.

        The re-clearing prices curtailment and deferral alike at every bus, so where the
        binding limit is one that every bus relieves alike (the transformer, say), which
        buses carry it is decided by the model's linearised losses and by the solver's
        choice between near-equal optima: a different set of households from one solve to
        the next, and between the run and its baseline. Sharing it pro rata is the rule
        wherever it is feasible; a limit that only some buses relieve (a voltage at the
        end of a branch) keeps the solver's allocation.
        """
        total, room = float(amount_kw.sum()), float(room_kw.sum())
        if total <= TINY_KWH or room <= total - TINY_KWH:
            return amount_kw
        even = np.minimum(total * room_kw / room, room_kw)
        if self.screen_violations(p_kw + sign * (even - amount_kw), q_kvar) == 0:
            return even
        return amount_kw

    def injections(
        self, net_kwh: np.ndarray, demand_kwh: np.ndarray, bg_p: np.ndarray, bg_q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Total net injection per bus [kW, kvar], background included."""
        p = np.bincount(self.bus, net_kwh, self.n_bus) / self.dt_h + bg_p
        q = -np.bincount(self.bus, demand_kwh, self.n_bus) * self.tan_phi / self.dt_h + bg_q
        return p, q

    def can_relieve(
        self, v_pu: np.ndarray, line_violation: np.ndarray, plan: Plan, filled_kwh: np.ndarray
    ) -> bool:
        """Whether the market holds anything that could relieve the broken limits.

        Under-voltage is relieved only by not charging flexible storage or postponing EV
        charging that has time to spare; over-voltage by
        curtailing PV or not discharging storage; an overloaded branch by any of them.
        Where nothing could help (say, an evening under-voltage caused by inflexible
        load on a weak feeder), the interval is not re-cleared: the violation stands and
        is reported, and the market's result is what the re-clearing would give.
        """
        flexible = plan.kind != KIND_NET
        flex_buy = float(filled_kwh[flexible & plan.is_buy].sum())
        flex_buy += float(plan.ev_deferrable_kwh.sum())
        flex_sell = float(filled_kwh[flexible & ~plan.is_buy].sum())
        pv = float(plan.generation_kwh.sum())
        under = bool((v_pu < self.model.v_lo_pu - VIOLATION_TOL_PU).any())
        over = bool((v_pu > self.model.v_hi_pu + VIOLATION_TOL_PU).any())
        return (
            (under and flex_buy > TINY_KWH)
            or (over and pv + flex_sell > TINY_KWH)
            or (bool(line_violation.any()) and pv + flex_buy + flex_sell > TINY_KWH)
        )

    def saturated_relief(
        self,
        v_pu: np.ndarray,
        line_violation: np.ndarray,
        plan: Plan,
        filled_kwh: np.ndarray,
        p: np.ndarray,
        q: np.ndarray,
    ) -> np.ndarray | None:
        """Orders to drop when an under-voltage persists even without any flexible charging.

        With only an under-voltage broken, the constrained clearing can relieve it only by
        not filling flexible buys and postponing deferrable EV charging; if the limit stays
        broken with all of that undone, its penalised optimum is exactly that: drop every
        flexible buy, defer all deferrable EV charging, and clear the rest as the market
        would (the physics of the other orders does not depend on their fills).
        This returns that set of orders (a mask), or None when the optimisation is needed.
        Nodal prices are not defined then (the limit cannot be restored).
        """
        under = bool((v_pu < self.model.v_lo_pu - VIOLATION_TOL_PU).any())
        over = bool((v_pu > self.model.v_hi_pu + VIOLATION_TOL_PU).any())
        if not under or over or line_violation.any():
            return None
        flex_buy = (plan.kind != KIND_NET) & plan.is_buy
        charging = flex_buy & (filled_kwh > 0)
        deferred = self.deferrable_of_buyers(plan)
        relief_kwh = np.bincount(self.bus[plan.household[charging]], filled_kwh[charging],
                                 self.n_bus).astype(float)
        relief_kwh += np.bincount(self.bus, deferred, self.n_bus)
        # the screen is the same linear model as the Pyomo check (equal to 1e-7 p.u.),
        # and this is only the decision whether the optimisation is needed
        v_relieved, _, _ = self.model.screen(p + relief_kwh / self.dt_h, q)
        if (v_relieved < self.model.v_lo_pu - VIOLATION_TOL_PU).any():
            return flex_buy
        return None

    @staticmethod
    def deferrable_of_buyers(plan: Plan) -> np.ndarray:
        """Deferrable EV charging of households that buy their net position [kWh].

        Deferring it shrinks their buy order and nothing else (a household that charges
        from its own PV would turn into a seller instead)."""
        net_buy = (plan.kind == KIND_NET) & plan.is_buy
        buying = np.zeros(len(plan.ev_deferrable_kwh))
        buying[plan.household[net_buy]] = plan.energy_kwh[net_buy]
        return np.minimum(plan.ev_deferrable_kwh, buying)

    @staticmethod
    def shrink_buy_orders(plan: Plan, deferred_kwh: np.ndarray) -> tuple[Plan, np.ndarray]:
        """The plan with each buyer's net buy order reduced by its deferred charging, and
        which of the plan's orders it keeps (a buy order deferred entirely is dropped)."""
        net_buy = (plan.kind == KIND_NET) & plan.is_buy
        energy = plan.energy_kwh.copy()
        energy[net_buy] -= deferred_kwh[plan.household[net_buy]]
        keep = ~net_buy | (energy > TINY_KWH)
        return plan.with_orders(keep, energy), keep

    def prepare(self) -> None:
        """Size the clearing model for the fullest bus (once, so it is never rebuilt) and
        solve it once: what the first re-clearing would otherwise pay (the live market
        does it before its first gate opens)."""
        if self._reserved:
            return
        per_bus = int(np.bincount(self.bus, minlength=self.n_bus).max())
        reserve_order_slots(self.model, per_bus, 2)
        self._reserved = True
        zero, none = np.zeros(self.n_bus), np.zeros(0)
        self.model.check(zero, zero)
        # an empty book: the utility prices (retail 0.3, feed-in 0.1) play no part
        self.model.clear_constrained(
            zero, zero, none.astype(np.int64), none.astype(bool), none, none, zero,
            0.3, 0.1, self.dt_h, deferrable_kw=zero, order_flexible=none.astype(bool),
        )

    def check(
        self,
        plan: Plan,
        net_kwh: np.ndarray,
        bg_p: np.ndarray,
        bg_q: np.ndarray,
        tariffs: Tariffs,
        filled_kwh: np.ndarray | None = None,
        p2p: bool = True,
    ) -> GridOutcome:
        """Check an interval; re-clear it with the feeder in the model if a limit breaks
        and the market could relieve it (see :meth:`can_relieve`). Without ``p2p`` (the
        no-P2P baseline) the re-clearing fills no order: it only curtails and defers."""
        p, q = self.injections(net_kwh, plan.demand_kwh, bg_p, bg_q)
        m = self.model
        if filled_kwh is not None:
            # The screen (the same linear model, equal to the Pyomo solve to 1e-7 p.u.)
            # decides whether the known optimum of an unrestorable under-voltage applies;
            # the state that is recorded is always checked by the Pyomo model (recheck).
            v, loading, _ = m.screen(p, q)
            bus_bad = (v < m.v_lo_pu - VIOLATION_TOL_PU) | (v > m.v_hi_pu + VIOLATION_TOL_PU)
            line_bad = loading > m.loading_limit_frac + VIOLATION_TOL_PU
            if (bus_bad.any() and self.can_relieve(v, line_bad, plan, filled_kwh)):
                dropped = self.saturated_relief(v, line_bad, plan, filled_kwh, p, q)
                if dropped is not None:
                    return GridOutcome(
                        None, p, q, recleared=True, dropped_orders=dropped,
                        ev_deferred_kwh=self.deferrable_of_buyers(plan),
                        violations_before=int(bus_bad.sum() + line_bad.sum()),
                    )
        chk = m.check(p, q)
        if chk.violations == 0:
            return GridOutcome(chk, p, q, recleared=False)
        if filled_kwh is not None and not self.can_relieve(
            chk.v_pu, chk.line_violation, plan, filled_kwh
        ):
            return GridOutcome(chk, p, q, recleared=False)
        dt = self.dt_h
        self.prepare()
        book = merge_flexible(plan, self.bus)
        res = self.model.clear_constrained(
            bg_p, q, book.bus, ~book.is_buy, book.energy_kwh, book.price_per_kwh,
            np.bincount(self.bus, plan.generation_kwh, self.n_bus) / dt,
            tariffs.retail_price_per_kwh, tariffs.feed_in_price_per_kwh, dt,
            deferrable_kw=np.bincount(self.bus, plan.ev_deferrable_kwh, self.n_bus) / dt,
            order_flexible=book.flexible, p2p=p2p,
        )
        filled = book.split(res.order_filled_kwh)
        flexible = plan.kind != KIND_NET
        n = len(self.bus)
        unmatched = np.maximum(plan.energy_kwh - filled, 0.0)
        net_sell = (~plan.is_buy) & ~flexible
        net_buy = plan.is_buy & ~flexible
        unsold = np.bincount(plan.household[net_sell], unmatched[net_sell], n)
        unbought = np.bincount(plan.household[net_buy], unmatched[net_buy], n)
        # what each bus can curtail (defer) besides what its sellers (buyers) sold (bought)
        order_bus = self.bus[plan.household]
        pv_kw = np.bincount(self.bus, plan.generation_kwh, self.n_bus) / dt
        defer_kw = np.bincount(self.bus, plan.ev_deferrable_kwh, self.n_bus) / dt
        room = []
        for side, cap_kw in ((net_sell, pv_kw), (net_buy, defer_kw)):
            order_kw = np.bincount(order_bus[side], plan.energy_kwh[side], self.n_bus) / dt
            traded_kw = np.bincount(order_bus[side], filled[side], self.n_bus) / dt
            room.append(np.minimum(cap_kw, np.maximum(order_kw, cap_kw) - traded_kw))
        curtailed_kw = self.spread(res.curtailed_kw, room[0], -1.0, res.p_kw, q)
        p_res = res.p_kw + res.curtailed_kw - curtailed_kw
        deferred_kw = self.spread(res.deferred_kw, room[1], 1.0, p_res, q)
        curtailed = share_curtailment(curtailed_kw * dt, self.bus, plan.generation_kwh, unsold)
        # deferred charging first where it was to be imported, not bought from a neighbour
        deferred = share_at_buses(deferred_kw * dt, self.bus, unbought, plan.ev_deferrable_kwh)
        return GridOutcome(
            check=chk, p_kw=p, q_kvar=q, recleared=True, filled_kwh=filled,
            curtailed_kwh=curtailed, ev_deferred_kwh=deferred,
            pairing=pair_fills(plan, filled, res.p2p_price_per_kwh),
            # NaN where the duals price the penalty, not energy (grid.clearing decides)
            nodal_price_per_kwh=res.nodal_price_per_kwh,
            p2p_price_per_kwh=res.p2p_price_per_kwh,
        )

    def recheck(self, outcome: GridOutcome, net_kwh: np.ndarray, demand_kwh: np.ndarray,
                bg_p: np.ndarray, bg_q: np.ndarray) -> GridOutcome:
        """The check of the injections that the re-clearing left."""
        p, q = self.injections(net_kwh, demand_kwh, bg_p, bg_q)
        chk = self.model.check(p, q)
        return replace(outcome, check=chk, p_kw=p, q_kvar=q)

    def ac_check(self, outcome: GridOutcome) -> tuple[float, float, float, float]:
        """AC power flow of the interval: (v_min, v_max, largest |model − AC| voltage) [p.u.]
        and the largest loading (current over rated current) [-]."""
        assert self.ac is not None
        ac = self.ac.run(outcome.p_kw, outcome.q_kvar)
        err = float(np.abs(outcome.check.v_pu - ac.v_pu).max())
        return float(ac.v_pu.min()), float(ac.v_pu.max()), err, float(ac.loading_frac.max())

    def write_block(self, t0: int, outcomes: list[GridOutcome]) -> None:
        """Append a block of intervals to buses.parquet and lines.parquet."""
        n_t, nb = len(outcomes), self.n_bus
        nl = len(self.line_labels)
        t = np.arange(t0, t0 + n_t, dtype=np.int32)
        nan_prices = np.full(nb, np.nan)
        bus_idx = pa.array(np.tile(np.arange(nb, dtype=np.int32), n_t))
        self._buses_out.write({
            "t": np.repeat(t, nb),
            "bus": pa.DictionaryArray.from_arrays(bus_idx, pa.array(self.bus_labels)),
            "p_kw": np.concatenate([o.p_kw for o in outcomes]),
            "q_kvar": np.concatenate([o.q_kvar for o in outcomes]),
            "v_pu": np.concatenate([o.check.v_pu for o in outcomes]),
            "nodal_price_per_kwh": np.concatenate([
                nan_prices if o.nodal_price_per_kwh is None else o.nodal_price_per_kwh
                for o in outcomes
            ]),
        })
        line_idx = pa.array(np.tile(np.arange(nl, dtype=np.int32), n_t))
        self._lines_out.write({
            "t": np.repeat(t, nl),
            "line": pa.DictionaryArray.from_arrays(line_idx, pa.array(self.line_labels)),
            "from_bus": pa.DictionaryArray.from_arrays(
                pa.array(np.tile(self._from, n_t)), pa.array(self.bus_labels)),
            "to_bus": pa.DictionaryArray.from_arrays(
                pa.array(np.tile(self._to, n_t)), pa.array(self.bus_labels)),
            "p_kw": np.concatenate([o.check.line_p_kw for o in outcomes]),
            "q_kvar": np.concatenate([o.check.line_q_kvar for o in outcomes]),
            "loading_frac": np.concatenate([o.check.loading_frac for o in outcomes]),
        })

    def rows(self, outcome: GridOutcome) -> tuple[list[dict], list[dict]]:
        """One interval's rows of buses.parquet and lines.parquet, as dicts (NaN → None):
        what the live market publishes in ``market/result`` ``grid.buses``/``grid.lines``."""

        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        prices = outcome.nodal_price_per_kwh
        chk = outcome.check
        buses = [
            {
                "bus": str(label),
                "p_kw": num(p),
                "q_kvar": num(q),
                "v_pu": num(v),
                "nodal_price_per_kwh": None if prices is None else num(prices[i]),
            }
            for i, (label, p, q, v) in enumerate(
                zip(self.bus_labels, outcome.p_kw.tolist(), outcome.q_kvar.tolist(),
                    chk.v_pu.tolist(), strict=True)
            )
        ]
        lines = [
            {
                "line": str(label),
                "from_bus": str(self.bus_labels[f]),
                "to_bus": str(self.bus_labels[to]),
                "p_kw": num(p),
                "q_kvar": num(q),
                "loading_frac": num(x),
            }
            for label, f, to, p, q, x in zip(
                self.line_labels, self._from.tolist(), self._to.tolist(),
                chk.line_p_kw.tolist(), chk.line_q_kvar.tolist(), chk.loading_frac.tolist(),
                strict=True,
            )
        ]
        return buses, lines

    def close(self) -> None:
        self._buses_out.close()
        self._lines_out.close()
