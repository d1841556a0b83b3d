"""Network-constrained clearing of one interval, with curtailment and nodal prices.

The model (a linear programme on the linearised DistFlow network of
:mod:`grid.lindistflow`, built once per feeder, see
:class:`grid.clearing_model.ClearingModel`, and re-solved on a persistent HiGHS instance
with each interval's sizes, prices and injections; on the direct path every order gets a
column of its own, :class:`grid.clearing_direct.DirectClearing`):

*Physics.* The orders' energy is the households' physical net position for the interval:
a buy order is consumption and a sell order is generation, whether it is matched or not
(an unmatched buy is served by import from the utility at retail, an unmatched sell is
exported at feed-in, and both flow through the same feeder). The only physical decisions
are therefore

- ``c_b`` in ``[0, curtailable_kw_b]``: PV curtailed at bus ``b`` [kW];
- ``d_b`` in ``[0, deferrable_kw_b]``: deferrable load (EV/battery charging) postponed [kW];

and the net injection at bus ``b`` is
``p_b = p_fixed_b + sum(sell kW at b) - sum(buy kW at b) - c_b + d_b`` (reactive
injections fixed: curtailment and deferral at unity power factor). The utility sits at the
slack bus: ``import_kw`` bought at ``retail_price_per_kwh``, ``export_kw`` sold at
``feed_in_price_per_kwh``.

*Money.* Maximise, per hour,

    W = sum_buys price_k x_k - sum_sells price_k x_k            (P2P gains at limit prices)
        - retail * import_kw + feed_in * export_kw              (utility at the slack)
        - curtailment_cost * sum c - deferral_cost * sum d

over the P2P fills ``x_k`` in ``[0, order_kw_k]`` with ``sum_buys x = sum_sells x`` (energy
traded peer to peer balances), subject to the network limits. Without binding limits and
with zero curtailment this is the uniform double auction (maximal gains from trade).
Curtailment is taken first from PV that is not offered for sale at the bus
(``max(curtailable_kw_b - sell_kw_b, 0)``) and then from what the bus's sellers can
deliver: ``sum_{sells at b} x_k + c_b <= sell_kw_b + max(curtailable_kw_b - sell_kw_b, 0)``;
deferral likewise reduces what the bus's buyers can take. Deferral defaults to costing
``2 * retail`` per kWh, i.e. ``retail`` net of the import it saves, so load is only
deferred to restore a limit. A buyer that is not filled still consumes: it pays
``retail`` instead of at most its bid, which is what the model's utility term charges.

*Nodal prices.* ``nodal_price_per_kwh[b]`` is the dual of the active-power balance of bus
``b``, scaled to [currency/kWh] and signed as the *value of one more kWh injected at
``b``* (locational marginal price): ``feed_in`` at an uncongested exporting feeder,
``retail`` at an uncongested importing one, and different where a limit binds (e.g.
``-(P2P price - ask)`` behind a line that is full with exports whose sellers get
curtailed: one more kWh there displaces a seller's P2P sale). ``p2p_price_per_kwh`` is the
dual of the P2P balance.

Where a limit binds the price is the tariff at the slack plus, for every binding limit,
the cost of its cheapest relief (curtailment, deferral at ``deferral_cost``, a bid left
unfilled) scaled by how much one kWh at ``b`` moves that limit compared with a kWh of the
relief: a bus that moves a binding voltage three times as much as the buses whose EV
charging is deferred (at 0.64 per kWh) is priced about 3 x 0.64 above the tariff. Prices of
a few EUR/kWh are therefore energy prices of a weakly coupled relief, not errors.
Prices that price the *penalty* of the elastic limits instead are not reported: when the
shadow price of some limit reaches its penalty weight (the reduced cost of its slack is
below :data:`grid.clearing_model.PENALTY_PRICED_FRAC` of the penalty), the limit is
either broken (a residual violation) or exactly at a limit nothing can relieve, and every
nodal price of the interval is NaN (``penalty_priced``).
"""

