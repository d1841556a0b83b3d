"""Electric vehicles: seeded daily trips and the charging limits they imply.

Each EV makes at most one trip a day. Weekdays: a commute with probability 0.9,
leaving around 07:30 (σ 45 min) for about 9.5 h (σ 1 h); weekends: an outing with
probability 0.6, leaving between 09:00 and 15:00 for 2–6 h. The driven energy is the
household's mean daily energy times a lognormal factor (σ 0.3), drawn off the car's
battery evenly while it is away. Every trip is sized so that the car can recharge to
its required departure state of charge before it next leaves (given its charger) and
never drives below its minimum state of charge: the required SoC at departure is
therefore always reachable, and least-laxity charging (:func:`ev_limits`) reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.households.table import Households

STREAM_EV = 202
NO_TRIP = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class EvSchedule:
    """Trips of every EV over the whole simulation (days × households).

    Attributes
    ----------
    depart_t : absolute interval index at which the car leaves (``NO_TRIP`` without a trip)
    arrive_t : absolute interval index at which it is back (plugged in again)
    trip_kwh : battery energy the trip uses [kWh]
    next_depart_t : for each day, the first departure at or after that day's first
        interval, with one extra row for "after the simulation"
    """

    depart_t: np.ndarray
    arrive_t: np.ndarray
    trip_kwh: np.ndarray
    next_depart_t: np.ndarray
    intervals_per_day: int

    def window(self, first_day: int, n_days: int) -> EvWindow:
        """Presence, driving energy and time to departure for whole days of intervals."""
        ipd = self.intervals_per_day
        days = slice(first_day, first_day + n_days)
        dep = np.repeat(self.depart_t[days], ipd, axis=0)
        arr = np.repeat(self.arrive_t[days], ipd, axis=0)
        trip = np.repeat(self.trip_kwh[days], ipd, axis=0)
        t = np.arange(first_day * ipd, (first_day + n_days) * ipd)[:, None]
        away = (t >= dep) & (t < arr)
        duration = np.maximum(arr - dep, 1)
        drive_kwh = np.where(away, trip / duration, 0.0)
        next_day = np.repeat(self.next_depart_t[first_day + 1 : first_day + n_days + 1], ipd, 0)
        next_dep = np.where(t < dep, dep, next_day)
        return EvWindow(present=~away, drive_kwh=drive_kwh, intervals_to_departure=next_dep - t)


@dataclass(frozen=True)
class EvWindow:
    """Per-interval EV facts for a window (T × households).

    ``intervals_to_departure`` counts the intervals the car can still charge in before it
    leaves (1 in its last parked interval); it is huge when no departure follows.
    """

    present: np.ndarray
    drive_kwh: np.ndarray
    intervals_to_departure: np.ndarray


def draw_ev_schedule(
    households: Households,
    weekday: np.ndarray,
    intervals_per_day: int,
    interval_hours: float,
    seed: int,
) -> EvSchedule:
    """Draw every EV's trips for the whole simulation.

    Parameters
    ----------
    households : the static table (EVs are the rows with ``ev_capacity_kwh > 0``)
    weekday : (days,) day of week of each simulated day, Monday = 0
    intervals_per_day : intervals in 24 h
    interval_hours : interval length [h]
    seed : scenario seed
    """
    days, n = len(weekday), households.n
    rng = np.random.default_rng([seed, STREAM_EV])
    ipd = intervals_per_day

    work = (weekday < 5)[:, None]
    p_trip = np.where(work, 0.9, 0.6)
    has_trip = (rng.uniform(size=(days, n)) < p_trip) & households.has_ev[None, :]
    dep_h = np.where(
        work,
        np.clip(rng.normal(7.5, 0.75, (days, n)), 5.0, 10.0),
        rng.uniform(9.0, 15.0, (days, n)),
    )
    dur_h = np.where(
        work,
        np.clip(rng.normal(9.5, 1.0, (days, n)), 4.0, 12.0),
        rng.uniform(2.0, 6.0, (days, n)),
    )
    factor = rng.lognormal(-0.5 * 0.3**2, 0.3, (days, n))
    per_hour = 1.0 / interval_hours
    dep_i = np.floor(dep_h * per_hour).astype(np.int64)
    arr_i = np.minimum(np.floor((dep_h + dur_h) * per_hour).astype(np.int64), ipd - 1)
    arr_i = np.maximum(arr_i, dep_i + 1)
    base = (np.arange(days, dtype=np.int64) * ipd)[:, None]
    depart_t = np.where(has_trip, base + dep_i, NO_TRIP)
    arrive_t = np.where(has_trip, base + arr_i, NO_TRIP)

    next_depart = np.full((days + 1, n), NO_TRIP, dtype=np.int64)
    for d in range(days - 1, -1, -1):
        next_depart[d] = np.where(has_trip[d], depart_t[d], next_depart[d + 1])

    # Cap each trip so the car can recharge before it next leaves and stays above its floor.
    after_arrival = next_depart[np.minimum(np.arange(days) + 1, days)]
    parked = np.where(after_arrival >= NO_TRIP, NO_TRIP, after_arrival - arrive_t)
    recharge_kwh = parked * households.ev_charger_kw * interval_hours * households.ev_eta
    reserve_kwh = households.ev_departure_soc_kwh - households.ev_soc_min_kwh
    trip = households.ev_trip_kwh_mean[None, :] * factor
    trip = np.minimum(trip, np.minimum(recharge_kwh, reserve_kwh[None, :]))
    trip = np.where(has_trip, trip, 0.0)
    return EvSchedule(
        depart_t=depart_t,
        arrive_t=arrive_t,
        trip_kwh=trip,
        next_depart_t=next_depart,
        intervals_per_day=ipd,
    )
