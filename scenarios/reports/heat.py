"""The report's heat-pump figures: indoor temperatures against the comfort band, the
heat pumps' power and the fleet's COP against the outdoor temperature.

The per-household numbers come from ``agents.parquet``, read in record batches (the
columns these figures need), so a year of a thousand households need not fit in memory.
The heat delivered is not a results column: it follows from each heat pump's electric
energy and its COP at the interval's outdoor temperature by the device's own formulas
(:func:`agents.devices.thermal.heat_pump_cop`, :func:`~agents.devices.thermal.heat_delivered_kwh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.parquet as pq
from plotly.subplots import make_subplots

from agents.devices.thermal import heat_delivered_kwh, heat_pump_cop

GROUND_SOURCE = 2
"""``hp_source`` of a ground-source heat pump (1 air, 0 none; households.parquet)."""
_COLUMNS = ["t", "heat_pump_kwh", "indoor_temp_c"]


@dataclass(frozen=True)
class FleetHeat:
    """Per interval over the heat-pump households: indoor temperature extremes and
    median [°C], electric energy and heat delivered [kWh]."""

    indoor_min_c: np.ndarray
    indoor_median_c: np.ndarray
    indoor_max_c: np.ndarray
    electric_kwh: np.ndarray
    heat_kwh: np.ndarray


def fleet_heat(
    agents_path: Path, households: pd.DataFrame, outdoor_temp_c: np.ndarray, interval_hours: float
) -> FleetHeat:
    """The heat-pump fleet's temperatures, electric energy and heat, interval by interval.

    ``agents.parquet`` holds each interval's households in the order of ``households``
    (households.parquet), intervals in order; a block that is not whole intervals in that
    layout is an error, not a silently wrong figure.
    """
    n, n_t = len(households), len(outdoor_temp_c)
    owner = households["hp_source"].to_numpy() > 0
    hp = households[owner]
    ground = hp["hp_source"].to_numpy() == GROUND_SOURCE
    hp_max_kwh = hp["hp_power_kw"].to_numpy() * interval_hours
    params = [hp[c].to_numpy() for c in ("hp_sink_offset_c", "hp_sink_slope")]
    params += [hp[c].to_numpy() for c in ("hp_cop_a", "hp_cop_b", "hp_cop_c")]
    out = {k: np.full(n_t, np.nan) for k in ("lo", "mid", "hi", "el", "heat")}
    pending: list[pa.RecordBatch] = []
    for batch in pq.ParquetFile(agents_path).iter_batches(columns=_COLUMNS):
        pending.append(batch)
        table = pa.Table.from_batches(pending)
        whole = len(table) // n * n
        pending = table.slice(whole).to_batches()
        if whole == 0:
            continue
        cols = [table.column(c).to_numpy()[:whole].reshape(-1, n) for c in _COLUMNS]
        t, el, temp = cols[0], cols[1][:, owner], cols[2][:, owner]
        if not (t == t[:, :1]).all():
            raise ValueError(f"{agents_path}: rows are not whole intervals of {n} households")
        rows = t[:, 0]
        out["lo"][rows], out["hi"][rows] = temp.min(axis=1), temp.max(axis=1)
        out["mid"][rows] = np.median(temp, axis=1)
        cop = heat_pump_cop(outdoor_temp_c[rows, None], ground, *params)
        out["el"][rows] = el.sum(axis=1)
        out["heat"][rows] = heat_delivered_kwh(el, hp_max_kwh, cop).sum(axis=1)
    if sum(len(b) for b in pending) or np.isnan(out["el"]).any():
        raise ValueError(f"{agents_path}: does not hold {n_t} whole intervals of {n} households")
    return FleetHeat(out["lo"], out["mid"], out["hi"], out["el"], out["heat"])


def heat_figures(
    intervals: pd.DataFrame,
    agents_path: Path,
    households: pd.DataFrame,
    band_c: tuple[float, float],
    interval_hours: float,
) -> list[go.Figure]:
    """Indoor temperatures, heat-pump power and COP; none for a run without heat pumps."""
    n_hp = int((households["hp_source"].to_numpy() > 0).sum())
    if n_hp == 0:
        return []
    t_out = intervals["outdoor_temp_c"].to_numpy()
    fleet = fleet_heat(agents_path, households, t_out, interval_hours)
    ts = intervals["timestamp"]

    temp = make_subplots(specs=[[{"secondary_y": True}]])
    for y, name, dash in (
        (fleet.indoor_max_c, "warmest house", "dot"),
        (fleet.indoor_median_c, "median house", "solid"),
        (fleet.indoor_min_c, "coldest house", "dot"),
    ):
        temp.add_trace(
            go.Scatter(x=ts, y=y, name=name, mode="lines", line={"color": "#d62728", "dash": dash})
        )
    temp.add_trace(
        go.Bar(
            x=ts,
            y=intervals["unmet_heat_kwh"],
            name="heat not delivered [kWh]",
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
        title=f"Indoor temperature of the {n_hp} heat-pump households against the comfort band",
        hovermode="x unified",
    )
    temp.update_yaxes(title_text="indoor temperature [°C]", secondary_y=False)
    temp.update_yaxes(title_text="unmet heat [kWh]", secondary_y=True)

    power = go.Figure(
        go.Scatter(
            x=t_out,
            y=intervals["heat_pump_kwh"].to_numpy() / interval_hours,
            mode="markers",
            name="one interval",
            marker={"size": 4, "color": "#9467bd", "opacity": 0.5},
        )
    )
    power.update_layout(
        title="Heat-pump power (backup heaters included) against the outdoor temperature",
        xaxis_title="outdoor temperature [°C]",
        yaxis_title="community heat-pump power [kW]",
    )

    drawn = fleet.electric_kwh > 0
    ratio = np.divide(fleet.heat_kwh, fleet.electric_kwh, out=np.full(len(ts), np.nan), where=drawn)
    spf = fleet.heat_kwh.sum() / fleet.electric_kwh.sum() if drawn.any() else float("nan")
    cop = go.Figure(
        go.Scatter(
            x=t_out,
            y=ratio,
            mode="markers",
            name="one interval",
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
