"""Network-constrained clearing of one interval, with curtailment and nodal prices.

The model (a linear programme on the linearised DistFlow network of
:mod:`grid.lindistflow`, built once per feeder and order-slot capacity, see
:class:`ClearingModel`, and re-solved on a persistent HiGHS instance with each interval's
sizes, prices and injections):

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
below :data:`PENALTY_PRICED_FRAC` of the penalty), the limit is either broken (a residual
violation) or exactly at a limit nothing can relieve, and every nodal price of the
interval is NaN (``penalty_priced``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import highspy
import numpy as np
import pyomo.environ as pyo

from grid.distflow import Linearisation, Tree
from grid.feeders import Feeder
from grid.highs_direct import direct_model, make_solver
from grid.network import PENALTY_THERMAL, PENALTY_VOLTAGE, add_network
from grid.results import ConstrainedClearing, GridCheck
from market.orders import Side

#: Tie-break cost of curtailment [currency/kWh], so that free energy is not curtailed
#: needlessly when the feed-in price is zero.
CURTAILMENT_TIE_BREAK_PER_KWH = 1e-6
#: A limit whose slack has a reduced cost below this fraction of its penalty weight is
#: priced by the penalty: the interval's nodal prices are not reported (NaN).
PENALTY_PRICED_FRAC = 1e-3


#: The pools of order slots of every bus, in their order within the bus's block of slots:
#: inflexible sells, inflexible buys, flexible sells, flexible buys.
POOL_NAMES = ("sell", "buy", "sell_flexible", "buy_flexible")
#: Smallest pool size; pools grow by doubling (see :func:`reserve_order_slots`).
MIN_POOL_SLOTS = 4


class FeederModel(Protocol):
    """What the clearing needs of the feeder model (:class:`grid.lindistflow.FeederModel`,
    which calls it): its network, limits, direct-path switch and the clearing model it keeps."""

    feeder: Feeder
    tree: Tree
    lin: Linearisation
    v_lo_pu: float
    v_hi_pu: float
    thermal_margin_frac: float
    direct_updates: bool
    _clearing: ClearingModel | None

    def set_limits(self, m: pyo.ConcreteModel) -> None: ...

    def state(
        self, p_line_pu: np.ndarray, q_line_pu: np.ndarray, w_pu: np.ndarray, solved_with: str
    ) -> GridCheck: ...

    def _check_shape(self, *arrays: np.ndarray) -> None: ...


def _pool_size(need: int) -> int:
    """The smallest power of two >= ``need`` (at least :data:`MIN_POOL_SLOTS`)."""
    return max(MIN_POOL_SLOTS, 1 << max(need - 1, 0).bit_length())


class ClearingModel:
    """Pyomo clearing model of a feeder with fixed-size pools of order slots at every bus.

    Every bus has four pools of slots, one per kind of order (:data:`POOL_NAMES`):
    ``fixed_slots`` slots each for inflexible sells and buys, ``flexible_slots`` each for
    flexible sells and buys. The kind of a slot is thus part of the model's structure and
    every coefficient of the constraint matrix is a constant: an interval's orders change
    only variable bounds (order sizes, curtailable/deferrable power), objective costs
    (limit prices, tariffs) and constraint right-hand sides (injections, caps). An unused
    slot has size 0.

    The model is solved on a persistent HiGHS interface. With ``direct`` (the default, see
    :class:`grid.lindistflow.FeederModel` ``direct_updates``) the first solve goes through
    Pyomo, which builds the HiGHS model, and every later solve writes the changed bounds
    and costs straight into that HiGHS instance in a few bulk calls and reads the primal
    values and row duals back as arrays. Otherwise every solve sets the mutable ``Param``
    and calls the interface's ``solve``.
    """

    def __init__(self, fm: FeederModel, fixed_slots: int, flexible_slots: int) -> None:
        self.fixed_slots = int(fixed_slots)
        self.flexible_slots = int(flexible_slots)
        sf, sx = self.fixed_slots, self.flexible_slots
        tree = fm.tree
        n = tree.n_bus
        s = fm.feeder.s_base_kva
        self.n_bus = n
        self.s_base = s
        #: slots per bus, and first slot of each pool within the bus's block
        self.stride = 2 * sf + 2 * sx
        self.pool_offset = np.array([0, sf, 2 * sf, 2 * sf + sx])
        pool_size = [sf, sf, sx, sx]
        pool = np.tile(np.repeat(np.arange(4), pool_size), n)
        self.slot_bus = np.repeat(np.arange(n), self.stride)
        self.slot_sell = pool % 2 == 0
        self.slot_flexible = pool >= 2
        n_slot = len(self.slot_bus)
        self.n_slot = n_slot

        def pool_slots(b: int, p: int) -> range:
            start = b * self.stride + int(self.pool_offset[p])
            return range(start, start + pool_size[p])

        m = pyo.ConcreteModel(name=f"clearing {fm.feeder.name}")
        ks = range(n_slot)
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
        m.x = pyo.Var(ks, bounds=lambda m, k: (0.0, m.order_pu[k]))
        m.c = pyo.Var(buses, bounds=lambda m, b: (0.0, m.curt_pu[b]))
        m.d = pyo.Var(buses, bounds=lambda m, b: (0.0, m.defer_pu[b]))
        m.imp = pyo.Var(bounds=(0.0, None))
        m.exp = pyo.Var(bounds=(0.0, None))
        slack = tree.slack

        def dec_p(m: pyo.ConcreteModel, b: int) -> object:
            # flexible orders flow only as far as they are filled
            flexible = sum(m.x[k] for k in pool_slots(b, 2)) - sum(m.x[k] for k in pool_slots(b, 3))
            utility = (m.imp - m.exp) if b == slack else 0.0
            return -m.c[b] + m.d[b] + utility + flexible

        m.dec_p = pyo.Expression(buses, rule=dec_p)
        add_network(m, tree, fm.lin, (fm.v_lo_pu, fm.v_hi_pu), fm.thermal_margin_frac)
        fm.set_limits(m)
        # inflexible orders are physical positions (in p_inj); the fills of the bus's
        # sellers and its curtailment share what the bus can deliver, likewise for buyers
        m.sell_link = pyo.Constraint(
            buses,
            rule=lambda m, b: sum(m.x[k] for k in pool_slots(b, 0)) + m.c[b] <= m.sell_cap[b],
        )
        m.buy_link = pyo.Constraint(
            buses,
            rule=lambda m, b: sum(m.x[k] for k in pool_slots(b, 1)) + m.d[b] <= m.buy_cap[b],
        )
        sell_k = np.flatnonzero(self.slot_sell).tolist()
        buy_k = np.flatnonzero(~self.slot_sell).tolist()
        m.p2p = pyo.Constraint(
            expr=pyo.quicksum(m.x[k] for k in buy_k) - pyo.quicksum(m.x[k] for k in sell_k) == 0
        )
        # cost [currency/h] of the per-unit decisions; every coefficient is written out as
        # s_base * parameter (one multiplication per term, not one of a whole sum)
        cost = (
            (s * m.retail) * m.imp
            - (s * m.feed_in) * m.exp
            + pyo.quicksum((s * m.price[k]) * m.x[k] for k in sell_k)
            - pyo.quicksum((s * m.price[k]) * m.x[k] for k in buy_k)
            + pyo.quicksum((s * m.curt_cost) * c for c in m.c.values())
            + pyo.quicksum((s * m.defer_cost) * d for d in m.d.values())
        )
        m.obj = pyo.Objective(expr=cost + m.penalty, sense=pyo.minimize)
        self.m = m
        self.opt = make_solver()
        self.direct = bool(fm.direct_updates)
        self._highs: Any = None  # the HiGHS instance, once the direct path is set up
        self.x_vars = list(m.x.values())
        self.c_vars = list(m.c.values())
        self.d_vars = list(m.d.values())
        self.bal_cons = list(m.bal_p.values())
        # every variable whose value a solve returns, in the order of :class:`_Solution`
        self.value_vars = [
            *self.x_vars,
            *self.c_vars,
            *self.d_vars,
            m.imp,
            m.exp,
            *m.P.values(),
            *m.Q.values(),
            *m.w.values(),
            *m.s_hi.values(),
            *m.s_lo.values(),
            *m.s_line.values(),
        ]
        self.dual_cons = [*self.bal_cons, m.p2p]
        self.slack_vars = [*m.s_hi.values(), *m.s_lo.values(), *m.s_line.values()]
        #: penalty weight of each slack, in the order of ``slack_vars``
        self.slack_penalty = np.concatenate(
            [np.full(2 * n, PENALTY_VOLTAGE), np.full(tree.n_line, PENALTY_THERMAL)]
        )

    # ------------------------------------------------------------------ solving
    def solve(self, up: _Update) -> _Solution:
        """Solve for one interval's data, on the direct path when it is set up."""
        if self._highs is not None:
            return self._solve_direct(up)
        sol = self._solve_pyomo(up)
        if self.direct:
            self._init_direct(up)
        return sol

    def _solve_pyomo(self, up: _Update) -> _Solution:
        m = self.m
        for k, (o, pr) in enumerate(zip(up.order_pu.tolist(), up.price.tolist(), strict=True)):
            m.order_pu[k].set_value(o)
            m.price[k].set_value(pr)
        for b in range(self.n_bus):
            m.p_inj[b].set_value(float(up.p_inj_pu[b]))
            m.q_inj[b].set_value(float(up.q_inj_pu[b]))
            m.curt_pu[b].set_value(float(up.curt_pu[b]))
            m.defer_pu[b].set_value(float(up.defer_pu[b]))
            m.sell_cap[b].set_value(float(up.sell_cap_pu[b]))
            m.buy_cap[b].set_value(float(up.buy_cap_pu[b]))
        m.retail.set_value(up.retail)
        m.feed_in.set_value(up.feed_in)
        m.curt_cost.set_value(up.curt_cost)
        m.defer_cost.set_value(up.defer_cost)
        res = self.opt.solve(m)
        loader = res.solution_loader
        vals = loader.get_vars(self.value_vars)
        z = np.fromiter((vals[v] for v in self.value_vars), float, len(self.value_vars))
        duals = loader.get_duals(self.dual_cons)
        y = np.fromiter((duals[c] for c in self.dual_cons), float, len(self.dual_cons))
        rcs = loader.get_reduced_costs(self.slack_vars)
        rc = np.fromiter((rcs[v] for v in self.slack_vars), float, len(self.slack_vars))
        return self._unpack(z, y, rc)

    def _init_direct(self, up: _Update) -> None:
        """Map the columns and rows of the HiGHS model that Pyomo built (after a solve)."""
        m = self.m
        direct = direct_model(self.opt)
        if direct is None:  # the stock path (grid.highs_direct)
            self.direct = False
            return
        highs = direct.highs
        highs.setOptionValue("output_flag", False)
        # Pyomo's solve subscribed Python callbacks (keyboard interrupt) that HiGHS would
        # call on every simplex iteration; the direct path runs without them
        if hasattr(highs, "disableCallbacks"):
            highs.disableCallbacks()

        cols, rows = direct.cols, direct.rows
        n = self.n_bus
        self._x_cols = cols(self.x_vars)
        self._bus_cols = np.concatenate([cols(self.c_vars), cols(self.d_vars)])
        self._io_cols = cols([m.imp, m.exp])
        self._value_cols = cols(self.value_vars)
        self._slack_cols = cols(self.slack_vars)
        bal = rows([*m.bal_p.values(), *m.bal_q.values()])
        link = rows([*m.sell_link.values(), *m.buy_link.values()])
        self._rows = np.concatenate([bal, link])
        self._dual_rows = rows(self.dual_cons)
        lp = highs.getLp()
        lower = np.asarray(lp.row_lower_)
        upper = np.asarray(lp.row_upper_)
        # bus balances: row bound = -injection - constant part of the row body
        inj = np.concatenate([up.p_inj_pu, up.q_inj_pu])
        self._bal_base = lower[bal] + inj
        # links: "... <= cap" with no constant part
        caps = np.concatenate([up.sell_cap_pu, up.buy_cap_pu])
        self._link_base = upper[link] - caps
        self._link_lower = lower[link]
        self._cost_sign = np.where(self.slot_sell, 1.0, -1.0) * self.s_base
        # slots whose size or price is not 0 in the HiGHS model
        self._live = np.zeros(self.n_slot, bool)
        self._live[up.used] = True
        assert len(self._bal_base) == 2 * n
        self._highs = highs

    def _solve_direct(self, up: _Update) -> _Solution:
        highs, s, n = self._highs, self.s_base, self.n_bus
        # only the slots used now or in the previous interval change (unused: size 0,
        # price 0, as on the Pyomo path)
        live = self._live
        live[up.used] = True
        k = np.flatnonzero(live)
        live[:] = False
        live[up.used] = True
        cols = np.concatenate([self._x_cols[k], self._bus_cols])
        upper = np.concatenate([up.order_pu[k], up.curt_pu, up.defer_pu])
        highs.changeColsBounds(len(cols), cols, np.zeros(len(cols)), upper)
        cost = np.concatenate(
            [
                self._cost_sign[k] * up.price[k],
                np.full(n, s * up.curt_cost),
                np.full(n, s * up.defer_cost),
                [s * up.retail, -s * up.feed_in],
            ]
        )
        cost_cols = np.concatenate([cols, self._io_cols])
        highs.changeColsCost(len(cost), cost_cols, cost)
        bal = self._bal_base - np.concatenate([up.p_inj_pu, up.q_inj_pu])
        link = self._link_base + np.concatenate([up.sell_cap_pu, up.buy_cap_pu])
        highs.changeRowsBounds(
            len(self._rows),
            self._rows,
            np.concatenate([bal, self._link_lower]),
            np.concatenate([bal, link]),
        )
        highs.run()
        status = highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            # the LP always has an optimum (elastic limits): retry once without the basis
            highs.clearSolver()
            highs.run()
            status = highs.getModelStatus()
            if status != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"HiGHS: {highs.modelStatusToString(status)}")
        sol = highs.getSolution()
        z = np.asarray(sol.col_value)[self._value_cols]
        y = np.asarray(sol.row_dual)[self._dual_rows]
        rc = np.asarray(sol.col_dual)[self._slack_cols]
        return self._unpack(z, y, rc)

    def _unpack(self, z: np.ndarray, y: np.ndarray, rc: np.ndarray) -> _Solution:
        n, nl, ns = self.n_bus, len(self.m.P), self.n_slot
        cuts = np.cumsum([ns, n, n, 1, 1, nl, nl, n, 2 * n + nl])
        x, c, d, imp, exp, p, q, w, slacks, _ = np.split(z, cuts)
        return _Solution(
            x_pu=x,
            c_pu=c,
            d_pu=d,
            import_pu=float(imp[0] - exp[0]),
            p_line_pu=p,
            q_line_pu=q,
            w_pu=w,
            slacks=slacks,
            bal_dual=y[:n],
            p2p_dual=float(y[n]),
            penalty_priced=bool((rc < PENALTY_PRICED_FRAC * self.slack_penalty).any()),
        )


