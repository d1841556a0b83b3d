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
largest rating of EN 50464-1): one LV feeder has one transformer."""
RADIAL_MAX_HOUSEHOLDS = int(RADIAL_MAX_KVA // RADIAL_KVA_PER_HOUSEHOLD)
"""The largest community one generated LV feeder serves (833): at
:data:`RADIAL_KVA_PER_HOUSEHOLD` each, more households need more than the largest
transformer."""


def check_radial_size(households: int) -> None:
    """Raise unless ``radial:<households>`` is a feeder :func:`grid.named_feeders.radial` builds."""
    if households < 1 or households > RADIAL_MAX_HOUSEHOLDS:
        why = (
            f": {households} households need {RADIAL_KVA_PER_HOUSEHOLD * households:g} kVA "
            f"({RADIAL_KVA_PER_HOUSEHOLD:g} kVA each), more than the largest distribution "
            f"transformer ({RADIAL_MAX_KVA} kVA, EN 50464-1)"
            if households > RADIAL_MAX_HOUSEHOLDS
            else ""
        )
        raise FeederError(
            [
                f"radial:{households}: the number of households must be between 1 and "
                f"{RADIAL_MAX_HOUSEHOLDS} for one LV transformer{why} (use a feeder file "
                "with several LV feeders, or ieee33, for larger communities)"
            ],
            f"radial:{households}",
        )
