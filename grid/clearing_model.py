"""The Pyomo clearing model of a feeder: fixed-size pools of order slots at every bus.

:class:`ClearingModel` is built once per feeder and pool size (:func:`reserve_order_slots`)
and re-solved for every interval by :func:`grid.clearing.clear_constrained`, which
describes the programme; this module holds its structure and its solves (through Pyomo's
persistent HiGHS interface, or on the direct path of :mod:`grid.highs_direct`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from grid.distflow import Linearisation, Tree
from grid.feeders import Feeder
from grid.highs_direct import direct_model, make_solver
from grid.network import PENALTY_THERMAL, PENALTY_VOLTAGE, add_network
from grid.results import GridCheck

if TYPE_CHECKING:
    from grid.clearing_direct import DirectClearing

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

    The model is solved on a persistent HiGHS interface. With ``direct`` (default: the
    feeder model's ``direct_updates``, see :class:`grid.lindistflow.FeederModel`),
    :meth:`start` solves an empty book through Pyomo, which builds the HiGHS model, and
    every solve after it runs in that HiGHS instance
    (:class:`grid.clearing_direct.DirectClearing`): the orders get columns of their own,
    copied from the pools' first slots, so the pools need only their smallest size.
    Otherwise every solve sets the mutable ``Param`` and calls the interface's ``solve``,
    and the pools must hold the book (:func:`reserve_order_slots`).
    """

    def __init__(
        self, fm: FeederModel, fixed_slots: int, flexible_slots: int, direct: bool | None = None
    ) -> None:
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
        self.direct = bool(fm.direct_updates if direct is None else direct)
        self._direct: DirectClearing | None = None  # the direct path, once set up
        self._highs: Any = None  # its HiGHS instance
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
    @property
    def on_direct(self) -> bool:
        """Whether the solves run on the direct path (set up by :meth:`start`)."""
        return self._direct is not None

    def fits(self, fixed: int, flexible: int) -> bool:
        """Whether books with up to ``fixed`` inflexible and ``flexible`` flexible orders of
        one kind at one bus fit (always on the direct path, which appends columns)."""
        return self.on_direct or (fixed <= self.fixed_slots and flexible <= self.flexible_slots)

    def start(self) -> None:
        """Solve an empty book through Pyomo, which builds the HiGHS model, and set up the
        direct path on it if ``direct`` (:class:`grid.clearing_direct.DirectClearing`)."""
        n, empty = self.n_bus, np.zeros(0)
        zero = np.zeros(n)
        none = empty.astype(int)
        zeros = (zero, zero, zero, zero, zero, zero)
        self._solve_pyomo(SlotUpdate(none, none, empty, empty, *zeros, 0.0, 0.0, 0.0, 0.0))
        if not self.direct:
            return
        direct = direct_model(self.opt)
        if direct is None:  # the stock path (grid.highs_direct)
            self.direct = False
            return
        from grid.clearing_direct import DirectClearing

        self._direct = DirectClearing(self, direct)
        self._highs = direct.highs

    def solve(self, up: SlotUpdate) -> SlotSolution:
        """Solve for one interval's data, on the direct path when it is set up."""
        if self._direct is not None:
            return self._direct.solve(up)
        return self._solve_pyomo(up)

    def _slots(self, up: SlotUpdate) -> np.ndarray:
        """Slot of each order of ``up`` in the Pyomo model's pools."""
        pool = up.key % 4
        size = np.where(pool < 2, self.fixed_slots, self.flexible_slots)
        if (up.rank >= size).any():
            raise ValueError(
                f"the book needs more order slots than the clearing model's pools hold "
                f"({self.fixed_slots} inflexible, {self.flexible_slots} flexible per bus and "
                "side): size them with reserve_order_slots"
            )
        return (up.key // 4) * self.stride + self.pool_offset[pool] + up.rank

    def _solve_pyomo(self, up: SlotUpdate) -> SlotSolution:
        m = self.m
        slot = self._slots(up)
        order_pu = np.zeros(self.n_slot)
        price = np.zeros(self.n_slot)
        order_pu[slot] = up.order_pu
        price[slot] = up.price
        for k, (o, pr) in enumerate(zip(order_pu.tolist(), price.tolist(), strict=True)):
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
        return self.unpack(z[slot], z, y, rc)

    def unpack(self, x: np.ndarray, z: np.ndarray, y: np.ndarray, rc: np.ndarray) -> SlotSolution:
        """The solution from the orders' fills ``x``, the values ``z`` of ``value_vars``,
        the duals ``y`` of ``dual_cons`` and the reduced costs ``rc`` of ``slack_vars``."""
        n, nl, ns = self.n_bus, len(self.m.P), self.n_slot
        cuts = np.cumsum([ns, n, n, 1, 1, nl, nl, n, 2 * n + nl])
        _, c, d, imp, exp, p, q, w, slacks, _ = np.split(z, cuts)
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

    key: np.ndarray  # per order: bus * 4 + pool (:func:`pools_of`)
    rank: np.ndarray  # per order: rank within its bus's pool
    order_pu: np.ndarray  # per order
    price: np.ndarray  # per order
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

    x_pu: np.ndarray  # per order of the update
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

    On the direct path (``fm.direct_updates`` and :func:`grid.highs_direct.direct_model`
    available) the model is built once with the smallest pools, whatever the sizes: the
    orders get columns of their own (:class:`grid.clearing_direct.DirectClearing`). On the
    stock path :func:`clear_constrained` grows the pools by itself (doubling, rebuilding
    the model); reserving them up front avoids the rebuilds and makes the model's size
    independent of the order in which books arrive. Pools only ever grow.
    """
    cm: ClearingModel | None = fm._clearing
    if cm is not None and cm.fits(int(fixed_slots), int(flexible_slots)):
        return
    if cm is None and fm.direct_updates:
        cm = ClearingModel(fm, MIN_POOL_SLOTS, MIN_POOL_SLOTS)
        cm.start()
        if cm.on_direct:
            fm._clearing = cm
            return
    sf, sx = _pool_size(int(fixed_slots)), _pool_size(int(flexible_slots))
    if cm is not None:
        sf, sx = max(sf, cm.fixed_slots), max(sx, cm.flexible_slots)
    fm._clearing = ClearingModel(fm, sf, sx, direct=False)
