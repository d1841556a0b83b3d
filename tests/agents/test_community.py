"""Community.plan on hand-built households: V2G next to its own charging, and the
price-aware storage rule against the owner's own need."""

from dataclasses import fields, replace

import numpy as np

from agents.households.buildings import HeatPumpTable
from agents.households.community import KIND_BATTERY, KIND_EV, Community
from agents.households.table import Households
from agents.strategies.bidding import PriceAwareStorage, PriceBand

BAND = PriceBand(feed_in_price_per_kwh=0.08, retail_price_per_kwh=0.32, grid_fee_per_kwh=0.03)


def _households(n: int, **columns) -> Households:
    """``n`` households without devices, then the given columns (arrays or scalars)."""
    zero = np.zeros(n)
    table = {
        "agent_id": np.array([f"h{i}" for i in range(n)]),
        "annual_kwh": np.full(n, 3000.0),
        "pv_kwp": zero,
        "pv_tilt_deg": zero,
        "pv_azimuth_deg": zero,
        "battery_capacity_kwh": zero,
        "battery_power_kw": zero,
        "battery_eta_charge": np.ones(n),
        "battery_eta_discharge": np.ones(n),
        "battery_soc_min_kwh": zero,
        "battery_soc_max_kwh": zero,
        "battery_soc0_kwh": zero,
        "ev_capacity_kwh": zero,
        "ev_charger_kw": zero,
        "ev_v2g": np.zeros(n, bool),
        "ev_eta": np.ones(n),
        "ev_departure_soc_kwh": zero,
        "ev_soc_min_kwh": zero,
        "ev_trip_kwh_mean": zero,
        **{f.name: np.zeros(n) for f in fields(HeatPumpTable)},
    }
    for name, value in columns.items():
        table[name] = np.broadcast_to(value, (n,)).copy()
    return Households(**table)


def _cars(v2g: list[bool]) -> Households:
    """60 kWh cars needing 48 kWh at departure, floor 12 kWh, 11 kW chargers, eta 1."""
    return _households(
        len(v2g),
        ev_capacity_kwh=60.0,
        ev_charger_kw=11.0,
        ev_v2g=np.array(v2g),
        ev_departure_soc_kwh=48.0,
        ev_soc_min_kwh=12.0,
    )


def _park(community: Community, demand_kwh: float, intervals: int) -> tuple[list, list]:
    """The cars parked for ``intervals`` quarter hours before they leave, no PV, no
    market: each interval's car energy and grid import per household [kWh]."""
    n = community.hh.n
    ev, imported = [], []
    for left in range(intervals, 0, -1):
        plan = community.plan(
            0,
            np.zeros(n),
            np.full(n, demand_kwh),
            np.full(n, 0.2),
            np.full(n, 0.1),
            np.ones(n, bool),
            np.zeros(n),
            np.full(n, left),
        )
        flows = community.apply(plan, np.zeros(len(plan.energy_kwh)))
        ev.append(flows.ev_kwh.round(9).tolist())
        imported.append((-plan.net_kwh).round(9).tolist())
    return ev, imported


