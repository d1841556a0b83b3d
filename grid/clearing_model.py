"""The Pyomo clearing model of a feeder: fixed-size pools of order slots at every bus.

:class:`ClearingModel` is built once per feeder and pool size (:func:`reserve_order_slots`)
and re-solved for every interval by :func:`grid.clearing.clear_constrained`, which
describes the programme; this module holds its structure and its solves (through Pyomo's
persistent HiGHS interface, or on the direct path of :mod:`grid.highs_direct`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from grid.distflow import Linearisation, Tree
from grid.feeders import Feeder
from grid.highs_direct import direct_model, make_solver
from grid.network import PENALTY_THERMAL, PENALTY_VOLTAGE, add_network
from grid.results import GridCheck

#: A limit whose slack has a reduced cost below this fraction of its penalty weight is
#: priced by the penalty: the interval's nodal prices are not reported (NaN).
PENALTY_PRICED_FRAC = 1e-3


#: The pools of order slots of every bus, in their order within the bus's range of slots:
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

    def set_limits(self, m: Any) -> None: ...  # m: a pyomo ConcreteModel

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
        import pyomo.core as pyo  # the first clearing imports Pyomo (see grid.lindistflow)

        self.fixed_slots = int(fixed_slots)
        self.flexible_slots = int(flexible_slots)
        sf, sx = self.fixed_slots, self.flexible_slots
        tree = fm.tree
        n = tree.n_bus
        s = fm.feeder.s_base_kva
        self.n_bus = n
        self.s_base = s
        #: slots per bus, and first slot of each pool within the bus's range
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
        # every variable whose value a solve returns, in the order of :class:`SlotSolution`
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
    def solve(self, up: SlotUpdate) -> SlotSolution:
        """Solve for one interval's data, on the direct path when it is set up."""
        if self._highs is not None:
            return self._solve_direct(up)
        sol = self._solve_pyomo(up)
        if self.direct:
            self._init_direct(up)
        return sol

    def _solve_pyomo(self, up: SlotUpdate) -> SlotSolution:
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

    def _init_direct(self, up: SlotUpdate) -> None:
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

    def _solve_direct(self, up: SlotUpdate) -> SlotSolution:
        import highspy

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

    def _unpack(self, z: np.ndarray, y: np.ndarray, rc: np.ndarray) -> SlotSolution:
        n, nl, ns = self.n_bus, len(self.m.P), self.n_slot
        cuts = np.cumsum([ns, n, n, 1, 1, nl, nl, n, 2 * n + nl])
        x, c, d, imp, exp, p, q, w, slacks, _ = np.split(z, cuts)
        return SlotSolution(
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
class SlotUpdate:
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
class SlotSolution:
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


def pools_of(
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
