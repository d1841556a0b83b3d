"""What a meter at a household's grid connection sees, in the community's arrays.

A household's meter measures its grid connection: the interval's imported energy is its
``demand_kwh`` and its exported energy its ``generation_kwh`` (:func:`as_metered`), and a
meter-backed household trades its metered net position only (:func:`without_devices`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from agents.devices import DEVICE_KINDS
from agents.households.table import Households


def as_metered(generation_kwh: np.ndarray, demand_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a meter at the grid connection sees: ``(export, import)`` [kWh]."""
    net = generation_kwh - demand_kwh
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)


def without_devices(hh: Households, mask: np.ndarray) -> Households:
    """The table with every registered device of the households in ``mask`` removed
    (a meter-backed household trades its metered net position only)."""
    zero = {
        name: np.where(mask, np.zeros_like(getattr(hh, name)), getattr(hh, name))
        for kind in DEVICE_KINDS
        for name in kind.columns
    }
    return replace(hh, **zero)
