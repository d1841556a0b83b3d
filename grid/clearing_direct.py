"""The direct HiGHS path of the clearing model: one column per order of the book.

:class:`DirectClearing` takes over the HiGHS instance that Pyomo built for a
:class:`grid.clearing_model.ClearingModel` (the one place that reaches behind Pyomo is
:mod:`grid.highs_direct`) and solves every interval in it without Pyomo:

- **Order columns, sized to the books.** The Pyomo model holds only the smallest pools of
  order slots (:data:`grid.clearing_model.MIN_POOL_SLOTS`); their first slot per bus and
  pool is the *template* of an order of that kind at that bus. An order's column is a copy
  of its template's entries (the bus's link or balance row and the P2P balance row, with
  Pyomo's own coefficients), appended to the HiGHS model the first time a book needs it.
  Bus ``b``'s pool ``p`` thus holds as many columns as the most orders of that kind the bus
  has had in one book: the LP grows with the households, not with the number of buses
  times the fullest bus's pool, and the model is never rebuilt.
- **Warm start.** Between intervals only bounds, costs and right-hand sides change (and
  columns are appended, non-basic at zero), so HiGHS starts every solve from the previous
  interval's optimal basis. The ``r``-th cheapest (or dearest) order of a bus and side keeps
  the column of rank ``r``, so the basis of last interval's book is the nearest start for
  this one. A column not used this interval has size and cost 0, as an unused slot.

The columns of one (bus, pool) have identical entries; the LP treats two orders of one
(bus, pool) at the same price as one (:func:`grid.clearing.aggregate_orders` merges them
before they get here), so the solve gives the same optimum as the Pyomo model with its
slots (``tests/grid/test_clearing.py``, ``tests/grid/test_highs_direct.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from grid.highs_direct import DirectModel

if TYPE_CHECKING:
    from grid.clearing_model import ClearingModel, SlotSolution, SlotUpdate

#: Kinds of order per bus (the pools of :data:`grid.clearing_model.POOL_NAMES`).
N_POOLS = 4


class DirectClearing:
    """The clearing model's HiGHS instance with its order columns (see the module)."""

    def __init__(self, cm: ClearingModel, direct: DirectModel) -> None:
        m = cm.m
        highs = direct.highs
        highs.setOptionValue("output_flag", False)
        # Pyomo's solve subscribed Python callbacks (keyboard interrupt) that HiGHS would
        # call on every simplex iteration; the direct path runs without them
        if hasattr(highs, "disableCallbacks"):
            highs.disableCallbacks()
        cols, rows = direct.cols, direct.rows
        n = cm.n_bus
        self.cm = cm
        self.highs = highs
        x_cols = cols(cm.x_vars)
        self._bus_cols = np.concatenate([cols(cm.c_vars), cols(cm.d_vars)])
        self._io_cols = cols([m.imp, m.exp])
        self._value_cols = cols(cm.value_vars)
        self._slack_cols = cols(cm.slack_vars)
        bal = rows([*m.bal_p.values(), *m.bal_q.values()])
        link = rows([*m.sell_link.values(), *m.buy_link.values()])
        self._rows = np.concatenate([bal, link])
        self._dual_rows = rows(cm.dual_cons)
        lp = highs.getLp()
        # built with zero injections and caps: the row bounds are the constant parts
        self._bal_base = np.asarray(lp.row_lower_)[bal]
        self._link_base = np.asarray(lp.row_upper_)[link]
        self._link_lower = np.asarray(lp.row_lower_)[link]
        # the template of (bus b, pool p), key b * N_POOLS + p: the pool's first slot
        keys = np.arange(N_POOLS * n)
        template = x_cols[(keys // N_POOLS) * cm.stride + cm.pool_offset[keys % N_POOLS]]
        highs.ensureColwise()  # Pyomo adds the constraints row by row
        a = highs.getLp().a_matrix_
        a_start, a_index, a_value = (np.asarray(v) for v in (a.start_, a.index_, a.value_))
        nnz = a_start[template + 1] - a_start[template]
        src = (
            np.repeat(a_start[template], nnz)
            + np.arange(nnz.sum())
            - np.repeat(np.cumsum(nnz) - nnz, nnz)
        )
        self._t_start = np.concatenate([[0], np.cumsum(nnz)]).astype(np.int64)
        self._t_index = a_index[src].astype(np.int32)
        self._t_value = a_value[src].astype(float)
        # pools 0 and 2 sell (cost +price), 1 and 3 buy (cost -price), per unit
        self._key_sign = np.where(keys % 2 == 0, 1.0, -1.0) * cm.s_base
        #: HiGHS column of rank r of key k (-1: none yet), and how many each key has
        self._table = np.full((len(keys), 0), -1, np.int32)
        self._count = np.zeros(len(keys), np.int64)
        self._live = np.zeros(0, np.int32)  # order columns with a size or cost now

    @property
    def n_order_cols(self) -> int:
        """Order columns appended so far."""
        return int(self._count.sum())

    def _columns(self, key: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """HiGHS column of each order (key, rank), appending the columns that are missing."""
        n_keys = len(self._count)
        need = np.zeros(n_keys, np.int64)
        if len(key):
            np.maximum.at(need, key, rank + 1)
        short = np.flatnonzero(need > self._count)
        if len(short):
            self._append(short, need[short])
        return self._table[key, rank]

    def _append(self, keys: np.ndarray, need: np.ndarray) -> None:
        """Append columns to ``keys`` until each has ``need``, as copies of its template."""
        highs = self.highs
        first = int(highs.getNumCol())
        extra = need - self._count[keys]
        owner = np.repeat(keys, extra)  # key of every new column
        nnz = self._t_start[owner + 1] - self._t_start[owner]
        start = np.concatenate([[0], np.cumsum(nnz)[:-1]]).astype(np.int32)
        # entry j of new column c is entry j of its template
        within = np.arange(int(nnz.sum())) - np.repeat(start, nnz)
        src = np.repeat(self._t_start[owner], nnz) + within
        n_new = len(owner)
        zeros = np.zeros(n_new)
        highs.addCols(
            n_new, zeros, zeros, zeros, len(src), start, self._t_index[src], self._t_value[src]
        )
        new_cols = np.arange(first, first + n_new, dtype=np.int32)
        width = int(need.max())
        if width > self._table.shape[1]:
            grown = np.full((len(self._count), width), -1, np.int32)
            grown[:, : self._table.shape[1]] = self._table
            self._table = grown
        rank = np.arange(n_new) - np.repeat(np.cumsum(extra) - extra, extra)
        self._table[owner, self._count[owner] + rank] = new_cols
        self._count[keys] = need

    def solve(self, up: SlotUpdate) -> SlotSolution:
        import highspy

        highs, s, n = self.highs, self.cm.s_base, self.cm.n_bus
        cols = self._columns(up.key, up.rank)
        # columns used in the previous interval but not now: size 0, cost 0
        stale = np.setdiff1d(self._live, cols, assume_unique=True)
        self._live = cols
        none = np.zeros(len(stale))
        all_cols = np.concatenate([cols, stale, self._bus_cols])
        upper = np.concatenate([up.order_pu, none, up.curt_pu, up.defer_pu])
        highs.changeColsBounds(len(all_cols), all_cols, np.zeros(len(all_cols)), upper)
        cost = np.concatenate(
            [
                self._key_sign[up.key] * up.price,
                none,
                np.full(n, s * up.curt_cost),
                np.full(n, s * up.defer_cost),
                [s * up.retail, -s * up.feed_in],
            ]
        )
        cost_cols = np.concatenate([all_cols, self._io_cols])
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
        sol: Any = highs.getSolution()
        col_value = np.asarray(sol.col_value)
        z = col_value[self._value_cols]
        y = np.asarray(sol.row_dual)[self._dual_rows]
        rc = np.asarray(sol.col_dual)[self._slack_cols]
        return self.cm.unpack(col_value[cols], z, y, rc)
