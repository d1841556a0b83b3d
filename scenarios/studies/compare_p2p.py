"""What ``p2pgrid compare`` reports about bilateral trading, for every mechanism's run.

=================================  =====================================================
``price_dispersion_per_kwh``       the spread of prices across the pairs: per interval
                                   the volume-weighted standard deviation of the trades'
                                   prices, averaged over the intervals weighted by their
                                   volume (0 for a uniform price) [currency/kWh]
``messages_per_interval``          what the decentralised protocol would send: two
                                   proposals per pair and ADMM iteration
                                   (``admm_messages``), mean over the intervals; null
                                   for the central mechanisms
``admm_iterations_mean``, ``_max``  ADMM iterations per interval
``admm_converged_frac``            share of intervals within both tolerances
``differentiation_cost``           the trades' product-differentiation costs [currency]
``central_welfare``                Σ of the central LP's optimum of the same pairs, net
                                   of those costs (HiGHS, :mod:`market.p2p_central`)
``central_efficiency``             ``(welfare − differentiation_cost) / central_welfare``
                                   (the ADMM's welfare over the central optimum: 1
                                   within the tolerances of ``[market.p2p]``)
``preferred_partner_households``   households that traded at least once with one of
                                   their ``[market.p2p] neighbours`` (their preferred
                                   partners; under every mechanism, so that they
                                   compare); null without the feeder
``dso_revenue``                    with ``[market.p2p] dso``: the DSO's network charges
                                   over the run (Σ ``dso_revenue``) [currency]; null
                                   without the DSO (as the next three)
``dso_outer_iterations_mean``,     negotiations per interval, the DSO's re-negotiations
``_max``                           included (``dso_outer_iterations``)
``dso_fallback_intervals``         intervals the charges left broken, re-cleared by the
                                   grid stage (``dso_fallback``)
=================================  =====================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.config.schema_live import household_ids
from scenarios.engine.p2p import scenario_neighbours
from scenarios.results.files import INTERVALS_FILE, TRADES_FILE

P2P_COLUMNS: tuple[str, ...] = (
    "price_dispersion_per_kwh",
    "messages_per_interval",
    "admm_iterations_mean",
    "admm_iterations_max",
    "admm_converged_frac",
    "differentiation_cost",
    "central_welfare",
    "central_efficiency",
    "preferred_partner_households",
    "dso_revenue",
    "dso_outer_iterations_mean",
    "dso_outer_iterations_max",
    "dso_fallback_intervals",
)


def price_dispersion(trades: pd.DataFrame) -> float:
    """The volume-weighted mean over intervals of the volume-weighted standard deviation
    of the trade prices [currency/kWh]; NaN without trades."""
    if trades.empty:
        return float("nan")
    q = trades["energy_kwh"].to_numpy(np.float64)
    p = trades["price_per_kwh"].to_numpy(np.float64)
    t = pd.factorize(trades["t"])[0]
    vol = np.bincount(t, q)
    mean = np.bincount(t, q * p) / vol
    var = np.bincount(t, q * (p - mean[t]) ** 2) / vol
    return float(np.sqrt(np.maximum(var, 0.0)) @ vol / vol.sum())


def p2p_columns(scenario: Scenario, run_dir: Path) -> dict[str, float]:
    """The columns of the module docstring for the run in ``run_dir``."""
    iv = pd.read_parquet(run_dir / INTERVALS_FILE)
    trades = pd.read_parquet(
        run_dir / TRADES_FILE, columns=["t", "buyer_id", "seller_id", "energy_kwh", "price_per_kwh"]
    )
    nan = float("nan")
    row: dict[str, float] = dict.fromkeys(P2P_COLUMNS, nan)
    row["price_dispersion_per_kwh"] = price_dispersion(trades)
    if "admm_iterations" in iv:
        iterations = iv["admm_iterations"].to_numpy(np.float64)
        row["messages_per_interval"] = float(iv["admm_messages"].mean())
        row["admm_iterations_mean"] = float(iterations.mean())
        row["admm_iterations_max"] = float(iterations.max())
        row["admm_converged_frac"] = float(iv["admm_converged"].astype(float).mean())
        row["differentiation_cost"] = float(iv["differentiation_cost"].sum())
        central = iv["central_welfare"].to_numpy(np.float64)
        if np.isfinite(central).all():
            row["central_welfare"] = float(central.sum())
            net = float(iv["welfare"].sum()) - row["differentiation_cost"]
            total = row["central_welfare"]
            row["central_efficiency"] = net / total if total > 0 else nan
    if "dso_outer_iterations" in iv:
        outer = iv["dso_outer_iterations"].to_numpy(np.float64)
        row["dso_revenue"] = float(iv["dso_revenue"].sum())
        row["dso_outer_iterations_mean"] = float(outer.mean())
        row["dso_outer_iterations_max"] = float(outer.max())
        row["dso_fallback_intervals"] = float(iv["dso_fallback"].sum())
    n = scenario.community.households
    neighbours = scenario_neighbours(scenario, n)
    if neighbours is not None:
        ids = {a: i for i, a in enumerate(household_ids(n))}
        b = trades["buyer_id"].astype(str).map(ids).to_numpy(np.int64)
        s = trades["seller_id"].astype(str).map(ids).to_numpy(np.int64)
        near = np.asarray(neighbours[b, s]).ravel() != 0 if len(b) else np.zeros(0, bool)
        row["preferred_partner_households"] = float(np.unique(np.r_[b[near], s[near]]).size)
    return row
