"""EV trip schedules: deterministic, feasible, and the departure SoC always reachable."""

import numpy as np

from agents.devices.ev_trips import NO_TRIP, draw_ev_schedule
from agents.households.table import HouseholdSpec, sample_households

SPEC = HouseholdSpec(
    households=50,
    annual_kwh=(2000, 5000),
    pv_share=0.5,
    pv_kwp=(3, 10),
    pv_tilt_deg=(20, 45),
    pv_azimuth_deg=(120, 240),
    battery_share=0.3,
    battery_capacity_kwh=(5, 13.5),
    battery_c_rate=0.5,
    battery_round_trip_efficiency=0.9,
    battery_soc_min_frac=0.05,
    battery_soc_max_frac=0.95,
    battery_initial_soc_frac=0.5,
    ev_share=0.6,
    v2g_share=0.5,
    ev_capacity_kwh=(40, 80),
    ev_charger_kw=3.7,
    ev_efficiency=0.92,
    ev_departure_soc_frac=0.8,
    ev_soc_min_frac=0.2,
    ev_km_per_day=(40, 200),
    ev_kwh_per_km=0.2,
)
WEEK = np.array([0, 1, 2, 3, 4, 5, 6] * 2)


def test_households_sampling_is_exact_and_seeded() -> None:
    hh = sample_households(SPEC, seed=3)
    assert hh.has_ev.sum() == 30 and (hh.pv_kwp > 0).sum() == 25
    assert (hh.battery_capacity_kwh > 0).sum() == 15
    assert not (hh.ev_v2g & ~hh.has_ev).any()
    again = sample_households(SPEC, seed=3)
    np.testing.assert_array_equal(hh.pv_kwp, again.pv_kwp)
    other = sample_households(SPEC, seed=4)
    assert not np.array_equal(hh.pv_kwp, other.pv_kwp)


def test_schedule_deterministic_and_only_for_evs() -> None:
    hh = sample_households(SPEC, seed=1)
    a = draw_ev_schedule(hh, WEEK, 96, 0.25, seed=1)
    b = draw_ev_schedule(hh, WEEK, 96, 0.25, seed=1)
    np.testing.assert_array_equal(a.depart_t, b.depart_t)
    assert (a.depart_t[:, ~hh.has_ev] == NO_TRIP).all()
    trips = a.depart_t < NO_TRIP
    assert (a.arrive_t[trips] > a.depart_t[trips]).all()
    # every trip starts and ends on its own day
    day = np.arange(len(WEEK))[:, None] * 96
    assert ((a.depart_t - day)[trips] >= 0).all() and ((a.arrive_t - day)[trips] < 96).all()


def test_trips_fit_the_charger_and_the_floor() -> None:
    """A slow 3.7 kW charger and long trips: trips are capped so departures stay reachable."""
    hh = sample_households(SPEC, seed=2)
    s = draw_ev_schedule(hh, WEEK, 96, 0.25, seed=2)
    step = hh.ev_charger_kw * 0.25 * hh.ev_eta
    reserve = hh.ev_departure_soc_kwh - hh.ev_soc_min_kwh
    for d in range(len(WEEK) - 1):
        trip = s.depart_t[d] < NO_TRIP
        parked = s.next_depart_t[d + 1] - s.arrive_t[d]
        following = trip & (s.next_depart_t[d + 1] < NO_TRIP)
        assert (s.trip_kwh[d][following] <= parked[following] * step[following] + 1e-9).all()
        assert (s.trip_kwh[d][trip] <= reserve[trip] + 1e-9).all()


def test_window_matches_the_schedule() -> None:
    hh = sample_households(SPEC, seed=1)
    s = draw_ev_schedule(hh, WEEK, 96, 0.25, seed=1)
    w = s.window(2, 3)
    whole = s.window(0, 14)
    np.testing.assert_array_equal(w.present, whole.present[2 * 96 : 5 * 96])
    # energy drawn while away equals the trips of those days
    np.testing.assert_allclose(w.drive_kwh.sum(axis=0), s.trip_kwh[2:5].sum(axis=0))
    # one interval before departure, one parked interval is left
    ev = np.flatnonzero(s.depart_t[3] < NO_TRIP)[0]
    t_dep = s.depart_t[3, ev]
    assert whole.intervals_to_departure[t_dep - 1, ev] == 1
    assert not whole.present[t_dep, ev] and whole.present[t_dep - 1, ev]
