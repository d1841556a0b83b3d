"""``[[community.members]]``: members of the community that are not drawn like the others.

``community.households`` counts every member (agent ids ``h0001`` …); each entry here
takes one of them (``id``) and replaces what was drawn for it: its yearly consumption,
its PV and its load shape, and it keeps no battery, EV or heat pump. So a §42c community
of 50 households and a school is ``households = 51`` with one entry for ``h0051``::

    [[community.members]]
    id = "h0051"
    annual_kwh = 60000.0
    pv_kwp = 99.0
    load = "weekday_daytime"      # open Monday to Friday, load_hours local time
    load_hours = [7.5, 16.0]

``load = "household"`` keeps the household profile (scaled to ``annual_kwh``);
``"weekday_daytime"`` is a building open on weekdays (:mod:`agents.profiles.daytime`).
The feeder, the profiles' seed and every other member are unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenarios.config.section import Section


class Member(Section):
    """One member whose load and PV are given instead of drawn."""

    id: str = Field(pattern=r"^h\d{4,}$")
    """The agent id it takes (``h0001`` … up to ``community.households``)."""
    annual_kwh: float = Field(ge=0, le=1e8)
    pv_kwp: float = Field(0.0, ge=0, le=1e5)
    pv_tilt_deg: float = Field(30.0, ge=0, le=90)
    pv_azimuth_deg: float = Field(180.0, ge=0, le=360)
    load: Literal["household", "weekday_daytime"] = "household"
    load_hours: tuple[float, float] = (8.0, 16.0)
    """weekday_daytime: local ``[open, close)`` hours [h]."""
    base_load_frac: float = Field(0.1, ge=0, le=1)
    """weekday_daytime: the power outside opening hours as a fraction of the open power."""

    @model_validator(mode="after")
    def _hours(self) -> Member:
        start, end = self.load_hours
        if not 0 <= start < end <= 24:
            raise ValueError(
                f"load_hours: {list(self.load_hours)} must be [open, close) within 0-24"
            )
        return self


def check_members(members: tuple[Member, ...], ids: list[str]) -> list[str]:
    """Problems with members that name no household or one household twice."""
    known = set(ids)
    problems = [
        f"community.members: {m.id!r} is not one of the {len(ids)} members ({ids[0]} …)"
        for m in members
        if m.id not in known
    ]
    seen: set[str] = set()
    for m in members:
        if m.id in seen:
            problems.append(f"community.members: {m.id!r} is listed twice")
        seen.add(m.id)
    return problems
