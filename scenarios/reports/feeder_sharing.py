"""Where shared energy flows on the feeder: the report's view of P2P trades (or a
sharing key's allocations) by bus.

Sharing moves no energy by itself (the feeder's power flows are the metered ones), but
it says whose surplus covers whose consumption; this view puts that on the feeder.
Each trade of ``trades.parquet`` (seller = the member whose surplus is shared, buyer =
the member it goes to, ``energy_kwh``) is placed at its seller's and its buyer's bus
(``households.parquet``). Per bus, over the run [kWh]:

- ``received_kwh``: energy its members bought (were allocated);
- ``given_kwh``: energy its members sold (shared);
- ``net_received_kwh`` = received − given;
- ``within_bus_kwh``: of it, traded between members of the same bus.

and :func:`shared_flows_between_buses` gives the whole seller-bus × buyer-bus matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scenarios.reports.run import NAMES_AXIS
from scenarios.results.blocks import read_blocks

_TRADE_COLUMNS = ["buyer_id", "seller_id", "energy_kwh"]


def _bus_index(households: pd.DataFrame, bus_order: Sequence[str]) -> tuple[dict, list[str]]:
    """Each member's bus position, and the buses: ``bus_order`` then any other bus."""
    if households["bus"].isna().any():
        raise ValueError("households.parquet: a member has no bus (a run without the feeder)")
    buses = households["bus"].astype(str).to_numpy()
    order = list(dict.fromkeys([*map(str, bus_order), *buses]))
    position = {b: i for i, b in enumerate(order)}
    ids = households["agent_id"].astype(str)
    agent_bus = {a: position[b] for a, b in zip(ids, buses, strict=True)}
    return agent_bus, order


def shared_flows_between_buses(
    trades: str | Path | pd.DataFrame,
    households: pd.DataFrame,
    bus_order: Sequence[str] = (),
) -> pd.DataFrame:
    """Energy shared from each bus (rows, the sellers') to each bus (columns, the
    buyers') over the run [kWh]; the buses in ``bus_order`` (the feeder's, from the slack)
    then in households' order.

    ``trades``: a ``trades.parquet`` path (read a block of rows at a time) or its table.

    Raises
    ------
    ValueError
        When a member has no bus (the run had no feeder) or a trade names a member
        ``households`` does not have.
    """
    agent_bus, order = _bus_index(households, bus_order)
    k = len(order)
    flows = np.zeros(k * k)
    batches: Iterable[pd.DataFrame]
    if isinstance(trades, pd.DataFrame):
        batches = [trades[_TRADE_COLUMNS]]
    else:
        batches = (b.to_pandas() for b in read_blocks(Path(trades), _TRADE_COLUMNS))
    for batch in batches:
        seller = batch["seller_id"].astype(str).map(agent_bus)
        buyer = batch["buyer_id"].astype(str).map(agent_bus)
        unknown = seller.isna() | buyer.isna()
        if unknown.any():
            row = batch[unknown].iloc[0]
            raise ValueError(
                f"trades.parquet: a trade between {row['seller_id']} and {row['buyer_id']} "
                "names a member households lack"
            )
        seller = seller.to_numpy(dtype=np.int64)
        buyer = buyer.to_numpy(dtype=np.int64)
        energy = batch["energy_kwh"].to_numpy(dtype=np.float64)
        flows += np.bincount(seller * k + buyer, energy, k * k)
    return pd.DataFrame(flows.reshape(k, k), index=order, columns=order).rename_axis(
        index="from_bus", columns="to_bus"
    )


def shared_energy_by_bus(flows: pd.DataFrame) -> pd.DataFrame:
    """Per bus: ``received_kwh``, ``given_kwh``, ``net_received_kwh``, ``within_bus_kwh``
    (module docstring) from :func:`shared_flows_between_buses`."""
    matrix = flows.to_numpy()
    received, given = matrix.sum(axis=0), matrix.sum(axis=1)
    return pd.DataFrame(
        {
            "bus": flows.index.astype(str),
            "received_kwh": received,
            "given_kwh": given,
            "net_received_kwh": received - given,
            "within_bus_kwh": np.diag(matrix).copy(),
        }
    )


def feeder_sharing_figures(flows: pd.DataFrame, what: str = "shared") -> list[go.Figure]:
    """Bars of the energy each bus received and gave, and the bus-to-bus heatmap [kWh];
    ``what`` names the energy ("shared" for a sharing key, "traded P2P" for auctions).
    None when nothing was shared."""
    by_bus = shared_energy_by_bus(flows)
    total = float(by_bus["received_kwh"].sum())
    if total <= 0:
        return []
    active = by_bus[(by_bus["received_kwh"] > 0) | (by_bus["given_kwh"] > 0)]
    within = float(by_bus["within_bus_kwh"].sum())
    bars = go.Figure()
    bars.add_trace(
        go.Bar(
            y=active["bus"],
            x=active["received_kwh"],
            name=f"received (members' {what} purchases) [kWh]",
            orientation="h",
            marker_color="#1f77b4",
        )
    )
    bars.add_trace(
        go.Bar(
            y=active["bus"],
            x=-active["given_kwh"],
            name=f"given (members' {what} sales, drawn negative) [kWh]",
            orientation="h",
            marker_color="#ff7f0e",
        )
    )
    bars.update_layout(
        title=f"Where {what} energy flows on the feeder: {total:,.1f} kWh over the run, "
        f"{within:,.1f} kWh of it within one bus",
        barmode="relative",
        xaxis_title="energy over the run [kWh] (received +, given −)",
        yaxis_title="bus (from the slack)",
        yaxis=NAMES_AXIS,
        height=max(420, 18 * len(active) + 160),
    )
    keep = [b for b in flows.index if b in set(active["bus"])]
    sub = flows.loc[keep, keep]
    heat = go.Figure(
        go.Heatmap(
            z=np.where(sub.to_numpy() > 0, sub.to_numpy(), np.nan),
            x=keep,
            y=keep,
            colorscale="Blues",
            colorbar={"title": "kWh"},
            hovertemplate="from %{y} to %{x}: %{z:.2f} kWh<extra></extra>",
        )
    )
    heat.update_layout(
        title=f"{what[:1].upper()}{what[1:]} energy from bus (sellers) to bus (buyers) over "
        "the run [kWh]",
        xaxis_title="to bus (buyers)",
        yaxis_title="from bus (sellers)",
        xaxis={"type": "category"},
        yaxis=NAMES_AXIS,
    )
    return [bars, heat]
