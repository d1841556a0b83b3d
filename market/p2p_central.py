"""The bilateral P2P market solved centrally: one LP with HiGHS (the proof of the ADMM).

The same problem as :mod:`market.p2p` (the same pairs, costs and order limits)::

    max Σ_pairs (π_b − π_s − c_bs) t_bs
    s.t. Σ_s t_bs ≤ q_b  (every buy order),  Σ_b t_bs ≤ q_s  (every sell order),  t ≥ 0

built column-wise (two nonzeros per pair) and solved by HiGHS through ``highspy``.
Every order constraint's dual is the value of one more kWh to that order, so a traded
pair's price is bracketed by ``π_s + μ_s`` and ``π_b − c_bs − μ_b``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import ArrayLike

from market.p2p_pairs import P2PRule, Pairs, order_pairs

__all__ = ["CentralSolution", "solve_central", "solve_central_pairs"]


@dataclass(frozen=True, slots=True)
class CentralSolution:
    """The LP optimum: ``trade_kwh`` per pair of ``pairs``, the welfare with and without
    the differentiation costs [currency], the buy and sell orders' duals
    [currency/kWh] and HiGHS's solve time [s]."""

    pairs: Pairs
    trade_kwh: np.ndarray
    welfare: float
    """``Σ (π_b − π_s − c) t``: the objective, net of the preferences."""
    welfare_at_limits: float
    """``Σ (π_b − π_s) t``: comparable with the auctions' welfare."""
    buy_dual: np.ndarray
    sell_dual: np.ndarray
    solve_s: float

    @property
    def volume_kwh(self) -> float:
        return float(self.trade_kwh.sum())


@functools.cache
def _highs() -> highspy.Highs:
    """One silent HiGHS instance per process. Its C++ constructor writes a banner to
    file descriptor 1 whatever the options, so the descriptor points at the null device
    while it runs (as Pyomo's ``capture_output(capture_fd=True)`` does around HiGHS)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def solve_central_pairs(
    bq: np.ndarray, bp: np.ndarray, sq: np.ndarray, sp: np.ndarray, pairs: Pairs
) -> CentralSolution:
    """Solve the LP of the module docstring on the given pairs.

    Raises
    ------
    RuntimeError
        HiGHS does not report an optimum (it always has one: t = 0 is feasible and the
        objective is bounded by the order limits).
    """
    n_buy, n_sell, n = bq.shape[0], sq.shape[0], pairs.n
    gain = bp[pairs.buy] - sp[pairs.sell] - pairs.cost_per_kwh
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = n_buy + n_sell
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = gain
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.full(n, highspy.kHighsInf)
    lp.row_lower_ = np.full(n_buy + n_sell, -highspy.kHighsInf)
    lp.row_upper_ = np.concatenate((bq, sq))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * n + 1, 2, dtype=np.int32)
    index = np.empty(2 * n, dtype=np.int32)
    index[0::2] = pairs.buy
    index[1::2] = n_buy + pairs.sell
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = np.ones(2 * n)
    h = _highs()
    h.passModel(lp)
    start = time.perf_counter()
    h.run()
    solve_s = time.perf_counter() - start
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS: {h.modelStatusToString(h.getModelStatus())}")
    sol = h.getSolution()
    t = np.maximum(np.asarray(sol.col_value, dtype=np.float64), 0.0)
    dual = np.abs(np.asarray(sol.row_dual, dtype=np.float64))
    return CentralSolution(
        pairs=pairs,
        trade_kwh=t,
        welfare=float(gain @ t),
        welfare_at_limits=float((bp[pairs.buy] - sp[pairs.sell]) @ t),
        buy_dual=dual[:n_buy],
        sell_dual=dual[n_buy:],
        solve_s=solve_s,
    )


def solve_central(
    buy_kwh: ArrayLike,
    buy_price_per_kwh: ArrayLike,
    sell_kwh: ArrayLike,
    sell_price_per_kwh: ArrayLike,
    *,
    buy_owner: np.ndarray | None = None,
    sell_owner: np.ndarray | None = None,
    rule: P2PRule | None = None,
) -> CentralSolution:
    """The central optimum of the book under ``rule``'s partners and costs."""
    rule = rule or P2PRule()
    bq = np.asarray(buy_kwh, dtype=np.float64).ravel()
    bp = np.asarray(buy_price_per_kwh, dtype=np.float64).ravel()
    sq = np.asarray(sell_kwh, dtype=np.float64).ravel()
    sp = np.asarray(sell_price_per_kwh, dtype=np.float64).ravel()
    pairs = order_pairs(bq.shape[0], sq.shape[0], buy_owner, sell_owner, rule)
    return solve_central_pairs(bq, bp, sq, sp, pairs)
