"""The bilateral market (``market.mechanism = "p2p"``) through the engine and
``compare``: per interval the ADMM welfare against the central LP (HiGHS) and, without
differentiation, against the uniform auction on the same book; ``[market.p2p]``'s
errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios import ScenarioError, load_scenario, run
from scenarios.config.schema import Scenario
from scenarios.engine.p2p import nearest, p2p_rule
from scenarios.studies.compare import compare

EPS_REL = 2e-3  # the documented bound (tests/market/test_p2p.py, market.p2p_pairs)

BASE = {
    "name": "p2p",
    "simulation": {"start": "2026-06-15", "days": 1, "seed": 5},
    "community": {"households": 14, "pv_share": 0.5, "battery_share": 0.3, "ev_share": 0.2},
    "grid": {"feeder": "radial:14", "check": "pyomo"},
    "market": {"mechanism": "p2p"},
}


def scenario(**p2p: object) -> Scenario:
    return load_scenario({**BASE, "market": {"mechanism": "p2p", "p2p": p2p}})


def test_zero_differentiation_is_the_uniform_optimum(tmp_path: Path) -> None:
    """Everybody a partner, no costs: every interval's welfare is the optimum of its book
    (the uniform auction's, which the engine computes beside it) within ε, and every
    interval reports its iterations, residuals and messages (2 per pair and iteration)."""
    run(scenario(central_check=True), tmp_path)
    iv = pd.read_parquet(tmp_path / "intervals.parquet")
    gap = iv.optimal_welfare - iv.welfare
    assert (gap >= -1e-9).all()
    assert (gap <= EPS_REL * iv.optimal_welfare + 1e-4).all()
    assert iv.welfare.sum() == pytest.approx(iv.optimal_welfare.sum(), rel=EPS_REL)
    assert np.allclose(iv.central_welfare, iv.optimal_welfare, rtol=1e-9, atol=1e-9)
    assert iv.admm_converged.all()
    traded = iv.admm_iterations > 0
    assert traded.any() and (iv.admm_messages[traded] > 0).all()
    assert (iv.admm_primal_residual_kwh <= iv.admm_primal_tol_kwh).all()
    assert (iv.admm_dual_residual_per_kwh <= iv.admm_dual_tol_per_kwh).all()
    # the thresholds: 1e-5 plus relative_tol (1e-4) times an RMS proposal below 10 kWh
    assert (iv.admm_primal_tol_kwh >= 1e-5).all() and (iv.admm_primal_tol_kwh <= 1e-3).all()
    assert (iv.differentiation_cost == 0).all()


def test_differentiated_run_and_compare(tmp_path: Path) -> None:
    """Four nearest partners, costs by distance, green and neighbour: the ADMM welfare
    net of the costs is within ε of the central LP in every interval; the trades' prices
    differ between pairs; compare reports the figures of both mechanisms."""
    sc = scenario(
        partners=4, distance_per_kwh=0.02, green_premium_per_kwh=0.01,
        neighbour_premium_per_kwh=0.01, neighbours=2,
    )  # fmt: skip
    result = compare(sc, ["uniform", "p2p"], tmp_path)
    iv = pd.read_parquet(tmp_path / "p2p" / "intervals.parquet")
    net = iv.welfare - iv.differentiation_cost
    assert (net <= iv.central_welfare + 1e-9).all()
    assert (net >= iv.central_welfare * (1 - EPS_REL) - 1e-4).all()
    assert (iv.differentiation_cost > 0).any()
    table = result.table.set_index("mechanism")
    assert table.loc["p2p", "central_efficiency"] == pytest.approx(1.0, abs=EPS_REL)
    assert table.loc["uniform", "price_dispersion_per_kwh"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["p2p", "price_dispersion_per_kwh"] > 0
    assert np.isnan(table.loc["uniform", "messages_per_interval"])
    assert table.loc["p2p", "messages_per_interval"] == pytest.approx(iv.admm_messages.mean())
    assert table.loc["p2p", "admm_iterations_mean"] == pytest.approx(iv.admm_iterations.mean())
    assert 0 < table.loc["p2p", "preferred_partner_households"] <= 14
    trades = pd.read_parquet(tmp_path / "p2p" / "trades.parquet")
    assert ((trades.price_per_kwh >= 0.08 - 1e-12) & (trades.price_per_kwh <= 0.32)).all()


def test_partners_by_distance_need_the_feeder() -> None:
    with pytest.raises(ScenarioError, match="need the feeder"):
        load_scenario({**BASE, "grid": {"check": "off"}, "market": {"mechanism": "p2p",
                       "p2p": {"partners": 3}}})  # fmt: skip
    with pytest.raises(ScenarioError, match="not members"):
        scenario(partners={"h0001": ["h0099"]})
    with pytest.raises(ScenarioError, match="partners"):
        scenario(partners="some")


def test_nearest_and_partner_tables() -> None:
    """Five households on a line at 0, 1, 2, 4, 8: each one's nearest is 1→0 (tie with 2
    broken by position), 0→1, 2→1, 3→2, 4→3; the relation is the symmetric union. A
    partner table is made symmetric too."""
    pos = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    rel = nearest(np.abs(pos[:, None] - pos[None, :]), 1).toarray()
    want = {(0, 1), (1, 0), (2, 1), (1, 2), (3, 2), (2, 3), (4, 3), (3, 4)}
    assert {(int(a), int(b)) for a, b in zip(*np.nonzero(rel), strict=True)} == want
    table = {"mechanism": "p2p", "p2p": {"partners": {"h0001": ["h0003"]}}}
    sc = load_scenario({**BASE, "grid": {"check": "off"}, "market": table})
    ids = [f"h{i:04d}" for i in range(1, 15)]
    rule = p2p_rule(sc, ids, np.zeros(14))
    assert rule.partners is not None
    assert {(int(a), int(b)) for a, b in zip(*rule.partners.nonzero(), strict=True)} == {
        (0, 2),
        (2, 0),
    }
    assert rule.bus_distance is None and rule.neighbours is None
