"""Grid fees on peer-to-peer trades, paid by the buyer on top of the trade price.

(Energy sharing charges each shared kWh the jurisdiction's grid fee and levies instead:
:mod:`market.sharing_fees`.)

Three forms (scenario key ``market.grid_fee_model``):

- ``flat``: ``fee = grid_fee_per_kwh × energy`` on every trade.
- ``distance``: the fee per kWh grows linearly with the electrical distance between
  the buyer's and the seller's bus on the radial feeder::

      fee_per_kwh = grid_fee_per_kwh + grid_fee_distance_per_kwh × d(buyer, seller) / d_max

  where ``d`` is the magnitude of the series impedance of the unique path between the
  two buses (per unit, so that lines at different voltage levels add up;
  :func:`grid.distance.electrical_distance_pu`) and ``d_max`` the largest such
  distance between any two household buses of the feeder. Neighbours on the same bus
  pay the base fee, the two farthest households the base plus the full distance
  component. Normalising by ``d_max`` keeps the scenario's fee in currency/kWh,
  whatever the feeder's voltage and size.
- ``time_variable``: §14a EnWG module 3 (BNetzA BK6-22-300, from April 2025): three fee
  levels (low, standard, high) by time window of the local day, in the months the DSO
  applies them (standard all day in the others). :func:`time_variable_fee_per_kwh` gives
  the level of every interval; it applies to imports and to P2P energy alike
  (:func:`interval_tariffs`): a P2P kWh pays the level as its fee, and an imported kWh
  the retail price moved by the level's difference to the standard level (the retail
  price includes the standard grid fee).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from market.settlement import Tariffs

__all__ = ["distance_fee_per_kwh", "interval_tariffs", "time_variable_fee_per_kwh"]


def distance_fee_per_kwh(
    distance: np.ndarray,
    household_buses: np.ndarray,
    base_per_kwh: float,
    distance_per_kwh: float,
) -> np.ndarray:
    """Fee per kWh between every pair of buses [currency/kWh].

    Parameters
    ----------
    distance : numpy.ndarray
        ``(n_bus, n_bus)`` electrical distance between buses (any unit, symmetric,
        zero diagonal).
    household_buses : numpy.ndarray
        Positions of the buses that may host households; ``d_max`` is taken over them.
    base_per_kwh : float
        Fee at distance 0 [currency/kWh].
    distance_per_kwh : float
        Extra fee at ``d_max`` [currency/kWh].

    Returns
    -------
    numpy.ndarray
        ``(n_bus, n_bus)`` fee per kWh; the base fee everywhere when ``d_max`` is 0.
    """
    hb = np.asarray(household_buses, dtype=np.int64)
    d_max = float(distance[np.ix_(hb, hb)].max()) if hb.size else 0.0
    if d_max <= 0.0:
        return np.full(distance.shape, float(base_per_kwh))
    return base_per_kwh + distance_per_kwh * (distance / d_max)


def time_variable_fee_per_kwh(
    hour: np.ndarray,
    month: np.ndarray,
    levels_per_kwh: tuple[float, float, float],
    low_hours: tuple[float, float],
    high_hours: tuple[float, float],
    months: tuple[int, ...],
) -> np.ndarray:
    """The module-3 fee level of every interval [currency/kWh].

    Parameters
    ----------
    hour : local clock time of each interval's start [h, 0 ≤ hour < 24, fractional]
    month : its local month (1–12)
    levels_per_kwh : (low, standard, high) fee levels
    low_hours, high_hours : ``[start, end)`` windows of the low and the high level [h];
        a window with ``start > end`` runs over midnight
    months : months in which the windows apply; the standard level all day in the others
    """
    low, standard, high = levels_per_kwh

    def inside(window: tuple[float, float]) -> np.ndarray:
        start, end = window
        if start <= end:
            return (hour >= start) & (hour < end)
        return (hour >= start) | (hour < end)

    active = np.isin(month, months)
    fee = np.full(len(hour), float(standard))
    fee[active & inside(low_hours)] = low
    fee[active & inside(high_hours)] = high
    return fee


def interval_tariffs(tariffs: Tariffs, fee_per_kwh: float, standard_per_kwh: float) -> Tariffs:
    """The utility's prices of an interval whose grid fee level is ``fee_per_kwh``: the
    P2P fee is that level, and retail (which includes the standard level) moves by the
    level's difference to ``standard_per_kwh``."""
    return replace(
        tariffs,
        retail_price_per_kwh=tariffs.retail_price_per_kwh + fee_per_kwh - standard_per_kwh,
        grid_fee_per_kwh=fee_per_kwh,
    )
