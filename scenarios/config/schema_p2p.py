"""The ``[market.p2p]`` section: the bilateral market without an auctioneer, used when
``market.mechanism = "p2p"`` (consensus ADMM, :mod:`market.p2p`).

``partners``: ``"all"`` (every household may trade with every other), an integer ``k``
(each household's ``k`` electrically nearest households; a pair is a partner pair when
either lists the other) or a table ``{h0001 = ["h0002", "h0007"], …}`` (made symmetric).
The differentiation cost of a pair [currency/kWh], borne by the buyer
(:mod:`market.p2p_pairs`): ``distance_per_kwh`` times the pair's electrical distance over
the largest one between households, plus ``green_premium_per_kwh`` when the seller has no
PV, plus ``neighbour_premium_per_kwh`` when the two are not neighbours (each household's
``neighbours`` electrically nearest). Distances (``partners = k``, ``distance_per_kwh``,
``neighbours``) need the feeder (``grid.check != "off"``).

``dso = true`` turns on the DSO of :mod:`scenarios.engine.p2p_dso` (it needs the feeder
too): after every negotiation the feeder is checked on the trades' injections; where a
limit breaks, the pairs whose trades load the broken element pay a network charge and
negotiate again, at most ``dso_max_outer`` times in all, the element prices rising by
the subgradient step ``dso_step_per_kwh`` (:mod:`market.p2p_dso`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenarios.config.section import Section


class P2PSection(Section):
    """A bilateral market's partners, preferences and ADMM settings (module docstring)."""

    partners: str | int | dict[str, tuple[str, ...]] = "all"
    """``"all"``, the ``k`` electrically nearest, or a table of partner lists."""
    distance_per_kwh: float = Field(0.0, ge=0, le=100)
    """Differentiation cost between the two farthest households [currency/kWh]."""
    green_premium_per_kwh: float = Field(0.0, ge=0, le=100)
    """What a buyer gives up on a kWh from a seller without PV [currency/kWh]."""
    neighbour_premium_per_kwh: float = Field(0.0, ge=0, le=100)
    """What a buyer gives up on a kWh from a household that is not its neighbour."""
    neighbours: int = Field(3, ge=0, le=1000)
    """How many electrically nearest households are a household's neighbours."""
    rho: float = Field(0.3, gt=0, le=1e6)
    """ADMM penalty [currency/kWh²]."""
    relaxation: float = Field(1.6, gt=0, lt=2)
    """Over-relaxation of the ADMM's consensus and price steps."""
    primal_tol_kwh: float = Field(1e-5, gt=0, le=1)
    """Absolute part of the threshold of the root-mean-square disagreement of two
    partners' proposals [kWh] (``market.p2p``, "Stopping")."""
    dual_tol_per_kwh: float = Field(1e-5, gt=0, le=1)
    """Absolute part of the threshold of ``rho`` × the root-mean-square change of the
    pairs' consensus [currency/kWh]."""
    relative_tol: float = Field(1e-4, ge=0, le=1)
    """Relative part of both thresholds (times the RMS proposal and price)."""
    stopping: Literal["rms", "pairwise"] = "rms"
    """``"rms"``: thresholds on the root-mean-square residuals over all pairs;
    ``"pairwise"``: every pair to its own threshold, as the live peers of ``p2pgrid live
    --decentralised`` test it (``market.p2p``, "Stopping")."""
    max_iterations: int = Field(1000, ge=1, le=100_000)
    """Iteration cap per interval (the last iterate is traded when it is reached)."""
    central_check: bool = False
    """Also solve every interval's pairs centrally (one LP with HiGHS) and record its
    optimum as ``central_welfare`` (``p2pgrid compare`` turns it on for ``p2p``)."""

    dso: bool = False
    """Network charges on the pairs whose trades break a feeder limit, and re-negotiation."""
    dso_max_outer: int = Field(20, ge=1, le=1000)
    """Negotiations per interval at most, the first (uncharged) one included."""
    dso_step_per_kwh: float = Field(0.05, gt=0, le=10)
    """The first outer step's charge on the most-loading pair per unit of violation
    [currency/kWh] (:class:`market.p2p_dso.DSORule`)."""

    @model_validator(mode="after")
    def _partners(self) -> P2PSection:
        p = self.partners
        if isinstance(p, str) and p != "all":
            raise ValueError(f"market.p2p.partners: {p!r} is not 'all', a number or a table")
        if isinstance(p, int) and p < 1:
            raise ValueError(f"market.p2p.partners: {p} must be at least 1")
        return self

    @property
    def needs_feeder(self) -> bool:
        """Partners or costs by electrical distance."""
        uses_neighbours = self.neighbour_premium_per_kwh > 0 and self.neighbours > 0
        return isinstance(self.partners, int) or self.distance_per_kwh > 0 or uses_neighbours


def check_p2p_members(p2p: P2PSection, ids: list[str]) -> list[str]:
    """Problems with a partner table that names households the community lacks."""
    if not isinstance(p2p.partners, dict):
        return []
    known = set(ids)
    named = set(p2p.partners) | {m for group in p2p.partners.values() for m in group}
    unknown = sorted(named - known)
    if not unknown:
        return []
    return [f"market.p2p.partners: {unknown} are not members of the community"]


def check_p2p_dso(p2p: P2PSection, grid_check: str) -> list[str]:
    """Problems with ``dso = true``: the DSO checks the feeder, which must be in the run."""
    if p2p.dso and grid_check == "off":
        return [
            "market.p2p.dso = true: the DSO checks the trades on the feeder, which needs "
            "grid.check = 'pyomo' or 'pyomo+ac' (it is 'off'), or set dso = false"
        ]
    return []
