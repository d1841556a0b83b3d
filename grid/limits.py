"""The feeder's limits: voltage band, safety margins and the tolerance of a violation.

One place for what the feeder model (:class:`grid.FeederModel`), the grid stage of a run
(``scenarios/engine/grid_stage.py``) and the hosting-capacity study
(``scenarios/studies/hosting_assessment.py``) call a broken limit:

- a bus is under-voltage below ``v_lo_pu = v_min_pu + v_margin_pu`` and over-voltage above
  ``v_hi_pu = v_max_pu - v_margin_pu`` (the margin covers the linear model's error, see
  :mod:`grid.lindistflow`);
- a branch (lines and the transformer) is overloaded above
  ``loading_limit_frac = 1 - thermal_margin_frac`` of its rating;
- each by more than :data:`VIOLATION_TOL` (p.u. for voltages, fraction of rating for
  loadings), so that a state the optimisation holds exactly at a limit is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lower and upper voltage limits by default [p.u.].
V_MIN_PU, V_MAX_PU = 0.95, 1.05
#: Safety margin taken off both voltage limits in the linear model by default [p.u.].
V_MARGIN_PU = 0.01
#: Fraction of every branch rating kept free by default (see :mod:`grid.lindistflow`).
THERMAL_MARGIN_FRAC = 0.05
#: How far past a limit a value must be to break it [p.u. and fraction of rating].
VIOLATION_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits the feeder is held to, margins included."""

    v_min_pu: float = V_MIN_PU
    v_max_pu: float = V_MAX_PU
    v_margin_pu: float = V_MARGIN_PU
    thermal_margin_frac: float = THERMAL_MARGIN_FRAC

    def __post_init__(self) -> None:
        if not 0 < self.v_min_pu + self.v_margin_pu < self.v_max_pu - self.v_margin_pu:
            raise ValueError(
                f"voltage limits leave no room: v_min_pu={self.v_min_pu}, "
                f"v_max_pu={self.v_max_pu}, v_margin_pu={self.v_margin_pu}"
            )
        if not 0 <= self.thermal_margin_frac < 1:
            raise ValueError(
                f"thermal_margin_frac must be in [0, 1), got {self.thermal_margin_frac}"
            )

    @property
    def v_lo_pu(self) -> float:
        """The lower voltage limit the model holds [p.u.]."""
        return self.v_min_pu + self.v_margin_pu

    @property
    def v_hi_pu(self) -> float:
        """The upper voltage limit the model holds [p.u.]."""
        return self.v_max_pu - self.v_margin_pu

    @property
    def loading_limit_frac(self) -> float:
        """The loading limit of every branch [fraction of rating]."""
        return 1.0 - self.thermal_margin_frac

    def under_voltage(self, v_pu: np.ndarray) -> np.ndarray:
        """Buses below the lower limit (by more than the tolerance)."""
        return np.asarray(v_pu) < self.v_lo_pu - VIOLATION_TOL

    def over_voltage(self, v_pu: np.ndarray) -> np.ndarray:
        """Buses above the upper limit (by more than the tolerance)."""
        return np.asarray(v_pu) > self.v_hi_pu + VIOLATION_TOL

    def bus_violation(self, v_pu: np.ndarray) -> np.ndarray:
        """Buses outside the voltage band."""
        return self.under_voltage(v_pu) | self.over_voltage(v_pu)

    def line_violation(self, loading_frac: np.ndarray) -> np.ndarray:
        """Branches above their loading limit."""
        return np.asarray(loading_frac) > self.loading_limit_frac + VIOLATION_TOL
