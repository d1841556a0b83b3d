"""The ``[market.sharing]`` section: an energy-sharing community's contract (allocation
key, shares, priority, internal price, jurisdiction), used when ``market.mechanism =
"sharing"`` (or ``"sharing:<key>"``, which sets ``key``).

Static shares come from the scenario (``shares = {h0001 = 0.1, …}``) or from a CSV file
(``shares = "shares.csv"``, a path as given, relative to the working directory) with the
header ``member_id,share`` and one row per member: ``member_id`` an agent id of the
community (``h0001`` …), ``share`` a fraction of the community's surplus (≥ 0; all shares
together ≤ 1; members not listed have none). Without ``shares`` the static key gives every
member the same share, ``1 / members`` (so that ``compare`` can put it beside the others on
any community). ``priority`` lists ordered groups of member
ids (``priority = [["h0051"], ["h0001", "h0002"]]``): the first group is served first, the
members in no group last (:mod:`market.sharing`).

The internal price of a shared kWh: ``price_rule = "fixed"`` charges ``price_per_kwh``;
``"fraction"`` (default) charges ``feed_in + price_fraction × (retail − charges −
feed_in)``, where ``charges`` are the grid fee and levies a shared kWh carries
(:func:`market.sharing_fees.shared_charges`): at 0 the producers get feed-in, at 1 the
consumers pay what the residual supply costs them, in between both gain.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from market.mechanism_names import SHARING_KEYS
from market.sharing_fees import JURISDICTIONS, SharedCharges, shared_charges
from scenarios.config.section import Section

SharingKey = Literal["static", "proportional", "equal"]
Jurisdiction = Literal["de_42c", "at_eeg", "fr_acc"]
assert SharingKey.__args__ == SHARING_KEYS and Jurisdiction.__args__ == JURISDICTIONS  # type: ignore[attr-defined]  # Literal's __args__ is not in its stub

SHARES_COLUMNS = ("member_id", "share")
"""The header of a static-shares CSV file."""


def read_shares_csv(path: str) -> dict[str, float]:
    """The ``member_id → share`` table of a shares CSV file (module docstring).

    Raises
    ------
    ValueError
        A missing file, another header, a repeated member or a share that is not a
        number; the message names the file and the line.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"shares: no CSV file at {path!r}")
    shares: dict[str, float] = {}
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != SHARES_COLUMNS:
            raise ValueError(f"shares: {path!r} must start with the header member_id,share")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"shares: {path!r} line {line}: want member_id,share")
            member, text = row[0].strip(), row[1].strip()
            if member in shares:
                raise ValueError(f"shares: {path!r} line {line}: {member!r} is listed twice")
            try:
                shares[member] = float(text)
            except ValueError:
                raise ValueError(
                    f"shares: {path!r} line {line}: share {text!r} is not a number"
                ) from None
    return shares


class SharingSection(Section):
    """An energy-sharing community's contract (module docstring)."""

    key: SharingKey = "proportional"
    """static | proportional | equal (:mod:`market.sharing`)."""
    shares: dict[str, float] | str | None = None
    """static: each member's share of the surplus, or the path of a shares CSV file;
    default ``1 / members`` each."""
    priority: tuple[tuple[str, ...], ...] = ()
    """Ordered groups of member ids served first (optional)."""
    price_rule: Literal["fixed", "fraction"] = "fraction"
    price_per_kwh: float | None = Field(None, ge=0, le=100)
    """The internal price with ``price_rule = "fixed"`` [currency/kWh]."""
    price_fraction: float = Field(0.5, ge=0, le=1)
    """``price_rule = "fraction"``: where the price lies between feed-in (0) and retail less
    the shared kWh's charges (1)."""
    jurisdiction: Jurisdiction = "de_42c"
    """Grid fees and levies on shared energy (:mod:`market.sharing_fees`)."""
    levies_per_kwh: float = Field(0.0, ge=0, le=100)
    """Levies and taxes per kWh a supplied kWh carries, also charged on shared energy
    (except Austria's exemptions) [currency/kWh]."""
    at_area: Literal["local", "regional"] = "local"
    """at_eeg: a local (grid levels 6–7) or regional (4–5) community."""
    at_levies_exempt: bool = True
    """at_eeg: no renewable funding contribution and electricity levy on shared PV energy."""
    fr_autoproduced_fee_per_kwh: float | None = Field(None, ge=0, le=100)
    """fr_acc: the TURPE energy component on self-produced flows; default the grid fee."""

    @model_validator(mode="after")
    def _consistent(self) -> SharingSection:
        problems = []
        if self.price_rule == "fixed" and self.price_per_kwh is None:
            problems.append("price_rule = 'fixed' needs price_per_kwh")
        try:
            table = self.share_table()
        except ValueError as exc:
            problems.append(str(exc))
            table = {}
        bad = [m for m, s in table.items() if not 0 <= s <= 1]
        if bad:
            problems.append(f"shares: {bad} must be fractions within [0, 1]")
        if sum(table.values()) > 1 + 1e-9:
            problems.append(f"shares: they sum to {sum(table.values()):.6g}, more than 1")
        seen: set[str] = set()
        for group in self.priority:
            twice = seen.intersection(group)
            if twice:
                problems.append(f"priority: {sorted(twice)} are in more than one group")
            seen.update(group)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def share_table(self) -> dict[str, float]:
        """``member_id → share`` (read from the CSV file when ``shares`` is a path)."""
        if self.shares is None:
            return {}
        if isinstance(self.shares, str):
            return read_shares_csv(self.shares)
        return dict(self.shares)

    def charges(self, grid_fee_per_kwh: float) -> SharedCharges:
        """The grid fee and levies on a shared kWh [currency/kWh]."""
        return shared_charges(
            self.jurisdiction,
            grid_fee_per_kwh,
            self.levies_per_kwh,
            at_area=self.at_area,
            at_levies_exempt=self.at_levies_exempt,
            fr_autoproduced_fee_per_kwh=self.fr_autoproduced_fee_per_kwh,
        )

    def price_per_kwh_of(self, retail: float, feed_in: float, charges_per_kwh: float) -> float:
        """The internal price [currency/kWh] under the price rule."""
        if self.price_rule == "fixed":
            assert self.price_per_kwh is not None
            return self.price_per_kwh
        return feed_in + self.price_fraction * (retail - charges_per_kwh - feed_in)


def check_sharing_members(sharing: SharingSection, ids: list[str]) -> list[str]:
    """Problems with shares and priority groups that name members the community lacks."""
    known = set(ids)
    named = set(sharing.share_table()) | {m for g in sharing.priority for m in g}
    unknown = sorted(named - known)
    if not unknown:
        return []
    return [f"market.sharing: {unknown} are not members of the community ({ids[0]} … {ids[-1]})"]
