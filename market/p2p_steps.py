"""The pairs' steps of the consensus ADMM of :mod:`market.p2p` that do not need the book:
the consensus and price update, the stopping tests and the residual balancing of ``ρ``
(the formulas are in :mod:`market.p2p`'s docstring, "Stopping"). The live peers
(:mod:`live.p2p_peer`) call the same functions on their own pairs."""

from __future__ import annotations

import numpy as np

from market.p2p_pairs import P2PRule


def pair_update(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, lam: np.ndarray, rho: float, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' consensus and price step (module docstring): ``(z, λ)`` after the
    proposals ``x`` (buyers') and ``y`` (sellers'). One formula for the batch ADMM and for
    a live pair's two partners, who both compute it from the pair's two proposals."""
    return alpha * 0.5 * (x + y) + (1.0 - alpha) * z, lam + alpha * 0.5 * rho * (x - y)


def pairs_settled(
    gap: np.ndarray, dz: np.ndarray, x: np.ndarray, y: np.ndarray, lam: np.ndarray, rule: P2PRule
) -> np.ndarray:
    """Per pair, the ``"pairwise"`` stopping test (module docstring, "Stopping"):
    ``|x − y| ≤ primal_tol_kwh + relative_tol · max(x, y)`` and ``ρ |z_k − z_{k−1}| ≤
    dual_tol_per_kwh + relative_tol · |λ|``; a pair's two partners can both evaluate it."""
    rel = rule.relative_tol
    primal = np.abs(gap) <= rule.primal_tol_kwh + rel * np.maximum(x, y)
    return primal & (rule.rho * np.abs(dz) <= rule.dual_tol_per_kwh + rel * np.abs(lam))


BALANCE_EVERY = 50
"""Iterations between two residual-balancing checks of ``ρ`` (module docstring)."""


def balanced_rho(rho: float, primal: float, dual: float) -> float:
    """Residual balancing (Boyd et al. 2011 §3.4.1, with μ = 10 and τ = 2, on the
    residuals relative to their thresholds, ``primal = r/ε_pri`` and ``dual = s/ε_dual``):
    double ``ρ`` when the primal residual is ten times further from its threshold than
    the dual, halve it in the opposite case. ``λ`` is the unscaled price, so it needs no
    rescaling."""
    if primal > 10.0 * dual:
        return rho * 2.0
    if dual > 10.0 * primal:
        return rho / 2.0
    return rho


def residuals(gap: np.ndarray, dz: np.ndarray, rho: float, root_p: float) -> tuple[float, float]:
    """The root-mean-square residuals over the pairs (module docstring, "Stopping"): the
    primal ``‖x − y‖₂/√p`` [kWh] and the dual ``ρ‖z_k − z_{k−1}‖₂/√p`` [currency/kWh]."""
    return float(np.linalg.norm(gap)) / root_p, rho * float(np.linalg.norm(dz)) / root_p


def tolerances(
    x: np.ndarray, y: np.ndarray, lam: np.ndarray, rule: P2PRule, root_p: float
) -> tuple[float, float]:
    """The thresholds the residuals are held to (Boyd et al. 2011 §3.3.1, divided by √p):
    ``primal_tol_kwh + relative_tol · max(‖x‖, ‖y‖)/√p`` and ``dual_tol_per_kwh +
    relative_tol · ‖λ‖/√p``."""
    size = max(float(np.linalg.norm(x)), float(np.linalg.norm(y))) / root_p
    price = float(np.linalg.norm(lam)) / root_p
    return (
        rule.primal_tol_kwh + rule.relative_tol * size,
        rule.dual_tol_per_kwh + rule.relative_tol * price,
    )
