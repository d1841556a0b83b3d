"""Feeders: static bus and line tables of a radial distribution network.

A :class:`Feeder` is a frozen pair of tables (PyPSA-style static component tables) plus the
slack bus. Conventions, stated once here:

- ``buses`` (index = bus position ``0..n_bus-1``): ``bus`` label, ``vn_kv`` [kV],
  ``base_p_kw`` / ``base_q_kvar`` the feeder's own background load at its annual peak
  (scaled per interval by a background factor, :meth:`Feeder.background_injection_kw`),
  **load positive** [kW, kvar], ``household_bus`` (bool, where households may sit), and
  where the network data has them the bus's geodata ``x`` (longitude) and ``y`` (latitude)
  [degrees] (:mod:`grid.layout` draws the feeder map from them).
- ``lines`` (index = line position ``0..n_line-1``), one row per branch, oriented away from
  the slack (``from_bus`` is the parent): ``line`` label, ``from_bus`` / ``to_bus`` bus
  *positions* (int), ``r_ohm`` / ``x_ohm`` series impedance referred to the voltage of
  ``to_bus`` [ohm], ``s_max_kva`` thermal rating [kVA], ``kind`` (``"line"`` or
  ``"trafo"``), ``length_km`` and ``cable`` where known, and for transformers ``sn_kva``,
  ``vk_percent``, ``vkr_percent``, ``vn_hv_kv`` and the no-load losses ``pfe_kw`` [kW]
  and magnetising current ``i0_percent`` [% of rated current] (0 where not known).
- Everything the engine exchanges with the grid room per interval is an **injection**,
  positive when the bus exports to the feeder (DESIGN.md).

The networks must be radial (``n_line = n_bus - 1``, every bus reachable from the slack);
that is what the DistFlow equations of Baran & Wu (1989) assume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from grid.cables import (
    CABLE_TYPES,
    cable_s_max_kva,
    transformer_impedance_ohm,
)
from grid.errors import FeederError

if TYPE_CHECKING:
    import pandas as pd

BUS_COLUMNS = ["bus", "vn_kv", "base_p_kw", "base_q_kvar", "household_bus"]
#: Optional bus columns, kept when a bus record has them: geodata [degrees]
GEO_COLUMNS = ["x", "y"]
LINE_COLUMNS = [
    "line",
    "from_bus",
    "to_bus",
    "r_ohm",
    "x_ohm",
    "s_max_kva",
    "kind",
    "length_km",
    "cable",
    "sn_kva",
    "vk_percent",
    "vkr_percent",
    "vn_hv_kv",
    "pfe_kw",
    "i0_percent",
]


@dataclass(frozen=True)
class Feeder:
    """A radial feeder: bus table, line table and slack bus.

    Attributes
    ----------
    name : str
        Feeder name (``"ieee33"``, ``"radial:60"``, ``"simbench:<code>"``, file stem).
    buses : pandas.DataFrame
        Bus table, see the module docstring for columns and units.
    lines : pandas.DataFrame
        Branch table (lines and transformer), oriented away from the slack.
    slack_bus : int
        Position of the slack bus (the substation / MV connection).
    v_slack_pu : float
        Slack voltage magnitude [p.u.].
    transformer_s_max_kva : float or None
        Rating of the feeder transformer [kVA] (also the ``s_max_kva`` of its branch), None
        when the feeder has none (ieee33 starts at the substation bus).
    s_base_kva : float
        Per-unit power base of the feeder models [kVA].
    """

    name: str
    buses: pd.DataFrame
    lines: pd.DataFrame
    slack_bus: int
    v_slack_pu: float = 1.0
    transformer_s_max_kva: float | None = None
    s_base_kva: float = 1000.0

    @property
    def n_bus(self) -> int:
        """Number of buses."""
        return len(self.buses)

    @property
    def n_line(self) -> int:
        """Number of branches (lines and transformer)."""
        return len(self.lines)

    @property
    def household_buses(self) -> np.ndarray:
        """Positions of the buses that may host households, shape (k,)."""
        return np.flatnonzero(self.buses["household_bus"].to_numpy(bool))

    def background_injection_kw(self, factor: np.ndarray | float) -> np.ndarray:
        """Background active injection of every bus [kW], shape ``factor.shape + (n_bus,)``.

        ``-base_p_kw * factor``, ``factor`` the background load in per unit of the bus
        table's snapshot (the calendars of :mod:`grid.background` and
        :mod:`scenarios.engine.background`): negative because the background is load and
        injections are positive when exporting. Zero on feeders without background load.
        """
        return -np.multiply.outer(
            np.asarray(factor, dtype=float), self.buses["base_p_kw"].to_numpy(float)
        )

    def background_injection_kvar(self, factor: np.ndarray | float) -> np.ndarray:
        """Background reactive injection of every bus [kvar], same shape and factor."""
        return -np.multiply.outer(
            np.asarray(factor, dtype=float), self.buses["base_q_kvar"].to_numpy(float)
        )

    def base_injection_kw(self) -> np.ndarray:
        """Injection of the published base case (profile factor 1) [kW], shape (n_bus,)."""
        return -self.buses["base_p_kw"].to_numpy(float)

    def base_injection_kvar(self) -> np.ndarray:
        """Reactive injection of the published base case [kvar], shape (n_bus,)."""
        return -self.buses["base_q_kvar"].to_numpy(float)


# --------------------------------------------------------------------------- building


def build_feeder(
    name: str,
    buses: Sequence[Mapping[str, Any]],
    lines: Sequence[Mapping[str, Any]],
    *,
    slack_bus: str,
    v_slack_pu: float = 1.0,
    s_base_kva: float = 1000.0,
    line_where: Sequence[str] | None = None,
    source: str = "",
) -> Feeder:
    """Assemble and validate a feeder from bus and branch records.

    Parameters
    ----------
    name : str
        Feeder name.
    buses : sequence of mapping
        Records with ``bus`` (label), ``vn_kv`` [kV], ``base_p_kw`` [kW], ``base_q_kvar``
        [kvar] (load positive) and ``household_bus`` (bool); optionally geodata ``x``
        / ``y`` [degrees of longitude / latitude].
    lines : sequence of mapping
        Records with ``line``, ``from_bus``/``to_bus`` (labels), ``r_ohm``, ``x_ohm``,
        ``s_max_kva`` and optionally ``kind`` and the transformer/cable columns.
    slack_bus : str
        Label of the slack bus.
    line_where : sequence of str, optional
        Location of each line record for error messages (e.g. ``"lines[3]"``).
    source : str
        What is being loaded, for the error message.

    Raises
    ------
    FeederError
        If the network is not radial and connected from the slack, listing every problem.
    """
    import pandas as pd  # here: naming a feeder (p2pgrid validate) must not import pandas

    geo = [c for c in GEO_COLUMNS if any(c in b for b in buses)]
    bus_df = pd.DataFrame(list(buses), columns=BUS_COLUMNS + geo)
    bus_df["bus"] = bus_df["bus"].astype(str)
    bus_df = bus_df.astype(
        {"vn_kv": float, "base_p_kw": float, "base_q_kvar": float, "household_bus": bool}
    )
    line_df = pd.DataFrame(list(lines))
    for col in LINE_COLUMNS:
        if col not in line_df.columns:
            line_df[col] = np.nan
    line_df = line_df[LINE_COLUMNS].copy()
    line_df["kind"] = line_df["kind"].fillna("line").astype(str)
    line_df["line"] = line_df["line"].astype(str)
    where = (
        list(line_where) if line_where is not None else [f"line {lab!r}" for lab in line_df["line"]]
    )

    problems: list[str] = []
    pos = {lab: i for i, lab in enumerate(bus_df["bus"])}
    dup = bus_df["bus"][bus_df["bus"].duplicated()].unique()
    problems += [f"bus {lab!r} is defined more than once" for lab in dup]
    dup_l = line_df["line"][line_df["line"].duplicated()].unique()
    problems += [f"line {lab!r} is defined more than once" for lab in dup_l]
    if slack_bus not in pos:
        problems.append(f"slack bus {slack_bus!r} is not one of the buses")
    n = len(bus_df)
    edges: list[tuple[int, int, int]] = []
    for k, (fb, tb) in enumerate(zip(line_df["from_bus"], line_df["to_bus"], strict=True)):
        fb, tb = str(fb), str(tb)
        bad = False
        for key, lab in (("from_bus", fb), ("to_bus", tb)):
            if lab not in pos:
                problems.append(f"{where[k]}.{key}: {lab!r} is not one of the buses")
                bad = True
        if not bad and fb == tb:
            problems.append(f"{where[k]}: from_bus and to_bus are both {fb!r}")
            bad = True
        if not bad:
            edges.append((k, pos[fb], pos[tb]))
    if problems:
        raise FeederError(problems, source)
    if len(line_df) != n - 1:
        problems.append(
            f"a radial feeder with {n} buses has {n - 1} lines, this one has {len(line_df)}"
            " (a loop, a parallel line or a missing line)"
        )
    # orient by breadth-first search from the slack
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k, a, b in edges:
        adj[a].append((k, b))
        adj[b].append((k, a))
    root = pos[slack_bus]
    parent_line = np.full(n, -1)
    seen = np.zeros(n, bool)
    seen[root] = True
    frm = line_df["from_bus"].map(pos).to_numpy()
    to = line_df["to_bus"].map(pos).to_numpy()
    queue = [root]
    loops: list[str] = []
    used = np.zeros(len(line_df), bool)
    while queue:
        a = queue.pop(0)
        for k, b in adj[a]:
            if used[k]:
                continue
            used[k] = True
            if seen[b]:
                loops.append(where[k])
                continue
            seen[b] = True
            parent_line[b] = k
            frm[k], to[k] = a, b
            queue.append(b)
    if loops:
        problems.append(f"the network has a loop closed by {', '.join(loops)}")
    unreached = bus_df["bus"][~seen].tolist()
    if unreached:
        shown = ", ".join(repr(b) for b in unreached[:10])
        more = f" and {len(unreached) - 10} more" if len(unreached) > 10 else ""
        problems.append(f"buses not connected to the slack bus {slack_bus!r}: {shown}{more}")
    if not bus_df["household_bus"].any():
        problems.append("no bus has household_bus = true: households have nowhere to go")
    if problems:
        raise FeederError(problems, source)
    line_df["from_bus"] = frm.astype(int)
    line_df["to_bus"] = to.astype(int)
    trafo = line_df[line_df["kind"] == "trafo"]
    t_kva = float(trafo["s_max_kva"].min()) if len(trafo) else None
    return Feeder(
        name=name,
        buses=bus_df.reset_index(drop=True),
        lines=line_df.reset_index(drop=True),
        slack_bus=int(root),
        v_slack_pu=float(v_slack_pu),
        transformer_s_max_kva=t_kva,
        s_base_kva=float(s_base_kva),
    )


def cable_record(
    label: str, from_bus: str, to_bus: str, cable: str, length_km: float, vn_kv: float = 0.4
) -> dict[str, Any]:
    """A line record from a cable type of :data:`grid.cables.CABLE_TYPES` and its length."""
    r, x, i_ka = CABLE_TYPES[cable]
    return {
        "line": label,
        "from_bus": from_bus,
        "to_bus": to_bus,
        "r_ohm": r * length_km,
        "x_ohm": x * length_km,
        "s_max_kva": cable_s_max_kva(i_ka, vn_kv),
        "kind": "line",
        "length_km": length_km,
        "cable": cable,
    }


def transformer_record(
    label: str,
    hv_bus: str,
    lv_bus: str,
    sn_kva: float,
    vk_percent: float,
    vkr_percent: float,
    vn_hv_kv: float,
    vn_lv_kv: float,
    pfe_kw: float = 0.0,
    i0_percent: float = 0.0,
) -> dict[str, Any]:
    """A branch record for a two-winding transformer (series impedance on the LV side,
    no-load losses ``pfe_kw`` and magnetising current ``i0_percent``)."""
    r, x = transformer_impedance_ohm(sn_kva, vk_percent, vkr_percent, vn_lv_kv)
    return {
        "line": label,
        "from_bus": hv_bus,
        "to_bus": lv_bus,
        "r_ohm": r,
        "x_ohm": x,
        "s_max_kva": float(sn_kva),
        "kind": "trafo",
        "sn_kva": float(sn_kva),
        "vk_percent": float(vk_percent),
        "vkr_percent": float(vkr_percent),
        "vn_hv_kv": float(vn_hv_kv),
        "pfe_kw": float(pfe_kw),
        "i0_percent": float(i0_percent),
    }


def assign_households(feeder: Feeder, n_households: int, seed: int) -> np.ndarray:
    """Place households on the feeder's household buses, deterministically from ``seed``.

    Households are spread as evenly as possible (bus counts differ by at most one); which
    buses get the extra household and which household goes where is drawn from
    ``numpy.random.default_rng(seed)``.

    Returns
    -------
    numpy.ndarray of int, shape (n_households,)
        Bus position (row of ``feeder.buses``) of each household.
    """
    if n_households < 0:
        raise ValueError(f"n_households must be >= 0, got {n_households}")
    rng = np.random.default_rng(seed)
    hb = feeder.household_buses
    slots = np.resize(rng.permutation(hb), n_households)
    return rng.permutation(slots).astype(np.int64)
