"""Re-clearing an interval with the feeder in the model, on the market's order arrays.

:func:`reclear` is step 3 of the grid stage of an interval (``scenarios/engine/grid_stage.py``):
welfare over the same orders (:class:`market.orders.Orders`) with the feeder's limits, PV
curtailment and the utility at the slack (:meth:`grid.FeederModel.clear_constrained`),
flexible storage orders flowing only as far as they are filled. Around that solve:

- flexible orders of one bus, side and limit price are merged into one order of the
  clearing (:func:`merge_flexible`) and its fill is shared pro rata back;
- curtailment and deferred EV charging are shared over the buses pro rata to what each can
  give wherever that keeps every limit (:func:`spread_evenly`; where only some buses
  relieve the limit they carry it), and at a bus among its households
  (:func:`share_at_buses`): curtailment first from the surplus they could not sell peer to
  peer, then from the PV they used themselves, each pro rata; deferral first where the
  charging was to be imported;
- the fills become trades only where both orders' limits allow them
  (:func:`grid.pairing.pair_fills`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grid.lindistflow import FeederModel
from grid.pairing import Pairing, pair_fills
from market.orders import TINY_KWH, Orders


@dataclass(frozen=True, slots=True)
class BusBook:
    """The orders as the constrained clearing sees them: flexible orders of one bus, side
    and limit price merged into one (the optimisation is indifferent between them, so
    sharing the merged fill pro rata is one of its optima). That keeps the model small:
    the price-aware storage rule gives all storage orders of a side one price."""

    bus: np.ndarray
    side: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    flexible: np.ndarray
    n_fixed: int
    fixed_rows: np.ndarray
    flex_rows: np.ndarray
    flex_group: np.ndarray
    flex_energy_kwh: np.ndarray

    def split(self, filled_kwh: np.ndarray) -> np.ndarray:
        """Fills of the merged book back on the original orders."""
        n_orders = len(self.fixed_rows) + len(self.flex_rows)
        out = np.zeros(n_orders)
        out[self.fixed_rows] = filled_kwh[: self.n_fixed]
        group_fill = filled_kwh[self.n_fixed :]
        group_energy = self.energy_kwh[self.n_fixed :]
        share = np.divide(
            group_fill, group_energy, out=np.zeros(len(group_fill)), where=group_energy > 0
        )
        out[self.flex_rows] = share[self.flex_group] * self.flex_energy_kwh
        return out


def merge_flexible(orders: Orders, household_bus: np.ndarray) -> BusBook:
    """Merge the flexible orders per (bus, side, limit price)."""
    flexible = orders.flexible
    fixed_rows = np.flatnonzero(~flexible)
    flex_rows = np.flatnonzero(flexible)
    order_bus = household_bus[orders.household]
    keys = np.stack([order_bus[flex_rows], orders.side[flex_rows], orders.price_per_kwh[flex_rows]])
    uniq, group = np.unique(keys, axis=1, return_inverse=True)
    group = group.reshape(-1)
    merged_energy = np.bincount(group, orders.energy_kwh[flex_rows], uniq.shape[1])
    return BusBook(
        bus=np.concatenate([order_bus[fixed_rows], uniq[0].astype(np.int64)]),
        side=np.concatenate([orders.side[fixed_rows], uniq[1].astype(np.int8)]),
        energy_kwh=np.concatenate([orders.energy_kwh[fixed_rows], merged_energy]),
        price_per_kwh=np.concatenate([orders.price_per_kwh[fixed_rows], uniq[2]]),
        flexible=np.concatenate([np.zeros(len(fixed_rows), bool), np.ones(uniq.shape[1], bool)]),
        n_fixed=len(fixed_rows),
        fixed_rows=fixed_rows,
        flex_rows=flex_rows,
        flex_group=group,
        flex_energy_kwh=orders.energy_kwh[flex_rows],
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


def spread_evenly(
    model: FeederModel,
    amount_kw: np.ndarray,
    room_kw: np.ndarray,
    sign: float,
    p_kw: np.ndarray,
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
    if model.screen_violations(p_kw + sign * (even - amount_kw), q_kvar) == 0:
        return even
    return amount_kw


@dataclass(frozen=True, slots=True)
class Reclearing:
    """The network-constrained re-clearing of one interval, per order and household."""

    filled_kwh: np.ndarray
    """Fill of every order [kWh]."""
    curtailed_kwh: np.ndarray
    """PV curtailed per household [kWh]."""
    ev_deferred_kwh: np.ndarray
    """EV charging postponed per household [kWh]."""
    pairing: Pairing
    nodal_price_per_kwh: np.ndarray
    """NaN where the duals price the violation penalty, not energy (grid.clearing)."""
    p2p_price_per_kwh: float


def reclear(
    model: FeederModel,
    household_bus: np.ndarray,
    orders: Orders,
    generation_kwh: np.ndarray,
    ev_deferrable_kwh: np.ndarray,
    p_fixed_kw: np.ndarray,
    q_kvar: np.ndarray,
    retail_price_per_kwh: float,
    feed_in_price_per_kwh: float,
    interval_hours: float,
    p2p: bool = True,
) -> Reclearing:
    """Re-clear an interval's orders with the feeder's limits (see the module docstring).

    ``household_bus`` is each household's bus, ``generation_kwh`` its PV (curtailable)
    and ``ev_deferrable_kwh`` its EV charging that may be postponed; ``p_fixed_kw`` and
    ``q_kvar`` the injections per bus that are not in the orders (background) and the
    reactive injections [kW, kvar]. Without ``p2p`` (the no-P2P baseline) no order is
    filled: the re-clearing only curtails and defers.
    """
    dt = interval_hours
    n_bus, n = model.feeder.n_bus, len(generation_kwh)
    book = merge_flexible(orders, household_bus)
    pv_kw = np.bincount(household_bus, generation_kwh, n_bus) / dt
    defer_kw = np.bincount(household_bus, ev_deferrable_kwh, n_bus) / dt
    res = model.clear_constrained(
        p_fixed_kw,
        q_kvar,
        book.bus,
        book.side,
        book.energy_kwh,
        book.price_per_kwh,
        pv_kw,
        retail_price_per_kwh,
        feed_in_price_per_kwh,
        dt,
        deferrable_kw=defer_kw,
        order_flexible=book.flexible,
        p2p=p2p,
    )
    filled = book.split(res.order_filled_kwh)
    hh, energy = orders.household, orders.energy_kwh
    unmatched = np.maximum(energy - filled, 0.0)
    net_sell = orders.is_sell & ~orders.flexible
    net_buy = orders.is_buy & ~orders.flexible
    unsold = np.bincount(hh[net_sell], unmatched[net_sell], n)
    unbought = np.bincount(hh[net_buy], unmatched[net_buy], n)
    # what each bus can curtail (defer) besides what its sellers (buyers) sold (bought)
    order_bus = household_bus[hh]
    room = []
    for side, cap_kw in ((net_sell, pv_kw), (net_buy, defer_kw)):
        order_kw = np.bincount(order_bus[side], energy[side], n_bus) / dt
        traded_kw = np.bincount(order_bus[side], filled[side], n_bus) / dt
        room.append(np.minimum(cap_kw, np.maximum(order_kw, cap_kw) - traded_kw))
    curtailed_kw = spread_evenly(model, res.curtailed_kw, room[0], -1.0, res.p_kw, q_kvar)
    p_res = res.p_kw + res.curtailed_kw - curtailed_kw
    deferred_kw = spread_evenly(model, res.deferred_kw, room[1], 1.0, p_res, q_kvar)
    curtailed = share_curtailment(curtailed_kw * dt, household_bus, generation_kwh, unsold)
    # deferred charging first where it was to be imported, not bought from a neighbour
    deferred = share_at_buses(deferred_kw * dt, household_bus, unbought, ev_deferrable_kwh)
    return Reclearing(
        filled_kwh=filled,
        curtailed_kwh=curtailed,
        ev_deferred_kwh=deferred,
        pairing=pair_fills(orders, filled, res.p2p_price_per_kwh, n),
        nodal_price_per_kwh=res.nodal_price_per_kwh,
        p2p_price_per_kwh=res.p2p_price_per_kwh,
    )
