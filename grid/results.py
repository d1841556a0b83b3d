"""Frozen result types returned by :class:`grid.lindistflow.FeederModel`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class GridCheck:
    """State of the feeder for one interval's injections (linearised DistFlow).

    Attributes
    ----------
    v_pu : ndarray, shape (n_bus,)
        Voltage magnitude [p.u.].
    line_p_kw, line_q_kvar : ndarray, shape (n_line,)
        Sending-end branch flows [kW, kvar], positive away from the slack.
    loading_frac : ndarray, shape (n_line,)
        Current over rated current, ``sqrt(P^2+Q^2) / (V_from s_max)`` [-] (the circle,
        not the polygon; :func:`grid.distflow.loading_frac`).
    losses_kw : float
        ``sum r (P^2+Q^2) / V_from^2`` over the branches plus the transformers' no-load
        (iron) losses ``sum g w`` [kW].
    import_kw : float
        Power drawn from the upstream grid at the slack [kW] (negative = export).
    v_min_pu, v_max_pu, max_line_loading_frac : float
    bus_violation : ndarray of bool, shape (n_bus,)
        Voltage outside ``[v_min_pu + v_margin_pu, v_max_pu - v_margin_pu]``.
    line_violation : ndarray of bool, shape (n_line,)
        Loading above ``1 - thermal_margin_frac`` (transformer included).
    violations : int
        ``bus_violation.sum() + line_violation.sum()``.
    solved_with : {"screen", "pyomo"}
        ``"screen"``: far inside the limits, taken from the precomputed linear map;
        ``"pyomo"``: solved by the persistent Pyomo/HiGHS model.
    """

    v_pu: np.ndarray
    line_p_kw: np.ndarray
    line_q_kvar: np.ndarray
    loading_frac: np.ndarray
    losses_kw: float
    import_kw: float
    v_min_pu: float
    v_max_pu: float
    max_line_loading_frac: float
    bus_violation: np.ndarray
    line_violation: np.ndarray
    violations: int
    solved_with: Literal["screen", "pyomo"]


@dataclass(frozen=True)
class ConstrainedClearing:
    """Result of the network-constrained clearing of one interval.

    Attributes
    ----------
    order_filled_kwh : ndarray, shape (n_order,)
        Energy of each order matched peer to peer [kWh].
    curtailed_kw : ndarray, shape (n_bus,)
        PV curtailed at each bus [kW].
    deferred_kw : ndarray, shape (n_bus,)
        Deferrable load switched off at each bus [kW].
    p_kw, q_kvar : ndarray, shape (n_bus,)
        Resulting net injections [kW, kvar] (fixed + orders - curtailment + deferral).
    import_kw : float
        Power bought from the utility at the slack [kW] (negative = export).
    nodal_price_per_kwh : ndarray, shape (n_bus,)
        Marginal value of one more kWh injected at each bus [currency/kWh], from the
        duals of the active-power bus balances (see :mod:`grid.clearing`); all NaN when
        ``penalty_priced``.
    p2p_price_per_kwh : float
        Dual of the peer-to-peer energy balance (the marginal P2P price) [currency/kWh].
    welfare : float
        Gains from P2P trade at the limit prices plus the utility settlement at the slack,
        minus curtailment/deferral costs, for the interval [currency].
    residual_violations : int
        Limits that even full curtailment and deferral could not restore (0 normally).
    penalty_priced : bool
        Some limit's shadow price reached the penalty weight of its elastic slack (it is
        broken, or exactly at a limit nothing can relieve): the duals price the penalty,
        not energy, and ``nodal_price_per_kwh`` is NaN.
    grid : GridCheck
        Check of the resulting injections.
    """

    order_filled_kwh: np.ndarray
    curtailed_kw: np.ndarray
    deferred_kw: np.ndarray
    p_kw: np.ndarray
    q_kvar: np.ndarray
    import_kw: float
    nodal_price_per_kwh: np.ndarray
    p2p_price_per_kwh: float
    welfare: float
    residual_violations: int
    penalty_priced: bool
    grid: GridCheck
