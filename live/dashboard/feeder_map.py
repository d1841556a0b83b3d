"""The dashboard's feeder map: drawn once, then restyled interval by interval.

The map's layout is computed once per source (:class:`MapBuilder`), as the server starts
(:meth:`MapBuilder.prepare`): from the scenario's feeder when the source knows it (a
run's manifest, a live market's scenario: SimBench geodata or the tree layout of
:mod:`grid.layout`), else from the branches of the first feeder state a live market
publishes (``grid.lines``' ``from_bus`` / ``to_bus``). The page fetches the whole figure
once (``/api/feeder/map``); every feeder state it receives afterwards
(``/api/intervals/{t}/feeder`` and the pushed events) carries ``map``: the colours, sizes
and texts of that interval for ``Plotly.restyle``
(:func:`scenarios.reports.feeder_map.restyle_arrays`), so a new interval re-colours the
drawn map instead of re-drawing it. The drawing rules are the report's
(:mod:`scenarios.reports.feeder_map`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from grid.errors import FeederError
from grid.layout import FeederLayout, feeder_layout, layout_from_branches
from scenarios.reports.feeder_map import (
    MapBase,
    grid_stress,
    map_base,
    map_figure,
    map_style,
    restyle_arrays,
)

#: The voltage band drawn when the source does not know the scenario's (its defaults).
DEFAULT_V_LIMITS = (0.95, 1.05)


def _column(rows: list[dict[str, Any]], key: str, order: tuple[str, ...], col: str) -> np.ndarray:
    out = np.full(len(order), np.nan)
    pos = {name: i for i, name in enumerate(order)}
    for row in rows:
        i = pos.get(str(row.get(key)))
        value = row.get(col)
        if i is not None and isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = float(value)
    return out


def style_of(base: MapBase, feeder: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The map style of one feeder state (``/api/intervals/{t}/feeder``'s rows, matched
    to the layout by bus and line label; grey where a value is missing)."""
    lay = base.layout
    buses = list((feeder or {}).get("buses") or [])
    lines = list((feeder or {}).get("lines") or [])
    return map_style(
        base,
        _column(buses, "bus", lay.bus, "v_pu"),
        _column(buses, "bus", lay.bus, "p_kw"),
        _column(buses, "bus", lay.bus, "nodal_price_per_kwh"),
        _column(lines, "line", lay.line, "loading_frac"),
        _column(lines, "line", lay.line, "p_kw"),
    )


class MapBuilder:
    """The map of one source, its layout computed once (thread-safe).

    Parameters
    ----------
    spec
        The scenario's ``grid.feeder`` (``ieee33``, ``radial:<n>``, ``simbench:<code>``,
        a feeder file), or None: then the layout comes from a feeder state's branches.
    n_households
        The community's size (``radial:<households>`` is sized by it).
    household_bus
        Household id → its bus label, for the buses' hover.
    v_limits, currency
        The voltage band the colours span; the currency of the nodal prices.
    """

    def __init__(
        self,
        spec: str | None,
        n_households: int,
        household_bus: Mapping[str, str] | None,
        v_limits: tuple[Any, Any],
        currency: str = "EUR",
    ) -> None:
        self.spec = spec
        self.n_households = n_households
        self.household_bus = dict(household_bus or {})
        lo, hi = v_limits
        self.v_limits = (
            float(lo if lo is not None else DEFAULT_V_LIMITS[0]),
            float(hi if hi is not None else DEFAULT_V_LIMITS[1]),
        )
        self.currency = currency
        self._lock = threading.Lock()
        self._base: MapBase | None = None
        self.problem: str | None = None

    def _layout(self, feeder: Mapping[str, Any] | None) -> FeederLayout | None:
        if self.spec:
            from grid.feeder_names import load_feeder

            return feeder_layout(load_feeder(self.spec, households=self.n_households))
        lines = list((feeder or {}).get("lines") or [])
        if not lines:
            return None
        buses = [str(b.get("bus")) for b in (feeder or {}).get("buses") or []]
        return layout_from_branches(
            buses,
            [str(x.get("line")) for x in lines],
            [str(x.get("from_bus")) for x in lines],
            [str(x.get("to_bus")) for x in lines],
        )

    def base(self, feeder: Mapping[str, Any] | None = None, wait: bool = True) -> MapBase | None:
        """The map's static part, built on first use; None while another thread builds
        it (``wait=False``), when it cannot be built (:attr:`problem` says why), or, with
        no scenario feeder, before a feeder state with branches is known."""
        if self._base is not None or self.problem is not None:
            return self._base
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            if self._base is None and self.problem is None:
                try:
                    layout = self._layout(feeder)
                except FeederError as exc:
                    self.problem = f"no feeder map: {exc}"
                    return None
                if layout is not None:
                    self._base = map_base(layout, self.household_bus, self.v_limits, self.currency)
            return self._base
        finally:
            self._lock.release()

    def arrays(self, feeder: Mapping[str, Any]) -> dict[str, Any] | None:
        """The restyle arrays of one feeder state; None while the map is not built (the
        server never waits for a feeder to load while it pushes an interval)."""
        base = self.base(feeder, wait=False)
        return None if base is None else restyle_arrays(base, style_of(base, feeder))

    def figure(self, feeder: Mapping[str, Any] | None, title: str) -> dict[str, Any] | None:
        """The whole map figure (plotly JSON) showing ``feeder``; None when there is
        no map."""
        base = self.base(feeder, wait=True)
        if base is None:
            return None
        fig = map_figure(base, style_of(base, feeder), title)
        fig.update_layout(template="plotly_white", margin={"l": 20, "r": 20, "t": 70, "b": 20})
        data: dict[str, Any] = json.loads(fig.to_json())
        return data

    def prepare(self) -> None:
        """Build the map now when the scenario's feeder is known (a SimBench grid takes
        seconds to load), else import the layout's libraries (seconds, once), so that no
        pushed interval waits for either: called as the server starts, before it serves."""
        if self.spec:
            self.base(None, wait=True)
        else:
            import pandapower.plotting.generic_geodata  # noqa: F401


def opening_interval(intervals: pd.DataFrame, v_limits: tuple[Any, Any]) -> int:
    """The interval a finished run opens on: the worst grid state when some interval
    broke a limit (the highest :func:`scenarios.reports.feeder_map.grid_stress`), else
    the interval with the most P2P trade (the first such; the last interval when nothing
    traded, as before)."""
    n = len(intervals)
    if n == 0:
        return -1
    grid = ("violations_before_reclear", "v_min_pu", "v_max_pu", "max_line_loading_frac")
    if (
        all(c in intervals for c in grid)
        and (
            pd.to_numeric(intervals["violations_before_reclear"], errors="coerce").fillna(0) > 0
        ).any()
    ):
        lo, hi = v_limits
        stress = grid_stress(
            intervals["v_min_pu"],
            intervals["v_max_pu"],
            intervals["max_line_loading_frac"],
            (
                float(lo if lo is not None else DEFAULT_V_LIMITS[0]),
                float(hi if hi is not None else DEFAULT_V_LIMITS[1]),
            ),
        )
        if np.isfinite(stress).any():
            return int(np.nanargmax(stress))
    p2p = pd.to_numeric(intervals["p2p_kwh"], errors="coerce").fillna(0.0).to_numpy()
    return int(np.argmax(p2p)) if p2p.max(initial=0.0) > 0 else n - 1
