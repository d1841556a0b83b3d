"""Hosting limits of a finished run: whether it passes and which element binds.

Two sides. PV (``pv_share``, ``pv_kwp``) is hosted up to the *export* limits below; heat
pumps (``heat_pump_share``) up to the *import* limits: a heat-pump probe fails in any
interval where, after the check, a bus is below the lower voltage limit
``grid.v_min_pu + grid.v_margin_pu`` or a line (transformer included) carrying power
from the substation (``p_kw > 0``) is above its loading limit. §14a dimming that removes
such a violation is hosted (that is how dimming raises the capacity); the dimmed energy
and any heat not delivered are reported with the probe. The background load counts with
the community here (it is load too): on a feeder whose background alone breaks the lower
voltage limit (``ieee33``) no heat-pump share passes.

Without the market (the run's baseline, :mod:`scenarios.engine.baseline`, whose check is
the same but which writes no bus or line tables) a probe fails in any interval where
the baseline breaks more limits than the background alone (``baseline_violations >
violations_background``); no binding element is named for it.

The export side follows.

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
LimitKind = Literal[
    "over-voltage", "reverse-flow overload", "under-voltage", "forward-flow overload"
]
Side = Literal["export", "import"]


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
    v_min_pu: float = float("nan")
    max_forward_loading_frac: float = 0.0
    dimmed_kwh: float = 0.0
    unmet_heat_kwh: float = 0.0


def assess(out_dir: str | Path, scenario: Scenario, side: Side = "export") -> Assessment:
    """Check a finished run (grid check on) against the hosting limits of ``side``.

    See the module docstring for the definition of a violation.
    """
    if scenario.grid.check == "off":
        raise ScenarioError(["grid.check: hosting capacity needs the grid check ('pyomo')"])
    out = Path(out_dir)
    limits = scenario_limits(scenario)
    v_hi, load_hi = limits.v_hi_pu, limits.loading_limit_frac
    iv = pd.read_parquet(out / INTERVALS_FILE, columns=_INTERVAL_COLUMNS)
    buses = pd.read_parquet(out / BUSES_FILE, columns=["t", "bus", "v_pu"])
    lines = pd.read_parquet(out / LINES_FILE, columns=["t", "line", "p_kw", "loading_frac"])
    buses["bus"] = buses["bus"].astype(str)
    lines["line"] = lines["line"].astype(str)
    reverse, forward = lines[lines["p_kw"] < 0], lines[lines["p_kw"] > 0]
    extra = {
        "v_min_pu": float(buses["v_pu"].min()) if len(buses) else float("nan"),
        "max_forward_loading_frac": float(forward["loading_frac"].max()) if len(forward) else 0.0,
        "dimmed_kwh": float(iv["dimmed_kwh"].sum()),
        "unmet_heat_kwh": float(iv["unmet_heat_kwh"].sum()),
    }
    if side == "import":
        under_t = set(buses.loc[limits.under_voltage(buses["v_pu"].to_numpy()), "t"].astype(int))
        over_fwd = limits.line_violation(forward["loading_frac"].to_numpy())
        failing = under_t | set(forward.loc[over_fwd, "t"].astype(int))
        b, f = buses[buses["t"].isin(failing)], forward[forward["t"].isin(failing)]
        checks: tuple[_Check, ...] = (
            (b, "bus", "v_pu", limits.v_lo_pu, ACTIVE_TOL_PU, "under-voltage", -1),
            (f, "line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "forward-flow overload", 1),
        )
        return Assessment(
            passed=not failing,
            failing_intervals=len(failing),
            curtailed_kwh=float(iv["curtailed_kwh"].sum()),
            v_max_pu=float(buses["v_pu"].max()) if len(buses) else float("nan"),
            max_reverse_loading_frac=float(reverse["loading_frac"].max()) if len(reverse) else 0.0,
            binding=_binding(checks) if failing else None,
            **extra,
        )

    curtailed_t = set(iv.loc[iv["curtailed_kwh"] > CURTAIL_TOL_KWH, "t"].astype(int))
    over_t = set(buses.loc[limits.over_voltage(buses["v_pu"].to_numpy()), "t"].astype(int))
    overload = limits.line_violation(reverse["loading_frac"].to_numpy())
    overload_t = set(reverse.loc[overload, "t"].astype(int))
    failing = curtailed_t | over_t | overload_t
    v_max = float(buses["v_pu"].max()) if len(buses) else float("nan")
    rev_max = float(reverse["loading_frac"].max()) if len(reverse) else 0.0
    b, r = buses[buses["t"].isin(failing)], reverse[reverse["t"].isin(failing)]
    export_checks: tuple[_Check, ...] = (
        (b, "bus", "v_pu", v_hi, ACTIVE_TOL_PU, "over-voltage", 1),
        (r, "line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "reverse-flow overload", 1),
    )
    binding = _binding(export_checks) if failing else None
    return Assessment(
        passed=not failing,
        failing_intervals=len(failing),
        curtailed_kwh=float(iv["curtailed_kwh"].sum()),
        v_max_pu=v_max,
        max_reverse_loading_frac=rev_max,
        binding=binding,
        **extra,
    )


def assess_baseline(out_dir: str | Path, scenario: Scenario) -> Assessment:
    """The run's baseline (no market) against all limits, beyond the background's own."""
    if scenario.grid.check == "off":
        raise ScenarioError(["grid.check: hosting capacity needs the grid check ('pyomo')"])
    columns = [*_INTERVAL_COLUMNS, "baseline_violations", "violations_background"]
    columns += ["baseline_curtailed_kwh", "baseline_dimmed_kwh"]
    iv = pd.read_parquet(Path(out_dir) / INTERVALS_FILE, columns=columns)
    failing = int((iv["baseline_violations"] > iv["violations_background"]).sum())
    return Assessment(
        passed=failing == 0,
        failing_intervals=failing,
        curtailed_kwh=float(iv["baseline_curtailed_kwh"].sum()),
        v_max_pu=float("nan"),
        max_reverse_loading_frac=float("nan"),
        binding=None,
        v_min_pu=float("nan"),
        max_forward_loading_frac=float("nan"),
        dimmed_kwh=float(iv["baseline_dimmed_kwh"].sum()),
        unmet_heat_kwh=float("nan"),
    )


_INTERVAL_COLUMNS = ["t", "curtailed_kwh", "dimmed_kwh", "unmet_heat_kwh"]

_Check = tuple[pd.DataFrame, ElementKind, str, float, float, LimitKind, int]


def _binding(checks: tuple[_Check, ...]) -> Binding:
    """The element at its limit in the most failing intervals (then the one furthest
    over it); ``checks`` = (frame of the failing intervals, kind, column, limit,
    tolerance, limit name, +1 for an upper / −1 for a lower limit)."""
    candidates: list[tuple[int, float, Binding]] = []
    for frame, kind, column, limit, tol, name, sign in checks:
        active = frame[sign * (frame[column] - limit) >= -tol]
        for element, part in active.groupby(kind, sort=True):
            worst = part.loc[(sign * part[column]).idxmax()]
            hits = int(part["t"].nunique())
            excess = sign * (float(worst[column]) - limit)
            candidates.append(
                (
                    hits,
                    excess,
                    Binding(
                        kind, str(element), name, float(worst[column]), limit, int(worst["t"]), hits
                    ),
                )
            )
    if candidates:
        return max(candidates, key=lambda c: (c[0], c[1]))[2]
    # nothing sits at a limit (should not happen): name the bus furthest towards its limit
    frame, kind, column, limit, _, name, sign = checks[0]
    worst = frame.loc[(sign * frame[column]).idxmax()]
    return Binding(kind, str(worst[kind]), name, float(worst[column]), limit, int(worst["t"]), 0)
