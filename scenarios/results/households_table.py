"""The household table (``households.parquet``): each household's bus and sampled
devices, for a run and for a live market of the same scenario; a run's table also holds
each household's reliability scores over the run's final window (the schema's
households.parquet columns, :mod:`market.reliability`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from agents.households.table import Households
from grid import assign_households
from scenarios.config.preflight import scenario_feeder
from scenarios.config.schema import Scenario
from scenarios.engine.inputs import community_households
from scenarios.results.schema import HOUSEHOLDS_FILE, columns


def households_frame(
    hh: Households, buses: np.ndarray | None, scores: Mapping[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """``agent_id``, ``bus`` (None without the feeder in the run), then the devices, then
    a run's reliability scores (``scores``: the schema's households.parquet columns by
    name, every one of them; None for the table of a scenario not yet run)."""
    frame = hh.to_frame().reset_index()
    frame.insert(1, "bus", buses if buses is not None else None)
    if scores is not None:
        for c in columns(HOUSEHOLDS_FILE):
            frame[c.name] = np.asarray(scores[c.name], dtype=c.dtype)
    return frame


def scenario_households(scenario: Scenario) -> pd.DataFrame:
    """The table a run of ``scenario`` writes, without running it: the households drawn
    from its seed, placed on its feeder as the grid check places them."""
    hh = community_households(scenario)
    buses = None
    if scenario.grid.check != "off":
        feeder = scenario_feeder(scenario, hh.n)
        labels = feeder.buses["bus"].astype(str).to_numpy()
        buses = labels[assign_households(feeder, hh.n, scenario.simulation.seed)]
    return households_frame(hh, buses)
