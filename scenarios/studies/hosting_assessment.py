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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import scenario_limits
from scenarios.errors import ScenarioError
from scenarios.results.blocks import read_blocks
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

    See the module docstring for the definition of a violation. ``buses.parquet`` and
    ``lines.parquet`` are read a block of rows at a time (only the columns needed), twice: the
    failing intervals and the extremes first, then the elements at their limit in the
    failing intervals, so the memory does not grow with the run's length.
    """
    if scenario.grid.check == "off":
        raise ScenarioError(["grid.check: hosting capacity needs the grid check ('pyomo')"])
    out = Path(out_dir)
    limits = scenario_limits(scenario)
    v_hi, load_hi = limits.v_hi_pu, limits.loading_limit_frac
    iv = pd.read_parquet(out / INTERVALS_FILE, columns=_INTERVAL_COLUMNS)
    bus_file, line_file = out / BUSES_FILE, out / LINES_FILE
    v_lo_seen, v_hi_seen = np.inf, -np.inf
    peak = {1: 0.0, -1: 0.0}  # the highest loading with forward (+1) and reverse (-1) flow
    under_t: set[int] = set()
    over_t: set[int] = set()
    over_fwd_t: set[int] = set()
    overload_t: set[int] = set()
    for buses in _batches(bus_file, _BUS_COLUMNS):
        v, t = buses["v_pu"].to_numpy(), buses["t"].to_numpy()
        v_lo_seen, v_hi_seen = min(v_lo_seen, np.nanmin(v)), max(v_hi_seen, np.nanmax(v))
        under_t.update(t[limits.under_voltage(v)].tolist())
        over_t.update(t[limits.over_voltage(v)].tolist())
    for lines in _batches(line_file, _LINE_COLUMNS):
        for sign, seen_t in ((1, over_fwd_t), (-1, overload_t)):
            part = lines[np.sign(lines["p_kw"]) == sign]
            load = part["loading_frac"].to_numpy()
            seen_t.update(part["t"].to_numpy()[limits.line_violation(load)].tolist())
            if len(load):
                peak[sign] = max(peak[sign], float(np.nanmax(load)))
    seen = np.isfinite(v_lo_seen)
    extra = {
        "v_min_pu": float(v_lo_seen) if seen else float("nan"),
        "max_forward_loading_frac": peak[1],
        "dimmed_kwh": float(iv["dimmed_kwh"].sum()),
        "unmet_heat_kwh": float(iv["unmet_heat_kwh"].sum()),
    }
    if side == "import":
        failing = under_t | over_fwd_t
        checks = (
            _Active("bus", "v_pu", limits.v_lo_pu, ACTIVE_TOL_PU, "under-voltage", -1),
            _Active("line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "forward-flow overload",
                    1, flow=1),
        )  # fmt: skip
    else:
        curtailed_t = set(iv.loc[iv["curtailed_kwh"] > CURTAIL_TOL_KWH, "t"].astype(int))
        failing = curtailed_t | over_t | overload_t
        checks = (
            _Active("bus", "v_pu", v_hi, ACTIVE_TOL_PU, "over-voltage", 1),
            _Active("line", "loading_frac", load_hi, ACTIVE_TOL_LOADING, "reverse-flow overload",
                    1, flow=-1),
        )  # fmt: skip
    return Assessment(
        passed=not failing,
        failing_intervals=len(failing),
        curtailed_kwh=float(iv["curtailed_kwh"].sum()),
        v_max_pu=float(v_hi_seen) if seen else float("nan"),
        max_reverse_loading_frac=peak[-1],
        binding=_binding(checks, failing, bus_file, line_file) if failing else None,
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

_BUS_COLUMNS = ["t", "bus", "v_pu"]
_LINE_COLUMNS = ["t", "line", "p_kw", "loading_frac"]


def _batches(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    """``columns`` of a buses or lines table a block of rows at a time, element names as str."""
    for table in read_blocks(path, columns):
        frame = table.to_pandas()
        frame[columns[1]] = frame[columns[1]].astype(str)
        yield frame


class _Active:
    """Of one table's rows in the failing intervals (lines: only those whose flow has the
    sign ``flow``): per element the rows at its limit (``sign * (value − limit) >= −tol``,
    ``sign`` +1 for an upper, −1 for a lower limit) and its worst such value with its
    interval; and the worst row of all (for when no element is at its limit). One row
    per element and interval, as the run writes them; ties go to the first row."""

    def __init__(
        self, kind: ElementKind, column: str, limit: float, tol: float, name: LimitKind,
        sign: int, flow: int = 0,
    ) -> None:  # fmt: skip
        self.kind, self.column, self.limit, self.tol = kind, column, limit, tol
        self.name, self.sign, self.flow = name, sign, flow
        self.hits: dict[str, int] = {}
        self.worst: dict[str, tuple[float, int]] = {}  # signed value, interval
        self.top: tuple[float, str, int] | None = None

    def add(self, frame: pd.DataFrame, failing: np.ndarray) -> None:
        keep = frame["t"].isin(failing)
        if self.flow:
            keep &= np.sign(frame["p_kw"]) == self.flow
        part = frame[keep].reset_index(drop=True)
        if part.empty:
            return
        signed = self.sign * part[self.column].to_numpy(dtype=np.float64)
        i = int(np.argmax(signed))
        if self.top is None or signed[i] > self.top[0]:
            self.top = (float(signed[i]), str(part[self.kind][i]), int(part["t"][i]))
        at = signed - self.sign * self.limit >= -self.tol
        for element, rows in part[at].groupby(self.kind, sort=False):
            j = int(np.argmax(self.sign * rows[self.column].to_numpy(dtype=np.float64)))
            value = self.sign * float(rows[self.column].iloc[j])
            name = str(element)
            self.hits[name] = self.hits.get(name, 0) + len(rows)
            if name not in self.worst or value > self.worst[name][0]:
                self.worst[name] = (value, int(rows["t"].iloc[j]))

    def binding(self, element: str, signed: float, t: int, hits: int) -> Binding:
        value = self.sign * signed
        return Binding(self.kind, element, self.name, value, self.limit, t, hits)


def _binding(
    checks: tuple[_Active, _Active], failing: set[int], bus_file: Path, line_file: Path
) -> Binding:
    """The element at its limit in the most failing intervals (then the one furthest
    over it); ``checks``: the buses' and the lines' (module docstring)."""
    failing_t = np.array(sorted(failing), dtype=np.int64)
    for check, path, columns in zip(
        checks, (bus_file, line_file), (_BUS_COLUMNS, _LINE_COLUMNS), strict=True
    ):
        for frame in _batches(path, columns):
            check.add(frame, failing_t)
    candidates: list[tuple[int, float, Binding]] = []
    for check in checks:
        for element in sorted(check.worst):
            signed, t = check.worst[element]
            hits = check.hits[element]
            binding = check.binding(element, signed, t, hits)
            candidates.append((hits, signed - check.sign * check.limit, binding))
    if candidates:
        return max(candidates, key=lambda c: (c[0], c[1]))[2]
    # nothing sits at a limit (should not happen): name the bus furthest towards its limit
    bus = checks[0]
    if bus.top is None:
        raise ValueError(f"{bus_file}: no bus in the failing intervals")
    signed, element, t = bus.top
    return bus.binding(element, signed, t, 0)
