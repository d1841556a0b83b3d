"""Market mechanisms side by side: the same scenario once per mechanism.

``p2pgrid compare FILE --mechanisms uniform,pay_as_bid,mcafee,cda --out DIR`` runs the
scenario once per mechanism with everything else unchanged (same seed, so the same
households, profiles, limit prices and EV trips; only ``market.mechanism`` differs)
and writes

==========================  ======================================================
``<mechanism>/``            that run's full results (the files of ``p2pgrid run``;
                            ``sharing:equal`` runs in ``sharing-equal/``)
``comparison.parquet``      one row per mechanism, the columns of :data:`COLUMNS`
``comparison.csv``          the same table as CSV
``household_savings.parquet``  one row per household and mechanism: ``agent_id``,
                            ``mechanism``, ``savings`` [currency] over the run
``compare.html``            figures and the table, readable offline
==========================  ======================================================

Definitions follow ``kpis.json`` (:mod:`scenarios.kpis.compute`): ``efficiency`` is the
mechanism's welfare at the declared limit prices over the LP welfare optimum of the
same books (computed in the engine per interval, before network re-clearing);
``market_surplus`` is what the market operator keeps; ``savings_gini`` the Gini
coefficient of household savings against the no-P2P baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from market.mechanism_names import all_names
from scenarios.config.loader import validate_scenario
from scenarios.config.schema import Scenario
from scenarios.engine.runner import run
from scenarios.errors import ScenarioError
from scenarios.kpis.compute import household_savings as kpi_household_savings
from scenarios.results.files import INTERVALS_FILE, MANIFEST_FILE
from scenarios.results.member_totals import member_totals
from scenarios.results.out_dir import make_out_dir
from scenarios.studies.compare_p2p import P2P_COLUMNS, p2p_columns

COMPARISON_FILE = "comparison.parquet"
COMPARISON_CSV = "comparison.csv"
SAVINGS_FILE = "household_savings.parquet"
COMPARE_REPORT = "compare.html"

COLUMNS: tuple[str, ...] = (
    "p2p_kwh",
    "p2p_share",
    "self_sufficiency",
    "welfare",
    "optimal_welfare",
    "efficiency",
    "market_surplus",
    "grid_fees",
    "mean_price_per_kwh",
    "mean_seller_price_per_kwh",
    "community_savings",
    "savings_frac",
    "household_savings_min",
    "household_savings_median",
    "household_savings_max",
    "households_better_off_frac",
    "savings_gini",
    "recleared_intervals",
    "curtailed_kwh",
)
"""KPIs copied from each run's ``kpis.json`` into the comparison table (after
``mechanism``; then :data:`scenarios.studies.compare_p2p.P2P_COLUMNS`, the bilateral
market's figures, and ``wall_time_s``)."""

CompareProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Comparison:
    """Where the comparison is, and its tables."""

    out_dir: Path
    table: pd.DataFrame
    savings: pd.DataFrame
    report_path: Path


