"""Where a feeder's buses are drawn: coordinates for a network map, once per feeder.

Two sources, in this order:

- **geodata** of the network where every bus has it (SimBench grids carry their buses'
  longitude and latitude, read by :mod:`grid.simbench_feeders` into the bus table's ``x``
  / ``y`` columns): ``x`` is the longitude scaled by the cosine of the mean latitude (so
  that a metre east is as long as a metre north on the map), ``y`` the latitude;
- otherwise a **tree layout** of the radial feeder: igraph's Reingold-Tilford layout
  rooted at the slack (what pandapower's generic coordinates,
  :func:`pandapower.plotting.generic_geodata.create_generic_coordinates`, compute; called
  directly, without building a pandapower network): the slack bus on top, each bus
  one row below its parent (``y = -hops from the slack``), laterals spread side by side.
  Deterministic: the same feeder gives the same coordinates. Never hand-placed.

A feeder where only some buses have geodata is laid out as a tree (a partial map would
mix two coordinate systems). Pure computation: nothing is read or written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from grid.errors import FeederError

if TYPE_CHECKING:
    from grid.feeders import Feeder


@dataclass(frozen=True)
class FeederLayout:
    """A feeder's buses placed on a plane, with its branches as pairs of positions.

    ``bus`` the bus labels in feeder order; ``x``/``y`` their coordinates (shape
    ``(n_bus,)``); ``line``, ``from_pos``, ``to_pos`` the branches (labels and bus
    positions, shape ``(n_line,)``); ``source`` is ``"geodata"`` or ``"tree"``.
    """

    bus: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    line: tuple[str, ...]
    from_pos: np.ndarray
    to_pos: np.ndarray
    source: Literal["geodata", "tree"]


def tree_coordinates(
    n_bus: int, from_pos: np.ndarray, to_pos: np.ndarray, slack: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tree layout of a radial network of ``n_bus`` buses (branches ``from_pos[k]`` →
    ``to_pos[k]``, bus positions) rooted at ``slack``: ``(x, y)``, ``y = -hops``.

    igraph's Reingold-Tilford tree layout rooted at the slack (the layout pandapower's
    generic coordinates use; called directly, so that a run's report does not import
    pandapower).

    Raises
    ------
    FeederError
        If a branch names a bus outside ``0..n_bus-1`` or the slack is not a bus.
    """
    frm = np.asarray(from_pos, dtype=np.int64)
    to = np.asarray(to_pos, dtype=np.int64)
    out_of_range = np.flatnonzero((frm < 0) | (frm >= n_bus) | (to < 0) | (to >= n_bus))
    bad = [
        f"branch {k}: {frm[k]} → {to[k]} names a bus outside 0..{n_bus - 1}" for k in out_of_range
    ]
    if not 0 <= slack < n_bus:
        bad.append(f"slack bus {slack} is outside 0..{n_bus - 1}")
    if bad:
        raise FeederError(bad, "feeder layout")
    import igraph  # only here: the map's layout is computed once per feeder

    graph = igraph.Graph(n=n_bus, edges=list(zip(frm.tolist(), to.tolist(), strict=True)))
    # Reingold-Tilford rooted at the slack: (spread, hops from the root) per bus
    points = np.array(graph.layout_reingold_tilford(root=[int(slack)]).coords, dtype=float)
    if not len(points):
        return np.zeros(0), np.zeros(0)
    return points[:, 0], -points[:, 1]


def _geodata(feeder: Feeder) -> tuple[np.ndarray, np.ndarray] | None:
    buses = feeder.buses
    if "x" not in buses or "y" not in buses:
        return None
    lon, lat = buses["x"].to_numpy(float), buses["y"].to_numpy(float)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None
    scale = np.cos(np.deg2rad(lat.mean()))
    return lon * scale, lat


def feeder_layout(feeder: Feeder) -> FeederLayout:
    """The coordinates of ``feeder``'s buses: its geodata where every bus has it, else
    the tree layout (:func:`tree_coordinates`); see the module docstring."""
    frm = feeder.lines["from_bus"].to_numpy(np.int64)
    to = feeder.lines["to_bus"].to_numpy(np.int64)
    geo = _geodata(feeder)
    if geo is not None:
        x, y = geo
        source: Literal["geodata", "tree"] = "geodata"
    else:
        x, y = tree_coordinates(feeder.n_bus, frm, to, feeder.slack_bus)
        source = "tree"
    return FeederLayout(
        bus=tuple(feeder.buses["bus"].astype(str)),
        x=np.asarray(x, float),
        y=np.asarray(y, float),
        line=tuple(feeder.lines["line"].astype(str)),
        from_pos=frm,
        to_pos=to,
        source=source,
    )


def layout_from_branches(
    buses: list[str], line: list[str], from_bus: list[str], to_bus: list[str]
) -> FeederLayout:
    """The tree layout of a network known only by its bus labels and branches (a live
    market's ``grid.buses`` / ``grid.lines``): the root is the bus no branch feeds.

    Raises
    ------
    FeederError
        If a branch names an unknown bus, or no single bus is fed by no branch.
    """
    pos = {b: i for i, b in enumerate(buses)}
    unknown = sorted({b for b in (*from_bus, *to_bus) if b not in pos})
    if unknown:
        raise FeederError(
            [f"branches name buses that are not listed: {', '.join(unknown[:10])}"],
            "feeder layout",
        )
    fed = {pos[b] for b in to_bus}
    roots = [i for i in range(len(buses)) if i not in fed]
    if len(roots) != 1:
        raise FeederError(
            [f"a radial feeder has one bus fed by no branch (the slack), found {len(roots)}"],
            "feeder layout",
        )
    frm = np.array([pos[b] for b in from_bus], dtype=np.int64)
    to = np.array([pos[b] for b in to_bus], dtype=np.int64)
    x, y = tree_coordinates(len(buses), frm, to, roots[0])
    return FeederLayout(
        bus=tuple(buses),
        x=x,
        y=y,
        line=tuple(line),
        from_pos=frm,
        to_pos=to,
        source="tree",
    )
