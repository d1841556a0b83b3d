"""Low-voltage cable and distribution-transformer data used by generated and file feeders.

Cable values are pandapower's standard line types (``pandapower.std_types``), which follow
the manufacturer data of the NAYY 0.6/1 kV PVC cables (DIN VDE 0276-603). The thermal rating
of a cable is its ampacity at 0.4 kV: ``s_max_kva = sqrt(3) * 0.4 kV * max_i_ka * 1000``.

Transformer short-circuit resistances follow the load losses of EN 50464-1 (class Ck),
``vkr_percent = P_k / S_n * 100``; short-circuit voltages are the usual 4 % (<= 630 kVA)
and 6 % (above). The sizes are EN 50464-1's preferred ratings from 100 kVA up to its
largest, 2500 kVA (load losses 13.5, 17, 21 and 26.5 kW at 1250, 1600, 2000 and 2500 kVA);
a 2500 kVA transformer already carries 3.6 kA at 0.4 kV, about the most one LV busbar takes.
"""

from __future__ import annotations

import math

# name -> (r_ohm_per_km, x_ohm_per_km, max_i_ka)
CABLE_TYPES: dict[str, tuple[float, float, float]] = {
    "NAYY 4x150 SE": (0.208, 0.080, 0.270),
    "NAYY 4x120 SE": (0.225, 0.080, 0.242),
    "NAYY 4x50 SE": (0.642, 0.083, 0.142),
}

# rated power [kVA] -> (vk_percent, vkr_percent)
TRANSFORMER_SIZES_KVA: dict[int, tuple[float, float]] = {
    100: (4.0, 1.75),
    160: (4.0, 1.47),
    250: (4.0, 1.30),
    400: (4.0, 1.15),
    630: (4.0, 1.03),
    800: (6.0, 1.05),
    1000: (6.0, 1.05),
    1250: (6.0, 1.08),
    1600: (6.0, 1.0625),
    2000: (6.0, 1.05),
    2500: (6.0, 1.06),
}


def cable_s_max_kva(max_i_ka: float, vn_kv: float = 0.4) -> float:
    """Three-phase thermal rating of a cable [kVA] from its ampacity [kA] and voltage [kV]."""
    return math.sqrt(3.0) * vn_kv * max_i_ka * 1000.0


def transformer_impedance_ohm(
    sn_kva: float, vk_percent: float, vkr_percent: float, vn_lv_kv: float
) -> tuple[float, float]:
    """Series impedance of a two-winding transformer referred to its LV side.

    Parameters
    ----------
    sn_kva : float
        Rated power [kVA].
    vk_percent, vkr_percent : float
        Short-circuit voltage and its resistive part [%].
    vn_lv_kv : float
        Rated LV voltage [kV].

    Returns
    -------
    (r_ohm, x_ohm) : tuple of float
        Series resistance and reactance [ohm] on the LV side (magnetising branch neglected,
        as pandapower does with ``pfe_kw = i0_percent = 0``).
    """
    z_base_ohm = vn_lv_kv**2 * 1000.0 / sn_kva
    z_ohm = vk_percent / 100.0 * z_base_ohm
    r_ohm = vkr_percent / 100.0 * z_base_ohm
    x_ohm = math.sqrt(max(z_ohm**2 - r_ohm**2, 0.0))
    return r_ohm, x_ohm
