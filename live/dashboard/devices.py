"""The households' static columns in the dashboard's household table (a run's and a live
market's alike): each household's bus and its devices' sizes, from households.parquet's
columns (:func:`scenarios.results.households_table.scenario_households`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: household-table column ← households.parquet column (the sampled devices)
DEVICE_COLUMNS = {
    "pv_kwp": "pv_kwp",
    "battery_kwh_capacity": "battery_kwh",
    "ev_kwh_capacity": "ev_kwh",
    "heat_pump_kw": "hp_power_kw",
}
#: household-table column ← households.parquet column, yes/no (null where unknown)
FLAG_COLUMNS = {"ev_v2g": "ev_v2g"}


def static_columns(static: pd.DataFrame) -> dict[str, Any]:
    """``bus``, the device sizes and the V2G flag of the household table for the rows of
    ``static`` (households.parquet's columns, in the table's order); null where unknown."""
    n = len(static)
    return {
        "bus": static["bus"].to_numpy() if "bus" in static else None,
        **{
            name: static[column].to_numpy(float) if column in static else np.full(n, np.nan)
            for name, column in DEVICE_COLUMNS.items()
        },
        **{
            name: static[column].astype(object).where(static[column].notna(), None).to_numpy()
            if column in static
            else np.full(n, None)
            for name, column in FLAG_COLUMNS.items()
        },
    }
