"""The grid room: feeders, the persistent Pyomo feeder model and AC validation.

Pure computation: no files written, no printing, no network I/O (DESIGN.md, "Layout").
"""

from grid.ac import AcPowerFlow, AcResult, FeederValidation, validate_feeder, voltage_error_pu
from grid.distance import electrical_distance_pu, path_branches
from grid.errors import FeederError
from grid.feeders import Feeder, assign_households
from grid.lindistflow import FeederModel
from grid.named_feeders import load_feeder
from grid.results import ConstrainedClearing, GridCheck

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
