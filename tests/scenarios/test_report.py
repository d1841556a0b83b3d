"""The report's feeder figures name buses and lines as they are called."""

import numpy as np
import pandas as pd

from scenarios.reports.grid_tables import grid_tables
from scenarios.reports.run import grid_figures


def test_bus_and_line_names_are_categories_not_dates_or_numbers() -> None:
    # ieee33's lines are called "1-2", "2-3", …: plotly's axis autodetection reads such
    # labels as dates ("1-2" → 2 Jan 2001) and bus names "1", "2", … as numbers
    stamps = pd.date_range("2026-06-21", periods=2, freq="15min", tz="Europe/Berlin")
    intervals = pd.DataFrame(
        {
            "t": [0, 1],
            "timestamp": stamps,
            "v_min_pu": [0.97, 0.96],
            "v_max_pu": [1.0, 1.0],
            "curtailed_kwh": [0.0, 0.0],
            "violations_before_reclear": [0, 0],
        }
    )
    names = ["1", "2", "10"]
    buses = pd.DataFrame(
        {
            "t": np.repeat([0, 1], 3),
            "bus": names * 2,
            "v_pu": [1.0, 0.99, 0.98, 1.0, 0.985, 0.97],
            "nodal_price_per_kwh": [0.1, 0.2, 0.3, np.nan, np.nan, np.nan],
        }
    )
    line_names = ["1-2", "2-10"]
    lines = pd.DataFrame(
        {"t": np.repeat([0, 1], 2), "line": line_names * 2, "loading_frac": [0.5, 0.2, 0.6, 0.1]}
    )
    grid = grid_tables(buses, lines, intervals["timestamp"])
    voltage, _band, loading, _curtailment, nodal = grid_figures(intervals, grid, 0.95, 1.05, "EUR")
    for fig, labels in ((voltage, names), (loading, line_names), (nodal, names)):
        assert fig.layout.yaxis.type == "category"
        assert list(fig.data[0].y) == labels  # feeder order, as written
    assert loading.data[0].z.tolist() == [[50.0, 60.0], [20.0, 10.0]]
