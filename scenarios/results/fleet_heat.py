"""The heat-pump fleet's numbers per interval (the report's heat figures,
:mod:`scenarios.reports.heat`), accumulated block by block: from the engine's windows
while a run is written (so the report needs no agents file, whatever ``[output] agents``
says), or from agents.parquet's record batches.

The heat delivered is not a results column: it follows from each heat pump's electric
energy and its COP at the interval's outdoor temperature by the device's own formulas
(:func:`agents.devices.thermal.heat_pump_cop`, :func:`~agents.devices.thermal.heat_delivered_kwh`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from agents.devices.thermal import heat_delivered_kwh, heat_pump_cop

GROUND_SOURCE = 2
"""``hp_source`` of a ground-source heat pump (1 air, 0 none; households.parquet)."""


@dataclass(frozen=True)
class FleetHeat:
    """Per interval over the heat-pump households: indoor temperature extremes and
    median [°C], electric energy and heat delivered [kWh]."""

    indoor_min_c: np.ndarray
    indoor_median_c: np.ndarray
    indoor_max_c: np.ndarray
    electric_kwh: np.ndarray
    heat_kwh: np.ndarray


def has_heat_pumps(households: pd.DataFrame) -> bool:
    return bool((households["hp_source"].to_numpy() > 0).any())


class FleetHeatStream:
    """:class:`FleetHeat` of ``n_t`` intervals, filled by :meth:`add` in any order of
    blocks; ``households`` is the run's table (households.parquet's columns, its order)."""

    def __init__(self, households: pd.DataFrame, n_t: int, interval_hours: float) -> None:
        self.n = len(households)
        self.owner = households["hp_source"].to_numpy() > 0
        hp = households[self.owner]
        self._ground = hp["hp_source"].to_numpy() == GROUND_SOURCE
        self._max_kwh = hp["hp_power_kw"].to_numpy() * interval_hours
        params = [hp[c].to_numpy() for c in ("hp_sink_offset_c", "hp_sink_slope")]
        self._params = params + [hp[c].to_numpy() for c in ("hp_cop_a", "hp_cop_b", "hp_cop_c")]
        self._out = {k: np.full(n_t, np.nan) for k in ("lo", "mid", "hi", "el", "heat")}

    def add(
        self, rows: np.ndarray, el_kwh: np.ndarray, temp_c: np.ndarray, outdoor_c: np.ndarray
    ) -> None:
        """Intervals ``rows``: every household's heat-pump energy and indoor temperature
        (T, n), the outdoor temperature (T,)."""
        el, temp, out = el_kwh[:, self.owner], temp_c[:, self.owner], self._out
        out["lo"][rows], out["hi"][rows] = temp.min(axis=1), temp.max(axis=1)
        out["mid"][rows] = np.median(temp, axis=1)
        cop = heat_pump_cop(np.asarray(outdoor_c)[:, None], self._ground, *self._params)
        out["el"][rows] = el.sum(axis=1)
        out["heat"][rows] = heat_delivered_kwh(el, self._max_kwh, cop).sum(axis=1)

    @property
    def complete(self) -> bool:
        return not np.isnan(self._out["el"]).any()

    def result(self) -> FleetHeat:
        o = self._out
        return FleetHeat(o["lo"], o["mid"], o["hi"], o["el"], o["heat"])