def test_v2g_car_charges_on_arrival_like_any_car() -> None:
    """Both cars arrive with 40 kWh, 8 quarter hours before they leave; 0.5 kWh demand.

    Both charge 2.75 + 2.75 + 2.5 kWh at once (48 - 40 = 8 kWh), then nothing: the
    V2G car does not cover the house from the energy it is charging (before, it gave
    back its own 2.75 kWh each interval and charged only in its last ones).
    Import = demand + charging, the same for both, so no higher peak with V2G.
    """
    community = Community(_cars([True, False]), 0.25, None)
    community.devices["ev"].soc_kwh = np.array([40.0, 40.0])
    ev, imported = _park(community, 0.5, 8)
    charge = [2.75, 2.75, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert ev == [[c, c] for c in charge]
    assert imported == [[c + 0.5, c + 0.5] for c in charge]
    np.testing.assert_allclose(community.devices["ev"].soc_kwh, [48.0, 48.0])


def test_v2g_gives_only_what_is_above_its_departure_soc_and_next_drive() -> None:
    """All three cars hold 50 kWh; the first two are V2G, the second drives 1 kWh a day
    on average. The first covers the 0.5 kWh demand until it is down to 48 kWh (4
    intervals), the second until 48 + 1 = 49 kWh (2 intervals), then each house imports
    like its plain neighbour; never more."""
    hh = _cars([True, True, False])
    community = Community(replace(hh, ev_trip_kwh_mean=np.array([0.0, 1.0, 0.0])), 0.25, None)
    community.devices["ev"].soc_kwh = np.array([50.0, 50.0, 50.0])
    ev, imported = _park(community, 0.5, 6)
    assert ev == [[-0.5, -0.5, 0.0]] * 2 + [[-0.5, 0.0, 0.0]] * 2 + [[0.0, 0.0, 0.0]] * 2
    assert imported == ([[0.0, 0.0, 0.5]] * 2 + [[0.0, 0.5, 0.5]] * 2 + [[0.5, 0.5, 0.5]] * 2)
    np.testing.assert_allclose(community.devices["ev"].soc_kwh, [48.0, 49.0, 50.0])


# --- the price-aware rule: four 6-hour intervals a day (night, morning, midday, evening)

DAY_KWH = np.array(
    [
        [-2.0, -1.0],  # night: household 0 has no PV, household 1 does
        [-1.0, 0.0],  # morning
        [-1.0, 6.0],  # midday: household 1's PV surplus
        [-3.0, -2.0],  # evening
    ]
)
EXPECTED = np.array([0.20, 0.18, 0.10, 0.28])  # midday cheap, evening dear


def _battery_pair() -> Community:
    """Two 10 kWh batteries (span 0–10, eta 1, 10 kW: power never binds), 5 kWh at
    the start, and a storage rule that expects the prices EXPECTED."""
    hh = _households(
        2,
        battery_capacity_kwh=10.0,
        battery_power_kw=10.0,
        battery_soc_max_kwh=10.0,
        battery_soc0_kwh=5.0,
    )
    storage = PriceAwareStorage(BAND, 4)
    storage.expected[:] = EXPECTED
    storage.new_day()
    return Community(hh, 6.0, storage)


def _interval(community: Community, slot: int, fill_battery_buy: bool = False):
    n = 2
    net = DAY_KWH[slot]
    plan = community.plan(
        slot,
        np.maximum(net, 0.0),
        np.maximum(-net, 0.0),
        np.full(n, 0.2),
        np.full(n, 0.1),
        np.zeros(n, bool),
        np.zeros(n),
        np.full(n, 10**9),
    )
    battery = plan.kind == KIND_BATTERY
    orders = {
        (int(h), "buy" if b else "sell"): (float(e), float(p))
        for h, b, e, p in zip(
            plan.household[battery],
            plan.is_buy[battery],
            plan.energy_kwh[battery],
            plan.price_per_kwh[battery],
            strict=True,
        )
    }
    filled = (
        np.where(battery & plan.is_buy, plan.energy_kwh, 0.0)
        if fill_battery_buy
        else (np.zeros(len(plan.energy_kwh)))
    )
    community.apply(plan, filled)
    return orders


def test_price_aware_sells_only_what_the_owner_will_not_need() -> None:
    """Hand-solved need (stored kWh to hold at the start of each interval, backwards
    over two days from empty, capped at the 10 kWh span):

    - household 0 (deficits 2, 1, 1, 3 every day) needs the full 10 kWh at every
      interval: it buys at the cheap midday, never sells;
    - household 1 (deficits 1, 0, -, 2; 6 kWh surplus at midday) needs 1 kWh at night
      and 3 kWh in the evening (the midday surplus refills it).

    Day 1 only learns (no storage orders). Day 2, midday (buy signal, limit
    min(0.10, 1 x 0.32 - 0.03) = 0.10): household 0 is empty (its battery ran out on
    day 1), so it bids for the 10 kWh it needs; household 1 fills itself from its own
    PV and bids for nothing. Evening (sell signal, limit max(0.28, q25 = 0.16) = 0.28):
    household 0 holds 10 - 3 = 7 kWh after the evening, less than the 10 it needs: no
    offer (the old rule offered the 5 kWh above half its span, energy it buys back at
    retail in the night). Household 1 holds 10 - 2 = 8 kWh and needs 1 by the night:
    it offers 7 kWh.
    """
    community = _battery_pair()
    for slot in range(4):
        assert _interval(community, slot) == {}
    np.testing.assert_allclose(community.devices["battery"].soc_kwh, [0.0, 8.0])
    np.testing.assert_allclose(community.need.need_kwh(0), [10.0, 1.0])
    np.testing.assert_allclose(community.need.need_kwh(3), [10.0, 3.0])
    assert _interval(community, 0) == {}
    assert _interval(community, 1) == {}
    assert _interval(community, 2, fill_battery_buy=True) == {(0, "buy"): (10.0, 0.10)}
    np.testing.assert_allclose(community.devices["battery"].soc_kwh, [10.0, 10.0])
    assert _interval(community, 3) == {(1, "sell"): (7.0, 0.28)}


def test_limits_cover_losses_and_fee() -> None:
    """Round trip 0.9: a bought kWh saves 0.9 x 0.32 = 0.288 later, so the bid is at
    most 0.288 - 0.03 = 0.258; an unneeded kWh is offered at no less than q25 / 0.9
    (q25 of 0.10, 0.24, 0.25, 0.27 = 0.205, so 0.2278)."""
    storage = PriceAwareStorage(BAND, 4)
    storage.expected[:] = [0.24, 0.25, 0.27, 0.10]  # median 0.245, deadband 0.0105
    storage.new_day()
    rt = np.array([0.9])
    assert [storage.signal(s) for s in range(4)] == [0, 0, -1, 1]
    np.testing.assert_allclose(storage.buy_limit(2, rt), [0.258])
    np.testing.assert_allclose(storage.buy_limit(3, rt), [0.10])
    np.testing.assert_allclose(storage.sell_limit(3, rt), [0.205 / 0.9])
    np.testing.assert_allclose(storage.sell_limit(2, rt), [0.27])


def test_price_aware_ev_leaves_room_for_the_households_own_surplus() -> None:
    """Two plain 60 kWh cars at home (departure SoC 48 kWh, eta 1, chargers that never
    bind in 6 h), 1 kWh demand every interval; household 1 also has 4 kWh of PV surplus
    at midday. Cheap mornings (buy signal at interval 1 only).

    Day 1 learns: car 1 arrives at 45 kWh, charges 3 kWh at once and soaks up the 4 kWh
    at midday (52 kWh); car 0 stays at 48. Day 2 morning: car 0 bids for its whole
    12 kWh of room. Car 1 has 8 kWh of room: leaving in 4 intervals, it will still see
    one midday's 4 kWh surplus and bids for 4 kWh (buying 8 would push its own PV out to
    be sold for less); staying (the forecast looks two days ahead) it would see 8 kWh
    and bids for nothing.
    """
    hh = _households(
        2,
        ev_capacity_kwh=60.0,
        ev_charger_kw=11.0,
        ev_departure_soc_kwh=48.0,
        ev_soc_min_kwh=12.0,
    )
    storage = PriceAwareStorage(BAND, 4)
    storage.expected[:] = [0.20, 0.10, 0.18, 0.28]  # median 0.19: buy at interval 1 only
    storage.new_day()
    community = Community(hh, 6.0, storage)
    community.devices["ev"].soc_kwh = np.array([48.0, 45.0])
    day = np.array([[-1.0, -1.0], [-1.0, -1.0], [-1.0, 4.0], [-1.0, -1.0]])

    def interval(slot: int, left: int = 10**9, apply: bool = True) -> dict:
        net = day[slot]
        plan = community.plan(
            slot,
            np.maximum(net, 0.0),
            np.maximum(-net, 0.0),
            np.full(2, 0.2),
            np.full(2, 0.1),
            np.ones(2, bool),
            np.zeros(2),
            np.full(2, left),
        )
        flexible = plan.kind == KIND_EV
        if apply:
            community.apply(plan, np.zeros(len(plan.energy_kwh)))
        return {
            int(h): (float(e), float(p))
            for h, e, p in zip(
                plan.household[flexible],
                plan.energy_kwh[flexible],
                plan.price_per_kwh[flexible],
                strict=True,
            )
        }

    assert [interval(s) for s in range(4)] == [{}, {}, {}, {}]
    np.testing.assert_allclose(community.devices["ev"].soc_kwh, [48.0, 52.0])
    assert interval(0) == {}
    assert interval(1, apply=False) == {0: (12.0, 0.10)}
    assert interval(1, left=4) == {0: (12.0, 0.10), 1: (4.0, 0.10)}
