"""The design of the generated LV feeder ``radial:<households>`` (built by
:func:`grid.named_feeders.radial`) and the community sizes it serves."""

from __future__ import annotations

from grid.errors import FeederError

#: Design of the generated LV feeder ``radial:<households>``.
RADIAL_HOUSEHOLDS_PER_CABINET = 3
RADIAL_CABINETS_PER_FEEDER = 8
RADIAL_KVA_PER_HOUSEHOLD = 3.0
RADIAL_MAIN_CABLE = "NAYY 4x150 SE"
RADIAL_MAIN_SEGMENT_KM = 0.040
RADIAL_SERVICE_CABLE = "NAYY 4x50 SE"
RADIAL_SERVICE_KM = 0.030
RADIAL_MAX_HOUSEHOLDS = 300
"""The largest community one generated LV feeder (one transformer) serves."""


def check_radial_size(households: int) -> None:
    """Raise unless ``radial:<households>`` is a feeder :func:`grid.named_feeders.radial` builds."""
    if households < 1 or households > RADIAL_MAX_HOUSEHOLDS:
        raise FeederError(
            [
                f"radial:{households}: the number of households must be between 1 and "
                f"{RADIAL_MAX_HOUSEHOLDS} for one LV transformer (use ieee33 or a feeder "
                "file for larger communities)"
            ],
            f"radial:{households}",
        )