@dataclass(frozen=True)
class _Update:
    """One interval's data of the clearing model, per unit (slots laid out as the model's)."""

    used: np.ndarray  # slots of the orders
    order_pu: np.ndarray
    price: np.ndarray
    p_inj_pu: np.ndarray
    q_inj_pu: np.ndarray
    curt_pu: np.ndarray
    defer_pu: np.ndarray
    sell_cap_pu: np.ndarray
    buy_cap_pu: np.ndarray
    retail: float
    feed_in: float
    curt_cost: float
    defer_cost: float


@dataclass(frozen=True)
class _Solution:
    """What a solve of the clearing model returns (per unit, raw duals)."""

    x_pu: np.ndarray
    c_pu: np.ndarray
    d_pu: np.ndarray
    import_pu: float
    p_line_pu: np.ndarray
    q_line_pu: np.ndarray
    w_pu: np.ndarray
    slacks: np.ndarray
    bal_dual: np.ndarray
    p2p_dual: float
    penalty_priced: bool  # some limit's shadow price reached its penalty weight


def _pools(
    bus: np.ndarray, sell: np.ndarray, flexible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pool (index into :data:`POOL_NAMES`) of every order and its rank within its bus's
    pool, in the order of the book."""
    pool = (~sell).astype(int) + 2 * flexible.astype(int)
    key = bus * 4 + pool
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key, side="left")
    rank = np.empty(len(bus), int)
    rank[order] = np.arange(len(bus)) - first
    return pool, rank


def reserve_order_slots(fm: FeederModel, fixed_slots: int, flexible_slots: int = 0) -> None:
    """Size the clearing model of ``fm`` for books with up to ``fixed_slots`` inflexible and
    ``flexible_slots`` flexible orders of one side at one bus.

    :func:`clear_constrained` grows the pools by itself (doubling, rebuilding the model);
    reserving them up front avoids the rebuilds and makes the model's size independent of
    the order in which books arrive. Pools only ever grow.
    """
    cm: ClearingModel | None = fm._clearing
    sf, sx = _pool_size(int(fixed_slots)), _pool_size(int(flexible_slots))
    if cm is not None:
        if cm.fixed_slots >= sf and cm.flexible_slots >= sx:
            return
        sf, sx = max(sf, cm.fixed_slots), max(sx, cm.flexible_slots)
    fm._clearing = ClearingModel(fm, sf, sx)


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

    # map orders to slots: pool (side, flexible) at the order's bus, rank within the pool;
    # grow the pools (rebuilding the model) if the book does not fit
    pool, rank = _pools(bus, sell, flexible)
    need_fixed = int(rank[~flexible].max()) + 1 if (~flexible).any() else 0
    need_flex = int(rank[flexible].max()) + 1 if flexible.any() else 0
    cm: ClearingModel | None = fm._clearing
    if cm is None or cm.fixed_slots < need_fixed or cm.flexible_slots < need_flex:
        reserve_order_slots(fm, need_fixed, need_flex)
        cm = fm._clearing
        assert cm is not None
    slot = bus * cm.stride + cm.pool_offset[pool] + rank
    order_pu = np.zeros(cm.n_slot)
    slot_price = np.zeros(cm.n_slot)
    order_pu[slot] = e_kw / s if p2p else 0.0
    slot_price[slot] = price
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
        _Update(
            used=slot,
            order_pu=order_pu,
            price=slot_price,
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
    fill_kwh = sol.x_pu[slot] * s * h
    fill_kwh = np.clip(fill_kwh, 0.0, e_kw * h)
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
