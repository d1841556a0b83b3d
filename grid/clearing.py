"""Network-constrained clearing of one interval, with curtailment and nodal prices.

The model (a linear programme on the linearised DistFlow network of
:mod:`grid.lindistflow`, built once per feeder and order-slot capacity):

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyomo.environ as pyo

from grid.lindistflow import add_network, make_solver
from grid.results import ConstrainedClearing

if TYPE_CHECKING:
    from grid.lindistflow import FeederModel

#: Tie-break cost of curtailment [currency/kWh], so that free energy is not curtailed
#: needlessly when the feed-in price is zero.
CURTAILMENT_TIE_BREAK_PER_KWH = 1e-6


class ClearingModel:
    """Pyomo clearing model of a feeder with ``slots`` order slots per bus and side."""

    def __init__(self, fm: FeederModel, slots: int) -> None:
        self.slots = slots
        tree = fm.tree
        n = tree.n_bus
        s = fm.feeder.s_base_kva
        self.slot_bus = np.repeat(np.arange(n), 2 * slots)
        self.slot_sell = np.tile(np.repeat([True, False], slots), n)
        m = pyo.ConcreteModel(name=f"clearing {fm.feeder.name}")
        ks = range(len(self.slot_bus))
        buses = range(n)
        m.order_pu = pyo.Param(ks, mutable=True, initialize=0.0)
        m.price = pyo.Param(ks, mutable=True, initialize=0.0)
        m.curt_pu = pyo.Param(buses, mutable=True, initialize=0.0)
        m.defer_pu = pyo.Param(buses, mutable=True, initialize=0.0)
        m.sell_cap = pyo.Param(buses, mutable=True, initialize=0.0)
        m.buy_cap = pyo.Param(buses, mutable=True, initialize=0.0)
        m.retail = pyo.Param(mutable=True, initialize=0.0)
        m.feed_in = pyo.Param(mutable=True, initialize=0.0)
        m.curt_cost = pyo.Param(mutable=True, initialize=0.0)
        m.defer_cost = pyo.Param(mutable=True, initialize=0.0)
        m.flex = pyo.Param(ks, mutable=True, initialize=0.0)
        m.x = pyo.Var(ks, bounds=lambda m, k: (0.0, m.order_pu[k]))
        m.c = pyo.Var(buses, bounds=lambda m, b: (0.0, m.curt_pu[b]))
        m.d = pyo.Var(buses, bounds=lambda m, b: (0.0, m.defer_pu[b]))
        m.imp = pyo.Var(bounds=(0.0, None))
        m.exp = pyo.Var(bounds=(0.0, None))
        slack = tree.slack
        sells: dict[int, list[int]] = {b: [] for b in buses}
        buys: dict[int, list[int]] = {b: [] for b in buses}
        for k in ks:
            (sells if self.slot_sell[k] else buys)[int(self.slot_bus[k])].append(k)

        def dec_p(m: pyo.ConcreteModel, b: int) -> object:
            # flexible orders flow only as far as they are filled
            flexible = sum(m.flex[k] * m.x[k] for k in sells[b]) - sum(
                m.flex[k] * m.x[k] for k in buys[b]
            )
            utility = (m.imp - m.exp) if b == slack else 0.0
            return -m.c[b] + m.d[b] + utility + flexible

        m.dec_p = pyo.Expression(buses, rule=dec_p)
        add_network(m, tree, fm.lin, fm.thermal_margin_frac)
        fm.set_limits(m)
        m.sell_link = pyo.Constraint(
            buses,
            rule=lambda m, b: sum((1 - m.flex[k]) * m.x[k] for k in sells[b]) + m.c[b]
            <= m.sell_cap[b],
        )
        m.buy_link = pyo.Constraint(
            buses,
            rule=lambda m, b: sum((1 - m.flex[k]) * m.x[k] for k in buys[b]) + m.d[b]
            <= m.buy_cap[b],
        )
        sell_k = [k for k in ks if self.slot_sell[k]]
        buy_k = [k for k in ks if not self.slot_sell[k]]
        m.p2p = pyo.Constraint(
            expr=pyo.quicksum(m.x[k] for k in buy_k) - pyo.quicksum(m.x[k] for k in sell_k) == 0
        )
        cost = (
            m.retail * m.imp
            - m.feed_in * m.exp
            + pyo.quicksum(m.price[k] * m.x[k] for k in sell_k)
            - pyo.quicksum(m.price[k] * m.x[k] for k in buy_k)
            + m.curt_cost * pyo.quicksum(m.c.values())
            + m.defer_cost * pyo.quicksum(m.d.values())
        )
        m.obj = pyo.Objective(expr=s * cost + m.penalty, sense=pyo.minimize)
        self.m = m
        self.opt = make_solver()
        self.x_vars = list(m.x.values())
        self.c_vars = list(m.c.values())
        self.d_vars = list(m.d.values())
        self.bal_cons = list(m.bal_p.values())


def _as_side(order_side: np.ndarray) -> np.ndarray:
    side = np.asarray(order_side)
    if side.dtype == bool:
        return side
    if side.dtype.kind in "iuf":
        if not np.isin(side, (-1, 1)).all():
            raise ValueError(
                "order_side must be +1 (sell) / -1 (buy), bool (True = sell) or 'sell'/'buy'"
            )
        return side > 0
    low = np.char.lower(side.astype(str))
    if not np.isin(low, ("sell", "buy")).all():
        raise ValueError("order_side strings must be 'sell' or 'buy'")
    return low == "sell"


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
    order_side : ndarray, shape (n_order,)
        +1 / True / ``"sell"`` for sells, -1 / False / ``"buy"`` for buys.
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
    sell = _as_side(order_side)
    e_kw = np.asarray(order_kwh, float) / h
    price = np.asarray(order_price_per_kwh, float)
    n_ord = len(bus)
    flexible = (
        np.zeros(n_ord, bool) if order_flexible is None else np.asarray(order_flexible, bool)
    )
    if not (len(sell) == len(e_kw) == len(price) == len(flexible) == n_ord):
        raise ValueError("order arrays must have the same length")
    if n_ord and ((bus < 0).any() or (bus >= n).any()):
        raise ValueError("order_bus out of range")
    if (e_kw <= 0).any() or not np.isfinite(price).all():
        raise ValueError("order_kwh must be > 0 and prices finite")

    # map orders to slots: group by (bus, side), rank within the group
    key = bus * 2 + (~sell)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key, side="left")
    rank = np.empty(n_ord, int)
    rank[order] = np.arange(n_ord) - first
    need = int(rank.max()) + 1 if n_ord else 1
    cm: ClearingModel | None = fm._clearing
    if cm is None or cm.slots < need:
        cm = ClearingModel(fm, max(4, 1 << (need - 1).bit_length()))
        fm._clearing = cm
    slot = key * cm.slots + rank  # slots laid out bus-major, sells then buys
    m = cm.m
    order_pu = np.zeros(len(cm.slot_bus))
    slot_price = np.zeros(len(cm.slot_bus))
    slot_flex = np.zeros(len(cm.slot_bus))
    order_pu[slot] = e_kw / s
    slot_price[slot] = price
    slot_flex[slot] = flexible
    for k in range(len(order_pu)):
        m.order_pu[k].set_value(order_pu[k])
        m.price[k].set_value(slot_price[k])
        m.flex[k].set_value(slot_flex[k])
    fixed_sell = sell & ~flexible
    fixed_buy = ~sell & ~flexible
    sell_kw = np.bincount(bus[fixed_sell], weights=e_kw[fixed_sell], minlength=n)
    buy_kw = np.bincount(bus[fixed_buy], weights=e_kw[fixed_buy], minlength=n)
    p_total = p_fixed + sell_kw - buy_kw
    sell_cap = sell_kw + np.maximum(curt - sell_kw, 0.0)
    buy_cap = buy_kw + np.maximum(defer - buy_kw, 0.0)
    for b in range(n):
        m.p_inj[b].set_value(p_total[b] / s)
        m.q_inj[b].set_value(q_fixed[b] / s)
        m.curt_pu[b].set_value(curt[b] / s)
        m.defer_pu[b].set_value(defer[b] / s)
        m.sell_cap[b].set_value(sell_cap[b] / s)
        m.buy_cap[b].set_value(buy_cap[b] / s)
    retail, feed_in = float(retail_price_per_kwh), float(feed_in_price_per_kwh)
    defer_cost = 2.0 * retail if deferral_cost_per_kwh is None else float(deferral_cost_per_kwh)
    curt_cost = float(curtailment_cost_per_kwh) + CURTAILMENT_TIE_BREAK_PER_KWH
    m.retail.set_value(retail)
    m.feed_in.set_value(feed_in)
    m.curt_cost.set_value(curt_cost)
    m.defer_cost.set_value(defer_cost)

    res = cm.opt.solve(m)
    loader = res.solution_loader
    vals = loader.get_vars([*cm.x_vars, *cm.c_vars, *cm.d_vars, m.imp, m.exp])
    x_pu = np.array([vals[v] for v in cm.x_vars])
    c_kw = np.array([vals[v] for v in cm.c_vars]) * s
    d_kw = np.array([vals[v] for v in cm.d_vars]) * s
    c_kw[np.abs(c_kw) < 1e-9] = 0.0
    d_kw[np.abs(d_kw) < 1e-9] = 0.0
    duals = loader.get_duals([*cm.bal_cons, m.p2p])
    # bal_p: (...) + dec_p == -p_inj  ->  d(cost)/d(p_inj) = -dual; value = -d(cost)/dp
    nodal = np.array([duals[c] for c in cm.bal_cons]) / s
    p2p_price = -float(duals[m.p2p]) / s
    fill_kwh = x_pu[slot] * s * h
    fill_kwh = np.clip(fill_kwh, 0.0, e_kw * h)
    signed_flex = np.where(sell, fill_kwh, -fill_kwh) / h * flexible
    p_res = p_total - c_kw + d_kw + np.bincount(bus, weights=signed_flex, minlength=n)
    grid_chk = fm.check(p_res, q_fixed)
    imp_kw = (vals[m.imp] - vals[m.exp]) * s
    welfare = h * (
        float(np.sum(price[~sell] * fill_kwh[~sell] / h) - np.sum(price[sell] * fill_kwh[sell] / h))
        - retail * max(imp_kw, 0.0)
        + feed_in * max(-imp_kw, 0.0)
        - (curt_cost - CURTAILMENT_TIE_BREAK_PER_KWH) * c_kw.sum()
        - defer_cost * d_kw.sum()
    )
    slacks = [*m.s_hi.values(), *m.s_lo.values(), *m.s_line.values()]
    sv = loader.get_vars(slacks)
    residual = int(sum(1 for v in slacks if sv[v] > 1e-7))
    return ConstrainedClearing(
        order_filled_kwh=fill_kwh,
        curtailed_kw=c_kw,
        deferred_kw=d_kw,
        p_kw=p_res,
        q_kvar=q_fixed.copy(),
        import_kw=float(imp_kw),
        nodal_price_per_kwh=nodal,
        p2p_price_per_kwh=p2p_price,
        welfare=float(welfare),
        residual_violations=residual,
        grid=grid_chk,
    )
