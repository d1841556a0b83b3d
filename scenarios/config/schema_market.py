"""The ``[market]`` section of a scenario: the market design, the utility's tariffs and
the grid fees."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from market.mechanism_names import SHARING, all_names, split_mechanism
from scenarios.config.schema_p2p import P2PSection
from scenarios.config.schema_sharing import SharingSection
from scenarios.config.section import Section


class MarketSection(Section):
    """The market design and the utility's tariffs [currency/kWh]."""

    mechanism: str = "uniform"
    """uniform | pay_as_bid | mcafee | cda | sharing | p2p (``market.mechanism_names``);
    ``sharing:<key>`` is read as ``sharing`` with ``[market.sharing] key = <key>``."""
    sharing: SharingSection = SharingSection()
    """The energy-sharing contract, used with ``mechanism = "sharing"``."""
    p2p: P2PSection = P2PSection()
    """The bilateral market's partners and preferences, used with ``mechanism = "p2p"``."""
    retail_price_per_kwh: float = Field(0.32, ge=0, le=100)
    feed_in_price_per_kwh: float = Field(0.08, ge=0, le=100)
    grid_fee_per_kwh: float = Field(0.03, ge=0, le=100)
    """Paid by the buyer on every P2P kWh, on top of the trade price (with the distance
    model: the fee between households on the same bus)."""
    grid_fee_model: Literal["flat", "distance", "time_variable"] = "flat"
    """flat: ``grid_fee_per_kwh`` on every kWh; distance: plus
    ``grid_fee_distance_per_kwh × d / d_max`` by the electrical distance ``d`` between
    the buyer's and the seller's bus (``market.fees``); needs the feeder in the run;
    time_variable: §14a EnWG module 3, the ``grid_fee_levels_per_kwh`` by time window on
    P2P energy and on imports (retail moves by the level's difference to the standard)."""
    grid_fee_distance_per_kwh: float = Field(0.02, ge=0, le=100)
    """Extra fee per kWh between the two farthest household buses (distance model)."""
    grid_fee_levels_per_kwh: tuple[float, float, float] = (0.0345, 0.0862, 0.1084)
    """Module 3: (low, standard, high) grid fee [currency/kWh]. Default: the 2025 low-voltage
    price sheet of Elektrizitätswerk Wanfried (3.45 / 8.62 / 10.84 ct/kWh net)."""
    grid_fee_low_hours: tuple[float, float] = (1.0, 4.0)
    """Module 3: local ``[start, end)`` hours of the low level (default 01:00–04:00)."""
    grid_fee_high_hours: tuple[float, float] = (17.0, 19.0)
    """Module 3: local ``[start, end)`` hours of the high level (default 17:00–19:00)."""
    grid_fee_window_months: tuple[int, ...] = (1, 2, 3, 10, 11, 12)
    """Module 3: months in which the windows apply (default quarters 1 and 4); the
    standard level all day in the others."""
    imbalance_shortfall_price_per_kwh: float | None = Field(None, ge=0, le=100)
    """What the utility charges for a kWh a household used or failed to deliver beyond
    its orders (metered below committed, ``market.settlement``); default: retail."""
    imbalance_surplus_price_per_kwh: float | None = Field(None, ge=0, le=100)
    """What the utility pays for a kWh a household injected beyond its orders; default:
    feed-in."""
    currency: str = Field("EUR", min_length=1, max_length=8)
    reliability_window: int = Field(96, ge=1, le=2976)
    """Intervals over which each household's reliability scores are computed (a rolling
    window, :mod:`market.reliability`; 96 = a day of 15-minute intervals; at most 2976, a
    month of them)."""
    levels: tuple[Literal["feeder", "district"], ...] = ("feeder",)
    """The nested markets, innermost first: ``["feeder"]`` (each LV feeder its own market,
    as always) or ``["feeder", "district"]`` (on a district, ``grid.feeder =
    "district:<N>x<H>"``: what each feeder leaves unmatched is offered, as one aggregated
    curve per feeder, to a district market between the feeders; README "Districts and
    nested markets")."""
    district_grid_fee_per_kwh: float | None = Field(None, ge=0, le=100)
    """Grid fee per kWh bought in the district market (energy carried over the MV grid),
    paid by the buyer on top of the district price; default ``grid_fee_per_kwh``. E.g. an
    Austrian regional community's reduction (``market.sharing_fees``) against a local one's
    on the feeder level."""
    district_block_intervals: int | None = Field(None, ge=1, strict=True)
    """How often the levels of a district run synchronise: every this many intervals
    (a *block*, the last one shorter) the feeders' residual orders and transformer flows
    of the block are cleared by the district, and what any process holds is one block, not
    the run (README "Districts and nested markets"); a positive integer, default one day
    of intervals (``simulation.intervals_per_day``). The results do not depend on it."""
    derate_unreliable: bool = False
    """Multiply each household's sell orders' energy by its delivery ratio (over the
    window up to the previous interval) before the clearing; a new household starts at 1
    (:class:`scenarios.engine.interval.MarketStep`)."""

    @model_validator(mode="before")
    @classmethod
    def _sharing_key_in_name(cls, data: object) -> object:
        """``mechanism = "sharing:equal"`` → ``"sharing"`` with ``sharing.key = "equal"``
        (the name's key wins over a ``key`` given in the section)."""
        if not isinstance(data, dict) or not isinstance(data.get("mechanism"), str):
            return data
        base, key = split_or_keep(data["mechanism"])
        if key is None:
            return data
        sharing = data.get("sharing") or {}
        if isinstance(sharing, SharingSection):
            sharing = sharing.model_dump()
        return {**data, "mechanism": base, "sharing": {**sharing, "key": key}}

    @field_validator("mechanism")
    @classmethod
    def _known_mechanism(cls, value: str) -> str:
        if value not in all_names():
            raise ValueError(f"{value!r} is not one of {', '.join(all_names())}")
        return value

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value not in (("feeder",), ("feeder", "district")):
            raise ValueError(f"{list(value)} must be ['feeder'] or ['feeder', 'district']")
        return value

    @property
    def district_fee_per_kwh(self) -> float:
        """The district level's grid fee [currency/kWh]."""
        d = self.district_grid_fee_per_kwh
        return self.grid_fee_per_kwh if d is None else d

    @property
    def is_sharing(self) -> bool:
        """An energy-sharing community (allocation keys, no bids)."""
        return self.mechanism == SHARING

    @property
    def label(self) -> str:
        """The mechanism's name with its sharing key (``sharing:equal``)."""
        return f"{SHARING}:{self.sharing.key}" if self.is_sharing else self.mechanism

    @property
    def max_grid_fee_per_kwh(self) -> float:
        """The largest fee a P2P kWh can carry above what retail includes [currency/kWh]
        (module 3: the standard level, as retail moves with the level)."""
        if self.is_sharing:  # what a shared kWh carries (market.sharing_fees)
            return self.sharing.charges(self.grid_fee_per_kwh).total_per_kwh
        if self.grid_fee_model == "time_variable":
            return self.grid_fee_levels_per_kwh[1]
        extra = self.grid_fee_distance_per_kwh if self.grid_fee_model == "distance" else 0.0
        return self.grid_fee_per_kwh + extra

    @model_validator(mode="after")
    def _fee_windows(self) -> MarketSection:
        problems = []
        low, standard, high = self.grid_fee_levels_per_kwh
        if not 0 <= low <= standard <= high:
            problems.append(
                f"grid_fee_levels_per_kwh: {list(self.grid_fee_levels_per_kwh)} must be "
                "(low, standard, high) with 0 <= low <= standard <= high"
            )
        for name in ("grid_fee_low_hours", "grid_fee_high_hours"):
            window = getattr(self, name)
            if not all(0 <= h <= 24 for h in window):
                problems.append(f"{name}: {list(window)} must be hours within [0, 24]")
        bad = [m for m in self.grid_fee_window_months if not 1 <= m <= 12]
        if bad:
            problems.append(f"grid_fee_window_months: {bad} are not months (1-12)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _tariffs_leave_room(self) -> MarketSection:
        if self.feed_in_price_per_kwh + self.max_grid_fee_per_kwh >= self.retail_price_per_kwh:
            fee = {
                "sharing": "the grid fee and levies a shared kWh carries "
                f"({self.max_grid_fee_per_kwh:.6g}, [market.sharing])",
                "flat": f"grid_fee_per_kwh ({self.grid_fee_per_kwh})",
                "distance": f"grid_fee_per_kwh ({self.grid_fee_per_kwh}) + "
                f"grid_fee_distance_per_kwh ({self.grid_fee_distance_per_kwh})",
                "time_variable": "the standard level of grid_fee_levels_per_kwh "
                f"({self.grid_fee_levels_per_kwh[1]})",
            }["sharing" if self.is_sharing else self.grid_fee_model]
            raise ValueError(
                f"feed_in_price_per_kwh: {self.feed_in_price_per_kwh} plus {fee} "
                f"must be below retail_price_per_kwh "
                f"({self.retail_price_per_kwh}), or no P2P trade can benefit both sides"
            )
        return self

    @model_validator(mode="after")
    def _imbalance_not_worth_seeking(self) -> MarketSection:
        short = self.imbalance_shortfall_price_per_kwh
        surplus = self.imbalance_surplus_price_per_kwh
        if short is not None and short < self.retail_price_per_kwh:
            raise ValueError(
                f"imbalance_shortfall_price_per_kwh: {short} is below retail_price_per_kwh "
                f"({self.retail_price_per_kwh}): a household could gain by selling energy it "
                "does not have, or by not ordering what it uses"
            )
        if surplus is not None and surplus > self.feed_in_price_per_kwh:
            raise ValueError(
                f"imbalance_surplus_price_per_kwh: {surplus} is above feed_in_price_per_kwh "
                f"({self.feed_in_price_per_kwh}): a household could gain by not ordering "
                "what it injects"
            )
        return self


def split_or_keep(name: str) -> tuple[str, str | None]:
    """:func:`market.mechanism_names.split_mechanism`, keeping an unknown name as it is (the
    field validator reports it)."""
    try:
        return split_mechanism(name)
    except ValueError:
        return name, None


def check_levels(market: MarketSection, feeder: str, district: bool) -> list[str]:
    """Problems of ``market.levels`` on the feeder ``feeder`` (``district``: a district
    spec, :func:`grid.district_networks.is_district`)."""
    problems = []
    if "district" in market.levels and not district:
        problems.append(
            f"market.levels = {list(market.levels)}: the district market needs a district, "
            f"grid.feeder = 'district:<lv_feeders>x<households>' (it is {feeder!r})"
        )
    if district and market.mechanism == "p2p":
        problems.append(
            "market.mechanism = 'p2p' is not run on a district (its partners are drawn on one "
            "feeder); use an auction or sharing, or a single feeder"
        )
    if "district" in market.levels and market.is_sharing:
        problems.append(
            "market.levels: the district market clears limit prices, which energy sharing "
            "does not have; use market.levels = ['feeder'] with sharing"
        )
    return problems
