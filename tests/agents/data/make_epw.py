"""Writes ``january.epw``: a small EnergyPlus weather file made up for the tests (not a
real site's data): 1-7 January only, UTC+1, air temperature ``−3 + 0.5·h − 0.2·d`` [°C]
at hour ``h`` (0-23, the start of EPW hour h + 1) of day ``d``; the other fields are
constant. ``python tests/agents/data/make_epw.py`` rewrites it."""

from __future__ import annotations

from pathlib import Path

HEADER = [
    "LOCATION,Testville,BE,DEU,made-up,000000,52.52,13.40,1.0,35.0",
    "DESIGN CONDITIONS,0",
    "TYPICAL/EXTREME PERIODS,0",
    "GROUND TEMPERATURES,0",
    "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0",
    "COMMENTS 1,made up for the p2pgrid tests",
    "COMMENTS 2,air temperature -3 + 0.5 h - 0.2 d",
    "DATA PERIODS,1,1,Data,Thursday, 1/ 1, 1/ 7",
]


def temp_c(day: int, hour0: int) -> float:
    return -3.0 + 0.5 * hour0 - 0.2 * day


def rows() -> list[str]:
    out = []
    for day in range(1, 8):
        for hour in range(1, 25):
            t = temp_c(day, hour - 1)
            fields = [2026, 1, day, hour, 60, "?9?9?9?9E0?9?9?9?9?9?9?9?9?9?9?9?9?9?9?9*9*9?9?9?9"]
            fields += [f"{t:.1f}", f"{t - 3:.1f}", 80, 101300, 0, 1415, 300, 0, 0, 0]
            fields += [0, 0, 0, 0, 180, 3.0, 5, 5, 20.0, 77777, 9, 999999999, 10, 0.1, 0]
            fields += [88, 0.2, 0.0, 0.0]
            out.append(",".join(str(f) for f in fields))
    return out


if __name__ == "__main__":
    path = Path(__file__).with_name("january.epw")
    path.write_text("\n".join(HEADER + rows()) + "\n", encoding="ascii")
