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
    strategy: str, band: PriceBand, shape: tuple[int, int], seed: int, first_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """Limit prices of the households' net positions for a window of intervals.

    Returns ``(bid, ask)`` arrays of ``shape`` (intervals × households)
    [currency/kWh]; the engine uses the bid where a household buys and the ask where it
    sells. Deterministic per (seed, first_day): the first day of the window.
    """
    if strategy == "truthful":
        return np.full(shape, band.high), np.full(shape, band.low)
    if strategy == "zic":
        rng = np.random.default_rng([seed, first_day, STREAM_BIDS])
        u = rng.uniform(size=(2, *shape))
        span = band.high - band.low
        return band.low + span * u[0], band.low + span * u[1]
    raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


class PriceAwareStorage:
    """Expected-price rule for batteries and the flexible part of EV charging.

    The community learns the expected clearing price of each interval of the day as an
    exponential moving average of the prices it sees (weight ``alpha`` per day, prior
    the middle of the price band). In intervals whose expected price lies below the
    day's median by more than ``deadband`` storage bids to charge; above the median by
    more than ``deadband`` a battery offers to discharge.

    The limits are what the energy is worth to its owner, so that no trade leaves the
    owner worse off than self-consumption would (``η_rt`` the device's round-trip
    efficiency, ``fee`` the largest grid fee a P2P kWh carries):

    - a charge is bought only for the owner's own later use, and not where the owner's
      own PV surplus would have gone (a battery: up to its need,
      :class:`agents.devices.own_need.OwnNeed`; an EV: room above its departure SoC that the
      forecast own surplus will not fill before it leaves, energy that is driven or
      covers the household's deficit), where a kWh back at the AC terminal saves
      ``η_rt × retail``; the bid is ``min(expected, η_rt × retail − fee)``, so the
      spread always beats the losses and the fee;
    - a battery sells only stored energy its owner will not need; such a kWh takes the
      place of own PV surplus that would otherwise be sold in a cheap interval, so the
      ask is ``max(expected, q25 / η_rt)`` with q25 the lower quartile of the expected
      daily price curve. Energy the owner will need is worth retail, more than any P2P
      buyer pays (bids are capped at ``retail − fee``), so it is never offered; nor is
      an EV's (its energy above the departure SoC is driven or used at home).
    """

    def __init__(
        self,
        band: PriceBand,
        intervals_per_day: int,
        alpha: float = 0.3,
        deadband_frac: float = 0.05,
    ) -> None:
        self.band = band
        self.alpha = alpha
        self.deadband = deadband_frac * (band.high - band.low)
        self.expected = np.full(intervals_per_day, 0.5 * (band.low + band.high))
        self._refresh()

    def _refresh(self) -> None:
        self.median = float(np.median(self.expected))
        self.q25 = float(np.percentile(self.expected, 25))

    def new_day(self) -> None:
        """Re-derive the day's thresholds from the expectations learnt so far."""
        self._refresh()

    def signal(self, slot: int) -> int:
        """+1 to charge, −1 to discharge, 0 to place no storage order in this interval."""
        expected = self.expected[slot]
        if expected < self.median - self.deadband:
            return 1
        if expected > self.median + self.deadband:
            return -1
        return 0

    def buy_limit(self, slot: int, round_trip: np.ndarray) -> np.ndarray:
        """Bid for charging energy the owner will use itself [currency/kWh]."""
        value = round_trip * self.band.retail_price_per_kwh - self.band.grid_fee_per_kwh
        return np.minimum(self.expected[slot], value)

    def sell_limit(self, slot: int, round_trip: np.ndarray) -> np.ndarray:
        """Ask for stored energy the owner will not need [currency/kWh]."""
        return np.maximum(self.expected[slot], self.q25 / round_trip)

    def observe(self, slot: int, price_per_kwh: float) -> None:
        """Learn from a realised clearing price (nothing is learnt when nothing traded)."""
        if np.isfinite(price_per_kwh):
            self.expected[slot] += self.alpha * (price_per_kwh - self.expected[slot])
