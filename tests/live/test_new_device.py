"""A new device kind is one module plus one registration (issue 13).

:class:`Scheduled` below is the whole device: a fixed schedule of flexible orders (four
households; two take 0.5 kWh each interval if a seller matches at up to 0.25, two give
0.3 kWh if a buyer pays at least 0.10). It is registered from the test and runs through
the batch engine (``scenarios.run``) and the live market over Mosquitto with no change to
``Community``, the engine, the writers or the live market.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.devices import Device, DeviceOrder, Step, kind_names, register, unregister
from agents.households.table import Households
from live.ledger import read_ledger
from live.market import MarketService
from scenarios import run
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario
from scenarios.results.schema import QUANTUM

#: kWh per interval: > 0 taken if matched (a buy), < 0 given if matched (a sell)
SCHEDULE_KWH = {"h0001": 0.5, "h0002": 0.5, "h0003": -0.3, "h0004": -0.3}
BUY_LIMIT, SELL_LIMIT = 0.25, 0.10
INTERVALS = 6


class Scheduled(Device):
    """A fixed-schedule device that only places flexible orders (no store)."""

    name = "scheduled"

    def __init__(self, households: Households, interval_hours: float) -> None:
        super().__init__(households, interval_hours)
        self.kwh = np.array([SCHEDULE_KWH.get(a, 0.0) for a in households.agent_id])

    def orders(self, step: Step, lim: Any, self_kwh: np.ndarray) -> list[DeviceOrder]:
        n = len(self.kwh)
        return [
            (True, np.maximum(self.kwh, 0.0), np.full(n, BUY_LIMIT)),
            (False, np.maximum(-self.kwh, 0.0), np.full(n, SELL_LIMIT)),
        ]


@pytest.fixture
def scheduled() -> Iterator[type[Scheduled]]:
    register(Scheduled)
    try:
        yield Scheduled
    finally:
        unregister(Scheduled)


def _scenario(e2e_file: Path) -> Scenario:
    # its own name: the batch run cached for the e2e scenario has no such device
    return load_scenario(e2e_file, ["name=live-device", "output.order_books=true"])


def _device_energy(trades: pd.DataFrame, n_t: int) -> pd.DataFrame:
    """(t, agent) → energy the device took (+) or gave (−) by its filled orders [kWh]."""
    took = trades[trades.buy_kind == "scheduled"].groupby(["t", "buyer_id"], observed=True)
    gave = trades[trades.sell_kind == "scheduled"].groupby(["t", "seller_id"], observed=True)
    out = pd.DataFrame(0.0, index=range(n_t), columns=list(SCHEDULE_KWH))
    for (t, agent), kwh in took.energy_kwh.sum().items():
        out.loc[t, str(agent)] += kwh
    for (t, agent), kwh in gave.energy_kwh.sum().items():
        out.loc[t, str(agent)] -= kwh
    return out


def test_a_registered_device_runs_through_the_batch_engine(
    scheduled: type[Scheduled], e2e_file: Path, tmp_path: Path
) -> None:
    assert kind_names() == ("net", "battery", "ev", "heat_pump", "scheduled")
    scenario = _scenario(e2e_file)
    out = tmp_path / "batch"
    run(scenario, out)
    n_t = scenario.simulation.n_intervals
    books = pd.read_parquet(out / "books.parquet")
    mine = books[books.kind == "scheduled"]
    # the schedule, every interval: 2 buys of 0.5 at 0.25, 2 sells of 0.3 at 0.10
    assert len(mine) == 4 * n_t
    for agent, kwh in SCHEDULE_KWH.items():
        rows = mine[mine.agent_id == agent]
        assert len(rows) == n_t
        assert (rows.side == ("buy" if kwh > 0 else "sell")).all()
        np.testing.assert_allclose(rows.energy_kwh, abs(kwh))
        np.testing.assert_allclose(rows.price_per_kwh, BUY_LIMIT if kwh > 0 else SELL_LIMIT)
    trades = pd.read_parquet(out / "trades.parquet")
    device = _device_energy(trades, n_t)
    assert device.to_numpy().max() <= 0.5 + 1e-9 and device.to_numpy().min() >= -0.3 - 1e-9
    assert (device[["h0001", "h0002"]] > 1e-6).to_numpy().sum() > 0, "no fill: a weak test"
    assert (device[["h0003", "h0004"]] < -1e-6).to_numpy().sum() > 0, "no fill: a weak test"
    # energy balance at every meter: the device's filled energy is metered (it shows in
    # the utility exchange) though the results have no column of its own
    agents = pd.read_parquet(out / "agents.parquet")
    agents = agents.set_index(["t", "agent_id"]).sort_index()
    own = (
        agents.generation_kwh
        - agents.demand_kwh
        - agents.battery_kwh
        - agents.ev_kwh
        - agents.heat_pump_kwh
        - agents.sold_p2p_kwh
        + agents.bought_p2p_kwh
        - agents.grid_export_kwh
        + agents.grid_import_kwh
    )
    residual = own.unstack("agent_id")
    residual.columns = residual.columns.astype(str)
    others = [c for c in residual.columns if c not in SCHEDULE_KWH]
    # nine of agents.parquet's columns, each within QUANTUM / 2 of the engine's
    np.testing.assert_allclose(residual[others], 0.0, atol=5 * QUANTUM)
    np.testing.assert_allclose(residual[list(SCHEDULE_KWH)], device, atol=5 * QUANTUM)


def test_a_registered_device_runs_through_the_live_market(
    scheduled: type[Scheduled],
    mosquitto: Any,
    live_clients: Any,
    e2e_file: Path,
    tmp_path: Path,
    equal_to_batch: Any,
) -> None:
    scenario = _scenario(e2e_file)
    state = tmp_path / "state"
    market = MarketService(scenario, mosquitto.config, state, speed=0, intervals=INTERVALS)
    with live_clients(scenario, mosquitto.config) as (fleet, _meters):
        market.run()
        assert fleet.wait(20)
    assert sum(market.stats.rejected.values()) == 0, market.stats.rejected
    ledger = read_ledger(state)
    books = [rec["book"] for rec in ledger]
    assert len(books) == INTERVALS
    filled = {"buy": 0.0, "sell": 0.0}
    for book in books:
        orders = pd.DataFrame(book["orders"])
        mine = orders[orders.kind == "scheduled"].set_index("agent")
        assert sorted(mine.index) == sorted(SCHEDULE_KWH)
        for agent, kwh in SCHEDULE_KWH.items():
            assert mine.loc[agent, "energy_kwh"] == pytest.approx(abs(kwh))
            assert mine.loc[agent, "side"] == ("buy" if kwh > 0 else "sell")
        for side in filled:
            filled[side] += mine[mine.side == side].filled_kwh.sum()
    assert filled["buy"] > 0 and filled["sell"] > 0, "no fill: a weak test"
    # the live market's prices, volumes, utility flows and trades equal the batch run's
    results = [rec["result"] for rec in ledger]
    equal_to_batch(results, scenario, tmp_path / "batch", books=books)