def parse_mechanisms(text: str | Sequence[str]) -> list[str]:
    """Mechanism names from ``"uniform,pay_as_bid"`` (or a list), checked.

    Raises
    ------
    ScenarioError
        Unknown or repeated names, or none at all, each reported.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip() for s in items if s.strip()]
    problems = []
    valid = all_names()
    if not names:
        problems.append("--mechanisms: give at least one of " + ", ".join(valid))
    seen: set[str] = set()
    for name in names:
        if name not in valid:
            problems.append(f"--mechanisms: {name!r} is not one of {', '.join(valid)}")
        elif name in seen:
            problems.append(f"--mechanisms: {name!r} is listed twice")
        seen.add(name)
    if problems:
        raise ScenarioError(problems, source="command line")
    return names


def run_dir_name(mechanism: str) -> str:
    """The subdirectory of a mechanism's run: its name, ``sharing:equal`` as
    ``sharing-equal`` (no colon in a path)."""
    return mechanism.replace(":", "-")


def with_mechanism(scenario: Scenario, mechanism: str) -> Scenario:
    """The scenario with ``market.mechanism`` replaced (validated again);
    ``sharing:<key>`` also sets ``[market.sharing] key``; ``p2p`` turns on
    ``[market.p2p] central_check`` (the central LP of every interval, the proof)."""
    data = scenario.model_dump()
    data["market"] = {**data["market"], "mechanism": mechanism}
    if mechanism == "p2p":
        data["market"]["p2p"] = {**data["market"]["p2p"], "central_check": True}
    return validate_scenario(data)


def household_savings(run_dir: Path) -> pd.DataFrame:
    """Each household's savings over a run [currency], as in ``kpis.json``:
    ``Σ (baseline_cost − cost)`` plus the retail value of the energy it has stored at the
    end more than its baseline (:func:`scenarios.kpis.compute.household_savings`).

    From the members' totals (:func:`scenarios.results.member_totals.member_totals`:
    agents.parquet or agents_daily.parquet read in record batches), so a year-long run
    of many households does not have to fit in memory.
    """
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    retail = manifest["scenario"]["market"]["retail_price_per_kwh"]
    totals = member_totals(run_dir)
    saved = kpi_household_savings(
        totals["cost"].to_numpy(),
        totals["baseline_cost"].to_numpy(),
        totals["stored_delta_kwh"].to_numpy(),
        retail,
    )
    return pd.DataFrame({"agent_id": totals["agent_id"].to_numpy(), "savings": saved})


def compare(
    scenario: Scenario,
    mechanisms: Sequence[str],
    out_dir: str | Path,
    progress: CompareProgress | None = None,
) -> Comparison:
    """Run ``scenario`` once per mechanism and write the comparison.

    Parameters
    ----------
    scenario : Scenario
        The scenario; its ``market.mechanism`` is replaced by each of ``mechanisms``.
    mechanisms : sequence of str
        Keys of ``market.MECHANISMS``, or ``sharing:<key>`` for an allocation key.
    out_dir : path
        Directory for the runs (one subdirectory per mechanism) and the comparison.
    progress : callable, optional
        ``progress(mechanism, done_intervals, total_intervals)``.

    Returns
    -------
    Comparison

    Raises
    ------
    ScenarioError
        Unknown mechanisms, or a scenario that cannot be run.
    """
    from scenarios.reports.compare import write_comparison

    names = parse_mechanisms(mechanisms)
    out = make_out_dir(out_dir)
    rows: list[dict[str, object]] = []
    savings: list[pd.DataFrame] = []
    intervals: dict[str, pd.DataFrame] = {}
    for name in names:
        variant = with_mechanism(scenario, name)
        callback = None
        if progress is not None:
            callback = lambda done, total, _n=name: progress(_n, done, total)  # noqa: E731
        run_dir = out / run_dir_name(name)
        result = run(variant, run_dir, progress=callback)
        row: dict[str, object] = {"mechanism": name}
        row.update({key: result.kpis.get(key) for key in COLUMNS})
        row.update(p2p_columns(variant, run_dir))
        row["wall_time_s"] = result.wall_time_s
        rows.append(row)
        saved = household_savings(run_dir)
        saved.insert(1, "mechanism", name)
        savings.append(saved)
        intervals[name] = pd.read_parquet(
            run_dir / INTERVALS_FILE,
            columns=["timestamp", "clearing_price_per_kwh", "seller_price_per_kwh", "p2p_kwh"],
        )
    table = pd.DataFrame(rows)
    for key in (*COLUMNS, *P2P_COLUMNS):
        table[key] = pd.to_numeric(table[key], errors="coerce").astype("float64")
    savings_frame = pd.concat(savings, ignore_index=True)
    table.to_parquet(out / COMPARISON_FILE, index=False)
    table.to_csv(out / COMPARISON_CSV, index=False)
    savings_frame.to_parquet(out / SAVINGS_FILE, index=False)
    report = write_comparison(
        out / COMPARE_REPORT,
        scenario.name,
        table,
        savings_frame,
        intervals,
        scenario.market.currency,
    )
    return Comparison(out, table, savings_frame, report)
