"""How much of its stored energy each household's battery will need itself (vectorised).

Under self-consumption a stored kWh is worth what it saves later. Delivered to the
household's own deficit it saves the retail price; a kWh the household will not need
before its own PV surplus refills the battery only takes the place of that surplus,
which would otherwise be sold. :class:`OwnNeed` tells the two apart: it learns the
inflexible position of each battery or EV owner per interval of the day (generation −
demand − the EV's default charging, as an exponential moving average with weight
``alpha`` per day) and, once every interval of the day has been seen, derives once a
day the *need* of each interval: the stored energy above the floor that self-consumption
must hold at its start to cover the forecast deficits of the next 24–48 h, counting the
forecast surpluses that recharge it on the way. Backwards over two forecast days from an empty
battery at the end (stored energy, within the power limit ``P·Δt`` each way)::

    need[s] = clip(need[s + 1] + deficit[s] / η_discharge − surplus[s] · η_charge, 0, span)

The same forecast tells how much own surplus is still to come in the next intervals
(:meth:`OwnNeed.surplus_kwh`): room in an EV that this surplus will fill is not worth
buying energy for.
"""

from __future__ import annotations

import numpy as np


class OwnNeed:
    """Learnt forecast of the households' own positions and the stored energy they need.

    Parameters
    ----------
    span_kwh : usable span of each household's battery (0 without one) [kWh]
    step_kwh : most the battery moves in one interval (power × interval) [kWh AC]
    eta_charge, eta_discharge : one-way efficiencies
    has_ev : households with an EV (learnt for their surplus even without a battery)
    intervals_per_day : intervals in a day
    alpha : weight of the newest day in the moving average
    """

    def __init__(
        self,
        span_kwh: np.ndarray,
        step_kwh: np.ndarray,
        eta_charge: np.ndarray,
        eta_discharge: np.ndarray,
        has_ev: np.ndarray,
        intervals_per_day: int,
        alpha: float = 0.3,
    ) -> None:
        self.n = len(span_kwh)
        self.rows = np.flatnonzero((span_kwh > 0) | has_ev)
        self.alpha = alpha
        self._span = span_kwh[self.rows]
        self._step = step_kwh[self.rows]
        self._eta_c = eta_charge[self.rows]
        self._eta_d = eta_discharge[self.rows]
        self.forecast_kwh = np.zeros((intervals_per_day, len(self.rows)))
        self._seen = np.zeros(intervals_per_day, dtype=bool)
        self._need: np.ndarray | None = None
        self._surplus_cum = np.zeros((3 * intervals_per_day + 1, len(self.rows)))

    @property
    def ready(self) -> bool:
        """Whether a need is known (every interval of the day has been seen once)."""
        return self._need is not None

    def observe(self, slot: int, net_kwh: np.ndarray) -> None:
        """Learn every household's inflexible position of this interval of the day
        [kWh, positive = surplus]; the need is re-derived after the day's last interval."""
        own = net_kwh[self.rows]
        row = self.forecast_kwh[slot]
        if self._seen[slot]:
            row += self.alpha * (own - row)
        else:
            row[:] = own
            self._seen[slot] = True
        if slot == len(self._seen) - 1 and self._seen.all():
            self._need = self._derive()
            surplus = np.maximum(np.tile(self.forecast_kwh, (3, 1)), 0.0)
            self._surplus_cum[1:] = np.cumsum(surplus, axis=0)

    def _derive(self) -> np.ndarray:
        ipd = len(self._seen)
        f = np.clip(self.forecast_kwh, -self._step, self._step)
        change = np.maximum(-f, 0.0) / self._eta_d - np.maximum(f, 0.0) * self._eta_c
        need = np.empty_like(f)
        r = np.zeros(len(self.rows))
        for s in range(2 * ipd - 1, -1, -1):
            r = np.clip(r + change[s % ipd], 0.0, self._span)
            if s < ipd:
                need[s] = r
        return need

    def need_kwh(self, slot: int) -> np.ndarray:
        """Stored energy above the floor needed at the start of this interval of the day
        [kWh] (0 without a battery); only once :attr:`ready`."""
        assert self._need is not None
        out = np.zeros(self.n)
        out[self.rows] = self._need[slot]
        return out

    def surplus_kwh(self, slot: int, intervals: np.ndarray) -> np.ndarray:
        """Forecast own surplus [kWh AC] over ``intervals`` intervals (each household's
        own count, at most two days) from the start of this interval of the day."""
        k = np.clip(intervals[self.rows], 0, 2 * len(self._seen))
        cum = self._surplus_cum
        out = np.zeros(self.n)
        out[self.rows] = cum[slot + k, np.arange(len(self.rows))] - cum[slot]
        return out
