"""PV hosting limits of a finished run: whether it passes and which element binds.

What counts as a violation. On real feeders the feeder's own background load breaks the
lower voltage limit on its own (on ``ieee33`` in every interval, see
``violations_background``), and PV cannot cause an under-voltage; PV breaks the *upper*
limits. A probe run therefore fails when, in any interval,

1. the grid check curtailed PV (``curtailed_kwh > 0`` in ``intervals.parquet``): the
   re-clearing curtails PV only to hold an over-voltage or a reverse-flow overload the
   uncurtailed flows break, so the feeder could not take that PV; or
2. a bus is above the upper voltage limit ``grid.v_max_pu − grid.v_margin_pu`` after the
   check (an over-voltage the re-clearing could not remove); or
3. a line (the transformer included) that carries power towards the substation
   (``p_kw < 0``, reverse flow) is above its loading limit after the check.

Limits, margins and the tolerance are the feeder model's own (:mod:`grid.limits`, built from
the scenario by :func:`scenarios.engine.grid_stage.scenario_limits`), so a probe fails on exactly
the violations the run's check counts.

The background load alone never breaks any of these (it is load: it lowers voltages and
drives forward flow), so every such violation is the community's. Under-voltage and
forward-flow overloads (load and EV charging) are not PV hosting limits and are not
counted. A violation that the market's grid-aware re-clearing removes by re-dispatching
batteries or V2G alone, without curtailing PV, is hosted: that is how storage raises
hosting capacity.

The binding element is read from ``buses.parquet`` and ``lines.parquet`` of the lowest
failing probe: of the buses at the upper voltage limit and the reverse-flow lines at
their loading limit (within :data:`ACTIVE_TOL_PU`, :data:`ACTIVE_TOL_LOADING`) in the
failing intervals, the one that is at its limit in the most intervals (then the one
furthest over it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import scenario_limits
from scenarios.errors import ScenarioError
from scenarios.results.files import BUSES_FILE, INTERVALS_FILE, LINES_FILE

CURTAIL_TOL_KWH = 1e-6
"""Curtailment above this [kWh] in an interval fails the probe."""
ACTIVE_TOL_PU = 1e-3
"""How close to the upper voltage limit a bus must be to count as binding [p.u.]."""
ACTIVE_TOL_LOADING = 0.01
"""How close to its loading limit a line must be to count as binding [fraction of
rating]; the re-clearing holds the loading circle with an inscribed polygon, which stays
up to about half a percent inside it."""

ElementKind = Literal["bus", "line"]
LimitKind = Literal["over-voltage", "reverse-flow overload"]


@dataclass(frozen=True)
class Binding:
    """The element that limits hosting capacity in a failing run."""

    kind: ElementKind
    element: str
    limit: LimitKind
    worst_value: float
    """Highest voltage [p.u.] or loading [fraction of rating] in the failing intervals."""
    limit_value: float
    t: int
    """Interval of the worst value."""
    intervals: int
    """Failing intervals in which the element is at or over its limit."""

    def describe(self) -> str:
        unit = "p.u." if self.kind == "bus" else "of rating"
        return (
            f"{self.kind} {self.element} ({self.limit}: {self.worst_value:.4f} {unit} "
            f"vs limit {self.limit_value:.4f}, at its limit in {self.intervals} interval(s))"
        )


@dataclass(frozen=True)
class Assessment:
    """Whether a run stays within the PV hosting limits, and what binds if not."""

    passed: bool
    failing_intervals: int
    curtailed_kwh: float
    v_max_pu: float
    max_reverse_loading_frac: float
    binding: Binding | None


def assess(out_dir: str | Path, scenario: Scenario) -> Assessment:
    """Check a finished run (grid check on) against the PV hosting limits.

    See the module docstring for the definition of a violation.
    """
    if scenario.grid.check == "off":
        raise ScenarioError(["grid.check: hosting capacity needs the grid check ('pyomo')"])
    out = Path(out_dir)
    limits = scenario_limits(scenario)
    v_hi, load_hi = limits.v_hi_pu, limits.loading_limit_frac
    iv = pd.read_parquet(out / INTERVALS_FILE, columns=["t", "curtailed_kwh"])
    buses = pd.read_parquet(out / BUSES_FILE, columns=["t", "bus", "v_pu"])
    lines = pd.read_parquet(out / LINES_FILE, columns=["t", "line", "p_kw", "loading_frac"])
    buses["bus"] = buses["bus"].astype(str)
    lines["line"] = lines["line"].astype(str)
    reverse = lines[lines["p_kw"] < 0]

    curtailed_t = set(iv.loc[iv["curtailed_kwh"] > CURTAIL_TOL_KWH, "t"].astype(int))
    over_t = set(buses.loc[limits.over_voltage(buses["v_pu"].to_numpy()), "t"].astype(int))
    overload = limits.line_violation(reverse["loading_frac"].to_numpy())
    overload_t = set(reverse.loc[overload, "t"].astype(int))
    failing = curtailed_t | over_t | overload_t
    v_max = float(buses["v_pu"].max()) if len(buses) else float("nan")
    rev_max = float(reverse["loading_frac"].max()) if len(reverse) else 0.0
    binding = _binding(failing, buses, reverse, v_hi, load_hi) if failing else None
    return Assessment(
        passed=not failing,
        failing_intervals=len(failing),
        curtailed_kwh=float(iv["curtailed_kwh"].sum()),
        v_max_pu=v_max,
        max_reverse_loading_frac=rev_max,
        binding=binding,
    )


def _binding(
    failing: set[int], buses: pd.DataFrame, reverse: pd.DataFrame, v_hi: float, load_hi: float
) -> Binding:
    """The element at its upper limit in the most failing intervals."""
    b = buses[buses["t"].isin(failing)]
    r = reverse[reverse["t"].isin(failing)]
    candidates: list[tuple[int, float, Binding]] = []
    checks: tuple[tuple[pd.DataFrame, ElementKind, str, float, float, LimitKind], ...] = (
        (b, "bus", "v_pu", v_hi, ACTIVE_TOL_PU, "over-voltage"),
        (r, "line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "reverse-flow overload"),
    )
    for frame, kind, column, limit, tol, name in checks:
        active = frame[frame[column] >= limit - tol]
        for element, part in active.groupby(kind, sort=True):
            worst = part.loc[part[column].idxmax()]
            hits = int(part["t"].nunique())
            excess = float(worst[column]) / limit
            candidates.append(
                (
                    hits,
                    excess,
                    Binding(
                        kind,
                        str(element),
                        name,
                        float(worst[column]),
                        limit,
                        int(worst["t"]),
                        hits,
                    ),
                )
            )
    if candidates:
        return max(candidates, key=lambda c: (c[0], c[1]))[2]
    # nothing sits at a limit (should not happen): name the highest voltage
    worst = b.loc[b["v_pu"].idxmax()]
    return Binding(
        "bus", str(worst["bus"]), "over-voltage", float(worst["v_pu"]), v_hi, int(worst["t"]), 0
    )
