"""The report's heat-pump figures: indoor temperatures against the comfort band, the
heat pumps' power and the fleet's COP against the outdoor temperature.

The per-interval fleet numbers (:class:`~scenarios.results.fleet_heat.FleetHeat`) come
from the run's own accumulation while it wrote its windows, or from ``agents.parquet``
read in record batches (the columns these figures need), so a year of a thousand
households need not fit in memory. A long run is drawn in time buckets
(:mod:`scenarios.reports.buckets`): the warmest house's maximum, the coldest's minimum
and the median's mean per bucket, the unmet heat summed; the scatter figures one point
per bucket (mean outdoor temperature, mean power, the bucket's heat over its electric
energy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
from plotly.subplots import make_subplots

from scenarios.reports.buckets import Buckets
from scenarios.results.blocks import read_blocks
from scenarios.results.fleet_heat import FleetHeat, FleetHeatStream, has_heat_pumps

_COLUMNS = ["t", "heat_pump_kwh", "indoor_temp_c"]


def fleet_heat(
    agents_path: Path, households: pd.DataFrame, outdoor_temp_c: np.ndarray, interval_hours: float
) -> FleetHeat:
    """The heat-pump fleet's temperatures, electric energy and heat, interval by interval.

    ``agents.parquet`` holds each interval's households in the order of ``households``
    (households.parquet), intervals in order; a block that is not whole intervals in that
    layout is an error, not a silently wrong figure.
    """
    n, n_t = len(households), len(outdoor_temp_c)
    stream = FleetHeatStream(households, n_t, interval_hours)
    pending: list[pa.RecordBatch] = []
    for batch in read_blocks(agents_path, _COLUMNS):
        pending.append(batch)
        table = pa.Table.from_batches(pending)
        whole = len(table) // n * n
        pending = table.slice(whole).to_batches()
        if whole == 0:
            continue
        t, el, temp = (table.column(c).to_numpy()[:whole].reshape(-1, n) for c in _COLUMNS)
        if not (t == t[:, :1]).all():
            raise ValueError(f"{agents_path}: rows are not whole intervals of {n} households")
        rows = t[:, 0]
        stream.add(rows, el, temp.astype(np.float64), outdoor_temp_c[rows])
    if sum(len(b) for b in pending) or not stream.complete:
        raise ValueError(f"{agents_path}: does not hold {n_t} whole intervals of {n} households")
    return stream.result()


def heat_figures(
    intervals: pd.DataFrame,
    fleet: Path | FleetHeat | None,
    households: pd.DataFrame,
    band_c: tuple[float, float],
    interval_hours: float,
) -> list[go.Figure]:
    """Indoor temperatures, heat-pump power and COP; none for a run without heat pumps.
    ``fleet``: the run's accumulated :class:`FleetHeat`, or its agents.parquet to read it
    from."""
    if not has_heat_pumps(households):
        return []
    n_hp = int((households["hp_source"].to_numpy() > 0).sum())
    t_out = intervals["outdoor_temp_c"].to_numpy()
    if not isinstance(fleet, FleetHeat):
        if fleet is None:
            raise ValueError("heat figures: neither the run's fleet numbers nor its agents file")
        fleet = fleet_heat(fleet, households, t_out, interval_hours)
    b = Buckets.of(intervals["timestamp"], interval_hours)
    ts = b.x(intervals["timestamp"])
    kwh = f"[kWh {b.per()}]" if b.bucketed else "[kWh]"

    temp = make_subplots(specs=[[{"secondary_y": True}]])
    for y, name, dash, how in (
        (fleet.indoor_max_c, "warmest house", "dot", "max"),
        (fleet.indoor_median_c, "median house", "solid", "mean"),
        (fleet.indoor_min_c, "coldest house", "dot", "min"),
    ):
        temp.add_trace(
            go.Scatter(
                x=ts,
                y=b.reduce(y, how),
                name=name + (f" ({how} {b.per()})" if b.bucketed else ""),
                mode="lines",
                line={"color": "#d62728", "dash": dash},
            )
        )
    temp.add_trace(
        go.Bar(
            x=ts,
            y=b.reduce(intervals["unmet_heat_kwh"], "sum"),
            name=f"heat not delivered {kwh}",
            marker_color="#1f77b4",
        ),
        secondary_y=True,
    )
    for limit, end in zip(band_c, ("lower", "upper"), strict=True):
        temp.add_hline(
            y=limit,
            line_dash="dash",
            line_color="grey",
            annotation_text=f"comfort band, {end} end {limit:g} °C",
            secondary_y=False,
        )
    temp.update_layout(
        title=f"Indoor temperature of the {n_hp} heat-pump households against the comfort band"
        + b.suffix(),
        hovermode="x unified",
    )
    temp.update_yaxes(title_text="indoor temperature [°C]", secondary_y=False)
    temp.update_yaxes(title_text=f"unmet heat {kwh}", secondary_y=True)

    one = f"one bucket of {b.hours:g} h (means)" if b.bucketed else "one interval"
    t_drawn = b.reduce(t_out, "mean")
    power = go.Figure(
        go.Scatter(
            x=t_drawn,
            y=b.reduce(intervals["heat_pump_kwh"].to_numpy() / interval_hours, "mean"),
            mode="markers",
            name=one,
            marker={"size": 4, "color": "#9467bd", "opacity": 0.5},
        )
    )
    power.update_layout(
        title="Heat-pump power (backup heaters included) against the outdoor temperature",
        xaxis_title="outdoor temperature [°C]",
        yaxis_title="community heat-pump power [kW]",
    )

    drawn = fleet.electric_kwh > 0
    spf = fleet.heat_kwh.sum() / fleet.electric_kwh.sum() if drawn.any() else float("nan")
    heat_kwh = np.asarray(b.reduce(fleet.heat_kwh, "sum"))
    electric_kwh = np.asarray(b.reduce(fleet.electric_kwh, "sum"))
    ratio = np.divide(
        heat_kwh, electric_kwh, out=np.full(len(heat_kwh), np.nan), where=electric_kwh > 0
    )
    cop = go.Figure(
        go.Scatter(
            x=t_drawn,
            y=ratio,
            mode="markers",
            name=one,
            marker={"size": 4, "color": "#2ca02c", "opacity": 0.5},
        )
    )
    cop.update_layout(
        title="Fleet COP (heat delivered / electric energy, backup included) against the "
        f"outdoor temperature; over the run {spf:.2f}",
        xaxis_title="outdoor temperature [°C]",
        yaxis_title="COP [-]",
    )
    return [temp, power, cop]
