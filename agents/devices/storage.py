"""Energy limits and state-of-charge updates of home batteries and EVs (vectorised).

All energies are at the AC terminal over one interval [kWh], positive when charging;
states of charge are the energy stored [kWh]. One-way efficiencies apply on the way in
(stored = eta_charge × AC) and on the way out (AC = eta_discharge × taken from store).
"""

from __future__ import annotations

import numpy as np


def battery_limits(
    soc_kwh: np.ndarray,
    soc_min_kwh: np.ndarray,
    soc_max_kwh: np.ndarray,
    power_kw: np.ndarray,
    eta_charge: np.ndarray,
    eta_discharge: np.ndarray,
    interval_hours: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Largest AC charge and discharge in one interval [kWh], both ≥ 0."""
    step = power_kw * interval_hours
    charge = np.minimum(step, (soc_max_kwh - soc_kwh) / eta_charge)
    discharge = np.minimum(step, (soc_kwh - soc_min_kwh) * eta_discharge)
    return np.maximum(charge, 0.0), np.maximum(discharge, 0.0)


def ev_limits(
    soc_kwh: np.ndarray,
    capacity_kwh: np.ndarray,
    soc_min_kwh: np.ndarray,
    departure_soc_kwh: np.ndarray,
    trip_kwh: np.ndarray,
    charger_kw: np.ndarray,
    eta: np.ndarray,
    v2g: np.ndarray,
    present: np.ndarray,
    intervals_to_departure: np.ndarray,
    interval_hours: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-laxity EV limits for one interval [kWh AC].

    Returns
    -------
    must_charge : charging that cannot wait: with ``k`` parked intervals left, what the
        other ``k - 1`` intervals at full charger power cannot add to reach the
        departure SoC
    max_charge : the most the car can take (charger power, capacity)
    max_discharge : V2G only, and only the energy stored above what the car needs: its
        departure SoC plus ``trip_kwh``, a day's mean driving (energy above the departure
        SoC is driven next instead of being charged on the next arrival; giving it to
        the house would only move the house's import to that arrival, at full charger
        power, and lose the round trip). A car still charging never discharges, so
        V2G never undoes the car's own charging.
    """
    step = charger_kw * interval_hours
    later_kwh = np.maximum(intervals_to_departure - 1, 0) * step * eta
    must = np.clip((departure_soc_kwh - soc_kwh - later_kwh) / eta, 0.0, step)
    charge = np.clip((capacity_kwh - soc_kwh) / eta, 0.0, step)
    floor = np.maximum(soc_min_kwh, departure_soc_kwh + trip_kwh)
    discharge = np.clip((soc_kwh - floor) * eta, 0.0, step)
    must = np.where(present, must, 0.0)
    charge = np.where(present, np.maximum(charge, must), 0.0)
    discharge = np.where(present & v2g, discharge, 0.0)
    return must, charge, discharge


def next_soc(
    soc_kwh: np.ndarray,
    ac_kwh: np.ndarray,
    eta_charge: np.ndarray,
    eta_discharge: np.ndarray,
) -> np.ndarray:
    """State of charge after an interval of AC energy ``ac_kwh`` (positive = charging)."""
    return soc_kwh + np.where(ac_kwh > 0, ac_kwh * eta_charge, ac_kwh / eta_discharge)
