"""EV charging dimmed below its least-laxity need is missing at departure, exactly as
reported (``Plan.dimmed_shortfall_kwh``), and never more (the car charges at full power
after a cut)."""

import numpy as np
import pytest

from agents.households.community import Community
from agents.households.table import HouseholdSpec, sample_households

DT_H, MIN_KWH = 0.25, 4.2 * 0.25


def _community() -> Community:
    spec = HouseholdSpec(
        households=1, annual_kwh=(3000.0, 3000.0), pv_share=0.0, pv_kwp=(0.0, 0.0),
        pv_tilt_deg=(30.0, 30.0), pv_azimuth_deg=(180.0, 180.0), battery_share=0.0,
        battery_capacity_kwh=(0.0, 0.0), battery_c_rate=0.5, battery_round_trip_efficiency=0.9,
        battery_soc_min_frac=0.05, battery_soc_max_frac=0.95, battery_initial_soc_frac=0.5,
        ev_share=1.0, v2g_share=0.0, ev_capacity_kwh=(60.0, 60.0), ev_charger_kw=22.0,
        ev_efficiency=0.92, ev_departure_soc_frac=0.8, ev_soc_min_frac=0.2,
        ev_km_per_day=(40.0, 40.0), ev_kwh_per_km=0.18,
    )  # fmt: skip
    return Community(sample_households(spec, 1), DT_H, None)


@pytest.mark.parametrize(
    ("dimmed_at", "lacking_kwh"),
    [((), 0.0), ((0,), 0.0), ((2, 3), 0.0), ((0, 1, 2, 3), 5.896), ((4, 5, 6, 7), 5.896)],
)
def test_departure_soc_lacks_exactly_the_reported_shortfall(dimmed_at, lacking_kwh) -> None:
    """A car 30 kWh below its departure SoC (48 kWh), 8 intervals before it leaves, on a
    22 kW charger (5.06 kWh stored per interval, 40.5 kWh in all): undimmed it charges at
    full power at once and leaves full. Dimmed to 4.2 kW (0.966 kWh stored) in the
    intervals ``dimmed_at``: two cuts still leave time, four do not: 8 × 5.06 − 4 × (5.5 −
    1.05) × 0.92 = 24.104 kWh of the 30, 5.896 kWh lacking, wherever the cuts fall."""
    com = _community()
    ev = com.devices["ev"]
    target = float(com.hh.ev_departure_soc_kwh[0])
    ev.soc_kwh = np.array([target - 30.0])
    shortfall = 0.0
    for k in range(8):
        plan = com.plan(
            k, np.zeros(1), np.array([0.1]), np.array([0.3]), np.array([0.1]),
            np.array([True]), np.zeros(1), np.array([8 - k]),
        )  # fmt: skip
        if k in dimmed_at:
            cut = {"ev": np.maximum(plan.ev_self_kwh - MIN_KWH, 0.0)}
            shortfall += float(plan.dimmed_shortfall_kwh(cut)[0])
            plan = plan.dim(cut)
        flows = com.outcome(plan, np.zeros(len(plan.energy_kwh)))
        com.commit(flows)
    lacking = max(target - float(ev.soc_kwh[0]), 0.0)
    assert lacking == pytest.approx(0.92 * shortfall, abs=1e-9)
    assert lacking == pytest.approx(lacking_kwh, abs=1e-9)
