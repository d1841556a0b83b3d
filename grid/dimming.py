"""§14a EnWG dimming: the grid operator's first relief for a stressed feeder.

Since 2024 a German grid operator may dim the draw of controllable devices (heat pumps,
wallboxes, batteries, ...) registered under §14a EnWG to a guaranteed minimum per device,
4.2 kW (BNetzA determination BK6-22-300), when the feeder is stressed, in exchange for
reduced grid fees. Here (arrays over device kinds × households):

- :func:`dimming_cuts` — how much of each registered device's planned draw (its own
  charging plus its flexible buy orders) goes: everything above the guaranteed minimum
  per device, the flexible orders first; own charging only as far as the household
  draws it from the feeder (its net buy order: a device running on the household's own
  PV loads nothing), pro rata over its devices where that limits it. No device is ever
  cut below the minimum.
- :func:`relieves` — whether the cuts relieve a broken limit (consumption can only
  relieve an under-voltage or a branch it overloads): only then does the operator dim.
"""

from __future__ import annotations

import numpy as np

from grid.limits import VIOLATION_TOL, Limits


def dimming_cuts(
    own_kwh: np.ndarray,
    flex_buy_kwh: np.ndarray,
    net_buy_kwh: np.ndarray,
    registered: np.ndarray,
    min_kwh: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Dimmed own energy and dimmed flexible buy orders [kWh], shape (kinds, n).

    ``own_kwh`` and ``flex_buy_kwh`` are each controllable kind's own energy (charging
    positive) and flexible buy order energy per household, shape (kinds, n);
    ``net_buy_kwh`` each household's net buy order (n,), ``registered`` whether its
    devices are registered (n,), ``min_kwh`` the guaranteed minimum per device over the
    interval.
    """
    own = np.maximum(own_kwh, 0.0)
    excess = np.where(registered, np.maximum(own + flex_buy_kwh - min_kwh, 0.0), 0.0)
    flex_cut = np.minimum(flex_buy_kwh, excess)
    own_cut = excess - flex_cut
    total = own_cut.sum(axis=0)
    allowed = np.minimum(total, np.maximum(net_buy_kwh, 0.0))
    scale = np.divide(allowed, total, out=np.zeros_like(total), where=total > 0)
    return own_cut * scale, flex_cut


def relieves(
    limits: Limits,
    v_pu: np.ndarray,
    loading_frac: np.ndarray,
    v_dimmed_pu: np.ndarray,
    loading_dimmed_frac: np.ndarray,
) -> bool:
    """Whether dimming relieves a broken limit: raises the lowest voltage among the
    under-voltage buses, or lowers the loading of an overloaded branch."""
    under = limits.under_voltage(v_pu)
    over = limits.line_violation(loading_frac)
    raised = under.any() and v_dimmed_pu[under].min() > v_pu[under].min() + VIOLATION_TOL
    lowered = (loading_dimmed_frac[over] < loading_frac[over] - VIOLATION_TOL).any()
    return bool(raised or lowered)
