"""The TABULA building classes a heat-pump household's building is drawn from (data only:
the scenario schema checks ``building_classes`` against it without importing numpy)."""

from __future__ import annotations

#: TABULA DE single-family classes: (first year, A_C_Ref [m²], h_tr + h_ve [W/(m²K)],
#: published energy need for heating q_h_nd [kWh/(m²a)], German reference climate).
BUILDING_CLASSES: dict[str, tuple[int, float, float, float]] = {
    "SFH.01": (0, 218.9, 4.30 + 0.51, 282.7),
    "SFH.02": (1860, 141.8, 4.12 + 0.51, 269.7),
    "SFH.03": (1919, 302.5, 3.22 + 0.51, 218.5),
    "SFH.04": (1949, 111.1, 4.19 + 0.51, 272.9),
    "SFH.05": (1958, 121.2, 4.09 + 0.51, 265.3),
    "SFH.06": (1969, 173.3, 2.85 + 0.51, 195.3),
    "SFH.07": (1979, 215.6, 1.69 + 0.51, 130.6),
    "SFH.08": (1984, 150.2, 2.12 + 0.51, 151.7),
    "SFH.09": (1995, 121.9, 1.32 + 0.51, 98.2),
    "SFH.10": (2002, 146.5, 0.91 + 0.43, 70.1),
    "SFH.11": (2010, 186.8, 1.04 + 0.51, 82.2),
    "SFH.12": (2016, 186.8, 0.76 + 0.51, 69.5),
}
