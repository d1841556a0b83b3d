"""Grid fees on peer-to-peer trades, paid by the buyer on top of the trade price.

Two forms (scenario key ``market.grid_fee_model``):

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
"""

from __future__ import annotations

import numpy as np

__all__ = ["distance_fee_per_kwh"]


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
