"""The feeder state the dashboard draws (bus voltages, injections and nodal prices, line
loadings and flows): from a run's ``buses.parquet``/``lines.parquet`` as arrays
``[interval, element]`` (:class:`Feeder`), or from a live result's ``grid.buses`` /
``grid.lines`` (:func:`live_feeder`); both drawn as :func:`feeder_payload`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from live.dashboard.records import jsonable
from live.payloads import number
from scenarios.results.schema import BUSES_FILE, LINES_FILE


def depths(buses: list[str], parent: dict[str, str]) -> list[int]:
    """Each bus's hops from the slack bus, walking ``parent`` (a line's to_bus → its
    from_bus); a loop stops after as many hops as there are buses."""
    out = []
    for bus in buses:
        hops, cur = 0, bus
        while cur in parent and hops <= len(buses):
            cur, hops = parent[cur], hops + 1
        out.append(hops)
    return out


def feeder_payload(
    t: int,
    timestamp: Any,
    limits: tuple[Any, Any],
    curtailed_kwh: Any,
    buses: list[dict[str, Any]],
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    """What ``/api/intervals/{t}/feeder`` returns; ``limits`` the voltage band [pu]."""
    return {
        "t": t,
        "timestamp": timestamp,
        "v_min_limit_pu": limits[0],
        "v_max_limit_pu": limits[1],
        "curtailed_kwh": curtailed_kwh,
        "buses": buses,
        "lines": lines,
    }


@dataclass
class Feeder:
    """Buses and lines of the feeder with values per interval (``[t, element]``)."""

    bus: np.ndarray  # labels, feeder order
    depth: np.ndarray  # hops from the slack bus
    v_pu: np.ndarray
    p_kw: np.ndarray
    nodal_price_per_kwh: np.ndarray
    line: np.ndarray
    from_bus: np.ndarray
    to_bus: np.ndarray
    loading_frac: np.ndarray
    line_p_kw: np.ndarray

    def elements(self, t: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The bus and line rows of interval ``t``."""
        buses = [
            {
                "bus": str(b),
                "depth": int(d),
                "v_pu": jsonable(float(v)),
                "p_kw": jsonable(float(p)),
                "nodal_price_per_kwh": jsonable(float(c)),
            }
            for b, d, v, p, c in zip(
                self.bus,
                self.depth,
                self.v_pu[t],
                self.p_kw[t],
                self.nodal_price_per_kwh[t],
                strict=True,
            )
        ]
        lines = [
            {
                "line": str(n),
                "from_bus": str(a),
                "to_bus": str(b),
                "loading_frac": jsonable(float(x)),
                "p_kw": jsonable(float(p)),
            }
            for n, a, b, x, p in zip(
                self.line,
                self.from_bus,
                self.to_bus,
                self.loading_frac[t],
                self.line_p_kw[t],
                strict=True,
            )
        ]
        return buses, lines


def read_feeder(
    buses: pd.DataFrame, lines: pd.DataFrame, n_t: int, problems: list[str]
) -> Feeder | None:
    """A run's feeder tables as arrays; None (and a problem) unless they hold one row per
    element and interval."""
    bus_order = list(dict.fromkeys(buses.loc[buses["t"] == buses["t"].min(), "bus"].astype(str)))
    line_order = list(dict.fromkeys(lines.loc[lines["t"] == lines["t"].min(), "line"].astype(str)))
    nb, nl = len(bus_order), len(line_order)
    if len(buses) != n_t * nb or len(lines) != n_t * nl:
        problems.append(
            f"{BUSES_FILE}/{LINES_FILE}: expected one row per element and interval "
            f"({n_t} × {nb} buses, {n_t} × {nl} lines), found {len(buses)} and {len(lines)}"
        )
        return None

    def grid_of(frame: pd.DataFrame, key: str, order: list[str], col: str) -> np.ndarray:
        pos = pd.Index(order).get_indexer(frame[key].astype(str))
        out = np.full((n_t, len(order)), np.nan)
        out[frame["t"].to_numpy(), pos] = frame[col].to_numpy(float)
        return out

    first = lines[lines["t"] == lines["t"].min()]
    link = dict(zip(first["to_bus"].astype(str), first["from_bus"].astype(str), strict=True))
    frm = first.set_index(first["line"].astype(str))
    return Feeder(
        bus=np.array(bus_order, dtype=object),
        depth=np.array(depths(bus_order, link), dtype=int),
        v_pu=grid_of(buses, "bus", bus_order, "v_pu"),
        p_kw=grid_of(buses, "bus", bus_order, "p_kw"),
        nodal_price_per_kwh=grid_of(buses, "bus", bus_order, "nodal_price_per_kwh"),
        line=np.array(line_order, dtype=object),
        from_bus=frm.loc[line_order, "from_bus"].astype(str).to_numpy(),
        to_bus=frm.loc[line_order, "to_bus"].astype(str).to_numpy(),
        loading_frac=grid_of(lines, "line", line_order, "loading_frac"),
        line_p_kw=grid_of(lines, "line", line_order, "p_kw"),
    )


def live_feeder(grid: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The bus and line rows of a live result's ``grid`` object (rows as in
    buses.parquet and lines.parquet); None when it carries no buses."""
    if not isinstance(grid, dict) or not isinstance(grid.get("buses"), list):
        return None
    buses = [b for b in grid["buses"] if isinstance(b, dict) and "bus" in b]
    lines = [x for x in grid.get("lines") or [] if isinstance(x, dict)]
    names = [str(b["bus"]) for b in buses]
    parent = {str(x.get("to_bus")): str(x.get("from_bus")) for x in lines}
    return (
        [
            {
                "bus": name,
                "depth": depth,
                "v_pu": number(b.get("v_pu")),
                "p_kw": number(b.get("p_kw")),
                "nodal_price_per_kwh": number(b.get("nodal_price_per_kwh")),
            }
            for name, depth, b in zip(names, depths(names, parent), buses, strict=True)
        ],
        [
            {
                "line": str(x.get("line", "")),
                "from_bus": str(x.get("from_bus", "")),
                "to_bus": str(x.get("to_bus", "")),
                "loading_frac": number(x.get("loading_frac")),
                "p_kw": number(x.get("p_kw")),
            }
            for x in lines
        ],
    )
