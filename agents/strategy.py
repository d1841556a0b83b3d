"""Bidding strategies, vectorised over households.

Valuations: a household that buys from a neighbour instead of the utility saves the
retail price but pays the grid fee on top of the trade price, so its value of a P2P kWh
is ``retail − fee``; a seller's alternative is the feed-in tariff. Every strategy
keeps its limit prices inside ``[feed_in, retail − fee]``.

- ``zic`` — zero intelligence constrained (Gode & Sunder 1993, J. Polit. Econ. 101(1)):
  limit prices drawn uniformly from ``[feed_in, retail − fee]`` for buyers and sellers,
  so nobody bids above their value or asks below their cost.
- ``truthful`` — buyers bid their value ``retail − fee``, sellers ask ``feed_in``.

Storage (batteries, EVs' flexible part) follows :class:`PriceAwareStorage`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAM_BIDS = 303
STRATEGIES = ("zic", "truthful")


@dataclass(frozen=True)
class PriceBand:
    """The interval of sensible P2P limit prices [currency/kWh]."""

    feed_in_price_per_kwh: float
    retail_price_per_kwh: float
    grid_fee_per_kwh: float

    @property
    def low(self) -> float:
        return self.feed_in_price_per_kwh

    @property
    def high(self) -> float:
        return self.retail_price_per_kwh - self.grid_fee_per_kwh


def draw_limit_prices(
    strategy: str, band: PriceBand, shape: tuple[int, int], seed: int, block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Limit prices of the households' net positions for a window of intervals.

    Returns ``(bid, ask)`` arrays of ``shape`` (intervals × households)
    [currency/kWh]; the engine uses the bid where a household buys and the ask where it
    sells. Deterministic per (seed, block).
    """
    if strategy == "truthful":
        return np.full(shape, band.high), np.full(shape, band.low)
    if strategy == "zic":
        rng = np.random.default_rng([seed, block, STREAM_BIDS])
        u = rng.uniform(size=(2, *shape))
        span = band.high - band.low
        return band.low + span * u[0], band.low + span * u[1]
    raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


class PriceAwareStorage:
    """Expected-price rule for batteries and the flexible part of EV charging.

    The community learns the expected clearing price of each interval of the day as an
    exponential moving average of the prices it sees (weight ``alpha`` per day, prior
    the middle of the price band). In intervals whose expected price lies below the
    day's median by more than ``deadband`` it bids to charge, with limit
    ``min(expected, q75 × η_rt)``; above the median by more than ``deadband`` it offers
    to discharge, with limit ``max(expected, q25 / η_rt)``, where q25/q75 are the
    quartiles of the expected daily price curve and η_rt the round-trip efficiency —
    so a bought kWh is only resold at a price that covers its losses.
    A battery offers only what exceeds ``reserve_frac`` of its usable span, keeping the
    rest for the household's own evening and night.
    """

    def __init__(
        self,
        band: PriceBand,
        intervals_per_day: int,
        round_trip_efficiency: float,
        alpha: float = 0.3,
        deadband_frac: float = 0.05,
        reserve_frac: float = 0.5,
    ) -> None:
        self.band = band
        self.eta_rt = round_trip_efficiency
        self.alpha = alpha
        self.deadband = deadband_frac * (band.high - band.low)
        self.reserve_frac = reserve_frac
        self.expected = np.full(intervals_per_day, 0.5 * (band.low + band.high))
        self._refresh()

    def _refresh(self) -> None:
        self.median = float(np.median(self.expected))
        self.q25, self.q75 = (float(q) for q in np.percentile(self.expected, [25, 75]))

    def new_day(self) -> None:
        """Re-derive the day's thresholds from the expectations learnt so far."""
        self._refresh()

    def signal(self, slot: int) -> tuple[float | None, float | None]:
        """``(buy_limit, sell_limit)`` for this interval of the day; None = no order."""
        expected = self.expected[slot]
        if expected < self.median - self.deadband:
            return min(expected, self.q75 * self.eta_rt), None
        if expected > self.median + self.deadband:
            return None, max(expected, self.q25 / self.eta_rt)
        return None, None

    def observe(self, slot: int, price_per_kwh: float) -> None:
        """Learn from a realised clearing price (nothing is learnt when nothing traded)."""
        if np.isfinite(price_per_kwh):
            self.expected[slot] += self.alpha * (price_per_kwh - self.expected[slot])
