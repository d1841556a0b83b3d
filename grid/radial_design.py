"""The design of the generated LV feeder ``radial:<households>`` (built by
:func:`grid.named_feeders.radial`) and the community sizes it serves."""

from __future__ import annotations

from grid.cables import TRANSFORMER_SIZES_KVA
from grid.errors import FeederError

#: Design of the generated LV feeder ``radial:<households>``.
RADIAL_HOUSEHOLDS_PER_CABINET = 3
RADIAL_CABINETS_PER_FEEDER = 8
RADIAL_KVA_PER_HOUSEHOLD = 3.0
RADIAL_MAIN_CABLE = "NAYY 4x150 SE"
RADIAL_MAIN_SEGMENT_KM = 0.040
RADIAL_SERVICE_CABLE = "NAYY 4x50 SE"
RADIAL_SERVICE_KM = 0.030
RADIAL_MAX_KVA = max(TRANSFORMER_SIZES_KVA)
"""The largest transformer of :data:`grid.cables.TRANSFORMER_SIZES_KVA` (2500 kVA, the
largest rating of EN 50464-1), the largest unit of ``radial:<N>``."""
RADIAL_HOUSEHOLDS_PER_TRANSFORMER = int(RADIAL_MAX_KVA // RADIAL_KVA_PER_HOUSEHOLD)
"""The largest community one LV transformer serves (833): at :data:`RADIAL_KVA_PER_HOUSEHOLD`
each, more households need more than the largest transformer. ``radial:<N>`` with more
households has ``ceil(N / 833)`` transformers, each with its own LV busbar."""
RADIAL_MAX_BUSES = 1750
"""The most buses of a generated feeder: the feeder model's linear map is dense in the
buses, ``48 n_bus^2`` bytes (147 MB at 1,750 buses), built by a dense solve in ``3 n_bus``
unknowns. A larger community is better studied as a district (``district:<N>x<H>``), whose
LV feeders keep one small model each."""
RADIAL_MAX_HOUSEHOLDS = 2593
"""The largest ``radial:<N>`` within :data:`RADIAL_MAX_BUSES` (1,749 buses; radial:2594 has
1,765): four transformers of 2000 kVA."""


def radial_transformers(households: int) -> int:
    """Number of LV transformers (and LV busbars) of ``radial:<households>``."""
    return -(-households // RADIAL_HOUSEHOLDS_PER_TRANSFORMER)


def even_split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` whole shares differing by at most one, the larger first."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def radial_bus_count(households: int) -> int:
    """Buses of ``radial:<households>``: the MV bus, one LV busbar per transformer, and a
    cable cabinet and a household bus per three households on each main cable."""
    per_cable = RADIAL_HOUSEHOLDS_PER_CABINET * RADIAL_CABINETS_PER_FEEDER
    n = 1
    for share in even_split(households, radial_transformers(households)):
        n += 1 + sum(2 * -(-hh // RADIAL_HOUSEHOLDS_PER_CABINET)
                     for hh in even_split(share, -(-share // per_cable)))  # fmt: skip
    return n


def check_radial_size(households: int, *, one_transformer: bool = False) -> None:
    """Raise unless ``radial:<households>`` is a feeder :func:`grid.named_feeders.radial`
    builds (with ``one_transformer``: unless one LV transformer serves it, as under one
    MV/LV station of a generated district)."""
    top = RADIAL_HOUSEHOLDS_PER_TRANSFORMER if one_transformer else RADIAL_MAX_HOUSEHOLDS
    if 1 <= households <= top:
        return
    if households < 1:
        why = ""
    elif one_transformer:
        why = (
            f" for one LV transformer: {households} households need "
            f"{RADIAL_KVA_PER_HOUSEHOLD * households:g} kVA ({RADIAL_KVA_PER_HOUSEHOLD:g} kVA "
            f"each), more than the largest distribution transformer ({RADIAL_MAX_KVA} kVA, "
            "EN 50464-1)"
        )
    else:
        n_bus = radial_bus_count(households)
        why = (
            f": radial:{households} would have {n_bus} buses, more than the "
            f"{RADIAL_MAX_BUSES} of one generated feeder (its dense linear model takes 48 "
            f"bytes x buses^2, {48 * n_bus**2 / 1e6:,.0f} MB); use a district "
            "('district:<lv_feeders>x<households>'), whose LV feeders keep one small "
            "model each, or a feeder file"
        )
    raise FeederError(
        [f"radial:{households}: the number of households must be between 1 and {top}{why}"],
        f"radial:{households}",
    )
