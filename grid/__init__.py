"""The grid room: feeders, the persistent Pyomo feeder model and AC validation.

Pure computation: no files written, no printing, no network I/O (DESIGN.md, "Layout").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.lazy import lazy_namespace

if TYPE_CHECKING:
    from grid.ac import AcPowerFlow, AcResult, FeederValidation, validate_feeder, voltage_error_pu
    from grid.distance import electrical_distance_pu, path_branches
    from grid.errors import FeederError
    from grid.feeder_names import load_feeder
    from grid.feeders import Feeder, assign_households
    from grid.lindistflow import FeederModel
    from grid.results import ConstrainedClearing, GridCheck

#: Public name -> the submodule defining it, imported on first use (PEP 562), so that
#: importing one submodule (or the CLI's --help) does not import the whole package.
_EXPORTS = {
    "AcPowerFlow": "grid.ac",
    "AcResult": "grid.ac",
    "ConstrainedClearing": "grid.results",
    "Feeder": "grid.feeders",
    "FeederError": "grid.errors",
    "FeederModel": "grid.lindistflow",
    "FeederValidation": "grid.ac",
    "GridCheck": "grid.results",
    "assign_households": "grid.feeders",
    "electrical_distance_pu": "grid.distance",
    "load_feeder": "grid.feeder_names",
    "path_branches": "grid.distance",
    "validate_feeder": "grid.ac",
    "voltage_error_pu": "grid.ac",
}

__all__ = [
    "AcPowerFlow",
    "AcResult",
    "ConstrainedClearing",
    "Feeder",
    "FeederError",
    "FeederModel",
    "FeederValidation",
    "GridCheck",
    "assign_households",
    "electrical_distance_pu",
    "load_feeder",
    "path_branches",
    "validate_feeder",
    "voltage_error_pu",
]


__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS, globals())