from __future__ import annotations

import numpy as np

from grid.clearing_model import (
    ClearingModel,
    FeederModel,
    SlotUpdate,
    pools_of,
    reserve_order_slots,
)
from grid.results import ConstrainedClearing
from market.orders import Side

#: Tie-break cost of curtailment [currency/kWh], so that free energy is not curtailed
#: needlessly when the feed-in price is zero.
CURTAILMENT_TIE_BREAK_PER_KWH = 1e-6


def _is_sell(order_side: np.ndarray) -> np.ndarray:
    """Mask of the sell orders of ``order_side``, :class:`market.orders.Side` codes."""
    side = np.asarray(order_side)
    if side.dtype.kind not in "iu" or not np.isin(side, (Side.BUY, Side.SELL)).all():
        bad = side[~np.isin(side, (Side.BUY, Side.SELL))] if side.dtype.kind in "iu" else side
        raise ValueError(
            f"order_side must hold market.orders.Side codes (BUY = {Side.BUY.value}, "
            f"SELL = {Side.SELL.value}) as integers, got {side.dtype} values such as "
            f"{bad[:3].tolist()}"
        )
    return side == Side.SELL


def aggregate_orders(
    bus: np.ndarray, sell: np.ndarray, flexible: np.ndarray, price: np.ndarray, e_kw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge the orders that the clearing LP cannot tell apart into one column each.

    Orders with the same bus, side, flexibility and limit price have the same column in
    every row and the same cost, so the LP's optimum only fixes the sum of their fills.
    Returns each order's column (``group``) and, per column, its bus, side, flexibility,
    price and power [kW] (the sum of its orders'). The caller splits a column's fill back
    pro rata to the orders' energy, which is exact (any split is optimal) and independent
    of the order of the book.
    """
    n = len(bus)
    if n == 0:
        empty = np.zeros(0, int)
        return empty, empty, np.zeros(0, bool), np.zeros(0, bool), np.zeros(0), np.zeros(0)
    order = np.lexsort((price, flexible, sell, bus))
    b, sl, fx, pr = bus[order], sell[order], flexible[order], price[order]
    new = np.ones(n, bool)
    new[1:] = (b[1:] != b[:-1]) | (sl[1:] != sl[:-1]) | (fx[1:] != fx[:-1]) | (pr[1:] != pr[:-1])
    first = np.flatnonzero(new)
    group = np.empty(n, int)
    group[order] = np.cumsum(new) - 1
    kw = np.bincount(group, weights=e_kw, minlength=len(first))
    return group, b[first], sl[first], fx[first], pr[first], kw


def clear_constrained(
    fm: FeederModel,
    p_fixed_kw: np.ndarray,
    q_fixed_kvar: np.ndarray,
    order_bus: np.ndarray,
    order_side: np.ndarray,
    order_kwh: np.ndarray,
    order_price_per_kwh: np.ndarray,
    curtailable_kw: np.ndarray,
    retail_price_per_kwh: float,
    feed_in_price_per_kwh: float,
    interval_hours: float,
    *,
    deferrable_kw: np.ndarray | None = None,
    order_flexible: np.ndarray | None = None,
    curtailment_cost_per_kwh: float = 0.0,
    deferral_cost_per_kwh: float | None = None,
    p2p: bool = True,
) -> ConstrainedClearing:
    """Clear one interval's orders with the feeder's limits in the model.

    Parameters
    ----------
    fm : FeederModel
    p_fixed_kw, q_fixed_kvar : ndarray, shape (n_bus,)
        Injections that are not in the orders (background, self-consumed PV, ...)
        [kW, kvar], export positive.
    order_bus : ndarray of int, shape (n_order,)
        Bus position of each order.
    order_side : ndarray of int, shape (n_order,)
        :class:`market.orders.Side` of each order (``Side.SELL``, ``Side.BUY``).
    order_kwh : ndarray, shape (n_order,)
        Energy of each order over the interval [kWh], > 0.
    order_price_per_kwh : ndarray, shape (n_order,)
        Limit price [currency/kWh].
    curtailable_kw : ndarray, shape (n_bus,)
        PV that may be curtailed at each bus [kW].
    retail_price_per_kwh, feed_in_price_per_kwh : float
        Utility import and export prices [currency/kWh], ``retail >= feed_in``.
    interval_hours : float
        Interval length [h].
    deferrable_kw : ndarray, shape (n_bus,), optional
        Load that may be postponed at each bus [kW] (default none).
    order_flexible : ndarray of bool, shape (n_order,), optional
        Orders that happen physically only as far as they are filled (storage that
        charges or discharges only when matched); the others are physical positions
        that flow whether matched or not (default: none flexible).
    curtailment_cost_per_kwh : float
        Extra cost of curtailing, on top of the lost energy [currency/kWh] (default 0).
    deferral_cost_per_kwh : float, optional
        Cost of deferring load [currency/kWh]; default ``2 * retail``.
    p2p : bool
        Whether orders may be filled peer to peer (default). ``False`` is the no-P2P
        baseline: no order is filled, the inflexible ones still flow as physical
        positions (with the utility as the only counterparty), flexible ones do not,
        and only curtailment and deferral restore the limits.

    Returns
    -------
    ConstrainedClearing
    """
    n = fm.feeder.n_bus
    s = fm.feeder.s_base_kva
    h = float(interval_hours)
    if not h > 0:
        raise ValueError(f"interval_hours must be > 0, got {interval_hours}")
    if retail_price_per_kwh < feed_in_price_per_kwh:
        raise ValueError("retail_price_per_kwh must be >= feed_in_price_per_kwh")
    p_fixed = np.asarray(p_fixed_kw, float)
    q_fixed = np.asarray(q_fixed_kvar, float)
    curt = np.asarray(curtailable_kw, float)
    defer = np.zeros(n) if deferrable_kw is None else np.asarray(deferrable_kw, float)
    fm._check_shape(p_fixed, q_fixed, curt, defer)
    if (curt < 0).any() or (defer < 0).any():
        raise ValueError("curtailable_kw and deferrable_kw must be >= 0")
    bus = np.asarray(order_bus, int)
    sell = _is_sell(order_side)
    e_kw = np.asarray(order_kwh, float) / h
    price = np.asarray(order_price_per_kwh, float)
    n_ord = len(bus)
    flexible = np.zeros(n_ord, bool) if order_flexible is None else np.asarray(order_flexible, bool)
    if not (len(sell) == len(e_kw) == len(price) == len(flexible) == n_ord):
        raise ValueError("order arrays must have the same length")
    if n_ord and ((bus < 0).any() or (bus >= n).any()):
        raise ValueError("order_bus out of range")
    if (e_kw <= 0).any() or not np.isfinite(price).all():
        raise ValueError("order_kwh must be > 0 and prices finite")

    # orders the LP cannot tell apart share one column (see :func:`aggregate_orders`)
    group, a_bus, a_sell, a_flex, a_price, a_kw = aggregate_orders(bus, sell, flexible, price, e_kw)
    # each column's pool (side, flexible) at its bus and rank within the pool; on the stock
    # path grow the pools (rebuilding the model) if the book does not fit
    pool, rank = pools_of(a_bus, a_sell, a_flex)
    # without P2P no column can be filled (size 0): the LP gets none (the no-P2P baseline's
    # LP is the network's, whatever the community's size)
    lp_cols = slice(None) if p2p else slice(0, 0)
    need_fixed = int(rank[~a_flex].max()) + 1 if (~a_flex).any() else 0
    need_flex = int(rank[a_flex].max()) + 1 if a_flex.any() else 0
    reserve_order_slots(fm, need_fixed if p2p else 0, need_flex if p2p else 0)
    cm: ClearingModel | None = fm._clearing
    assert cm is not None
    fixed_sell = sell & ~flexible
    fixed_buy = ~sell & ~flexible
    sell_kw = np.bincount(bus[fixed_sell], weights=e_kw[fixed_sell], minlength=n)
    buy_kw = np.bincount(bus[fixed_buy], weights=e_kw[fixed_buy], minlength=n)
    p_total = p_fixed + sell_kw - buy_kw
    sell_cap = sell_kw + np.maximum(curt - sell_kw, 0.0)
    buy_cap = buy_kw + np.maximum(defer - buy_kw, 0.0)
    retail, feed_in = float(retail_price_per_kwh), float(feed_in_price_per_kwh)
    defer_cost = 2.0 * retail if deferral_cost_per_kwh is None else float(deferral_cost_per_kwh)
    curt_cost = float(curtailment_cost_per_kwh) + CURTAILMENT_TIE_BREAK_PER_KWH
    sol = cm.solve(
        SlotUpdate(
            key=(a_bus * 4 + pool)[lp_cols],
            rank=rank[lp_cols],
            order_pu=a_kw[lp_cols] / s,
            price=a_price[lp_cols],
            p_inj_pu=p_total / s,
            q_inj_pu=q_fixed / s,
            curt_pu=curt / s,
            defer_pu=defer / s,
            sell_cap_pu=sell_cap / s,
            buy_cap_pu=buy_cap / s,
            retail=retail,
            feed_in=feed_in,
            curt_cost=curt_cost,
            defer_cost=defer_cost,
        )
    )
    c_kw = sol.c_pu * s
    d_kw = sol.d_pu * s
    c_kw[np.abs(c_kw) < 1e-9] = 0.0
    d_kw[np.abs(d_kw) < 1e-9] = 0.0
    # bal_p: (...) + dec_p == -p_inj  ->  d(cost)/d(p_inj) = -dual; value = -d(cost)/dp
    # prices of an interval whose limits are priced by the penalty are not energy prices
    nodal = np.full(n, np.nan) if sol.penalty_priced else sol.bal_dual / s
    p2p_price = -sol.p2p_dual / s
    col_kwh = np.clip(sol.x_pu * s * h, 0.0, a_kw * h) if p2p else np.zeros(len(a_kw))
    # the LP is indifferent between the orders of a column: pro rata to their energy
    fill_kwh = np.minimum(col_kwh[group] * (e_kw / a_kw[group]), e_kw * h)
    signed_flex = np.where(sell, fill_kwh, -fill_kwh) / h * flexible
    p_res = p_total - c_kw + d_kw + np.bincount(bus, weights=signed_flex, minlength=n)
    # the model's flows and voltages are those of the linearised network with the
    # resulting injections p_res: the check of the re-cleared interval, without a solve
    grid_chk = fm.state(sol.p_line_pu, sol.q_line_pu, sol.w_pu, "pyomo")
    imp_kw = sol.import_pu * s
    welfare = h * (
        float(np.sum(price[~sell] * fill_kwh[~sell] / h) - np.sum(price[sell] * fill_kwh[sell] / h))
        - retail * max(imp_kw, 0.0)
        + feed_in * max(-imp_kw, 0.0)
        - (curt_cost - CURTAILMENT_TIE_BREAK_PER_KWH) * c_kw.sum()
        - defer_cost * d_kw.sum()
    )
    residual = int(np.count_nonzero(sol.slacks > 1e-7))
    return ConstrainedClearing(
        order_filled_kwh=fill_kwh,
        curtailed_kw=c_kw,
        deferred_kw=d_kw,
        p_kw=p_res,
        q_kvar=q_fixed.copy(),
        import_kw=float(imp_kw),
        nodal_price_per_kwh=nodal,
        p2p_price_per_kwh=float(p2p_price),
        welfare=float(welfare),
        residual_violations=residual,
        penalty_priced=sol.penalty_priced,
        grid=grid_chk,
    )
