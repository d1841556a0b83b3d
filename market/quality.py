"""Mechanism-independent quality of a clearing: volume, welfare, efficiency, budget.

Welfare is measured with the book's declared limit prices (the only values a market
sees): ``welfare = Σ bid × bought − Σ ask × sold`` [currency]. The benchmark is the
welfare optimum of the same book, i.e. the LP ``max Σ b x − Σ a y`` s.t.
``Σ x = Σ y``, ``0 <= x, y <= energy``. That optimum is the uniform-price auction's
welfare (``tests/market/test_uniform.py`` checks this against ``scipy``'s HiGHS LP on
random books), so no LP is solved here: one merit-order clearing, a sort and a
cumulative sum, gives it. Cheap enough for the engine's hot path (one extra
:func:`~market.uniform.clear_uniform` per interval for the mechanisms that are not
the uniform auction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.uniform import Matching, clear_uniform

__all__ = ["ClearingQuality", "clearing_quality", "welfare"]


@dataclass(frozen=True, slots=True)
class ClearingQuality:
    """Quality of one clearing of one book.

    Attributes
    ----------
    volume_kwh : float
        Traded energy [kWh].
    optimal_volume_kwh : float
        Volume of the welfare optimum (the largest optimal volume) [kWh].
    welfare : float
        Gains from trade at the declared limit prices [currency].
    optimal_welfare : float
        The LP welfare optimum of the book [currency], >= ``welfare``.
    efficiency : float
        ``welfare / optimal_welfare``; ``nan`` when the optimum is 0 (no gains).
    budget_surplus : float
        What buyers pay minus what sellers receive [currency]; positive is a surplus
        (kept by the market operator), negative would be a deficit (none of the
        mechanisms here runs one).
    """

    volume_kwh: float
    optimal_volume_kwh: float
    welfare: float
    optimal_welfare: float
    efficiency: float
    budget_surplus: float


def welfare(buy_price_per_kwh: np.ndarray, sell_price_per_kwh: np.ndarray, m: Matching) -> float:
    """Declared welfare of a matching [currency]: ``Σ bid × bought − Σ ask × sold``."""
    return float(buy_price_per_kwh @ m.buy_filled_kwh - sell_price_per_kwh @ m.sell_filled_kwh)


def clearing_quality(
    buy_kwh: np.ndarray,
    buy_price_per_kwh: np.ndarray,
    sell_kwh: np.ndarray,
    sell_price_per_kwh: np.ndarray,
    matching: Matching,
    optimum: Matching | None = None,
) -> ClearingQuality:
    """Volume, welfare, efficiency against the welfare optimum and budget of a clearing.

    Parameters
    ----------
    buy_kwh, buy_price_per_kwh, sell_kwh, sell_price_per_kwh : numpy.ndarray
        The book that was cleared [kWh, currency/kWh].
    matching : Matching
        Its clearing by any mechanism.
    optimum : Matching, optional
        The book's uniform-price clearing, if already at hand (else computed).

    Returns
    -------
    ClearingQuality
    """
    bp = np.asarray(buy_price_per_kwh, dtype=np.float64)
    sp = np.asarray(sell_price_per_kwh, dtype=np.float64)
    if optimum is None:
        optimum = clear_uniform(buy_kwh, bp, sell_kwh, sp)
    got = welfare(bp, sp, matching)
    best = welfare(bp, sp, optimum)
    return ClearingQuality(
        volume_kwh=matching.volume_kwh,
        optimal_volume_kwh=optimum.volume_kwh,
        welfare=got,
        optimal_welfare=best,
        efficiency=got / best if best > 0 else float("nan"),
        budget_surplus=matching.market_surplus,
    )
