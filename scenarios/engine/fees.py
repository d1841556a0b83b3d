"""The grid fees of a run (``market.grid_fee_model``) and the utility's prices per interval.

Under ``market.mechanism = "sharing"`` every shared kWh carries the jurisdiction's grid
fee and levies (:mod:`market.sharing_fees`), billed to the member it is allocated to
(``trades.parquet`` ``grid_fee`` holds both); the residual supply is at retail.

``flat`` and ``distance`` charge P2P trades only (retail is the same in every interval);
``time_variable`` (§14a EnWG module 3, :func:`market.fees.time_variable_fee_per_kwh`)
sets each interval's level from its local clock time and month, on P2P energy and on
imports (:func:`market.fees.interval_tariffs`), in the run and in its no-P2P baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grid import electrical_distance_pu
from grid.pairing import Pairing
from market.fees import distance_fee_per_kwh, interval_tariffs, time_variable_fee_per_kwh
from market.settlement import Tariffs
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridStage


def scenario_tariffs(scenario: Scenario) -> Tariffs:
    """The utility's prices as the scenario states them."""
    mk = scenario.market
    return Tariffs(
        mk.retail_price_per_kwh,
        mk.feed_in_price_per_kwh,
        mk.grid_fee_per_kwh,
        mk.imbalance_shortfall_price_per_kwh,
        mk.imbalance_surplus_price_per_kwh,
    )


class GridFees:
    """Grid fee per P2P trade [currency], flat, by electrical distance or by time window,
    and the utility's prices of every interval."""

    def __init__(
        self, scenario: Scenario, grid: GridStage | None, stamps: pd.DatetimeIndex
    ) -> None:
        mk = scenario.market
        self.base = scenario_tariffs(scenario)
        self.by_bus: np.ndarray | None = None
        self.household_bus: np.ndarray | None = None
        self.by_t: np.ndarray | None = None
        self.standard_per_kwh = mk.grid_fee_levels_per_kwh[1]
        self.shared_per_kwh: float | None = None
        if mk.is_sharing:
            self.shared_per_kwh = mk.sharing.charges(mk.grid_fee_per_kwh).total_per_kwh
        if mk.grid_fee_model == "distance":
            if grid is None:  # the schema forbids it; keep the message if called directly
                raise ValueError("market.grid_fee_model = 'distance' needs grid.check != 'off'")
            self.by_bus = distance_fee_per_kwh(
                electrical_distance_pu(grid.feeder),
                grid.feeder.household_buses,
                mk.grid_fee_per_kwh,
                mk.grid_fee_distance_per_kwh,
            )
            self.household_bus = grid.bus
        elif mk.grid_fee_model == "time_variable":
            hour = stamps.hour + stamps.minute / 60.0
            self.by_t = time_variable_fee_per_kwh(
                np.asarray(hour, float),
                np.asarray(stamps.month),
                mk.grid_fee_levels_per_kwh,
                mk.grid_fee_low_hours,
                mk.grid_fee_high_hours,
                mk.grid_fee_window_months,
            )

    def tariffs(self, t: int | None) -> Tariffs:
        """The utility's prices of interval ``t`` (needed with the time-variable model)."""
        if self.by_t is None:
            return self.base
        if t is None:
            raise ValueError("market.grid_fee_model = 'time_variable' prices by interval: pass t")
        return interval_tariffs(self.base, float(self.by_t[t]), self.standard_per_kwh)

    def per_trade(self, pairing: Pairing, tariffs: Tariffs) -> np.ndarray:
        """Fee of each trade [currency], paid by its buyer, under the interval's
        ``tariffs``."""
        if self.shared_per_kwh is not None:
            return self.shared_per_kwh * pairing.energy_kwh
        if self.by_bus is None or self.household_bus is None:
            return tariffs.grid_fee_per_kwh * pairing.energy_kwh
        rate = self.by_bus[self.household_bus[pairing.buyer], self.household_bus[pairing.seller]]
        return rate * pairing.energy_kwh
