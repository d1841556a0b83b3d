"""A district run (issue 18): ``grid.feeder = "district:<N>x<H>"``, households on every
LV feeder, the feeder and district markets, results as one partitioned dataset.

Levels and synchronisation (README "Districts and nested markets"):

1. **Feeders** (one task per LV feeder, independent): each feeder's households run through
   the single-feeder engine, market, LV grid check and re-clearing included
   (:func:`scenarios.engine.district_feeder.run_feeder`), into ``OUT/feeder=<id>/``. A task
   returns only its aggregated residual curve and its transformer flow per interval (its
   residual orders stay in its partition).
2. **District** (on the caller): the MV check of the transformer flows
   (:mod:`scenarios.engine.district_mv`), then per interval the district market over the
   feeders' aggregated curves, split where the MV grid breaks
   (:mod:`scenarios.engine.district_market`); ``OUT/district/``.
3. **Back to the feeders** (one task per feeder): the fill and price of each of its steps;
   the task allocates them to its households and books them into the feeder's agents and
   intervals files (:func:`apply_district`).

The district's trades move no energy (they re-assign who the households' residual
exchange is with), so nothing a feeder does in an interval depends on the district's
clearing of an earlier one: the levels synchronise once per run (the whole run is one
block of intervals), and the feeders exchange nothing with each other.

With ``market.levels = ["feeder"]`` steps 2 and 3 are skipped (the MV check still runs):
every ``feeder=<id>/`` holds exactly the files of a single run of its households
(``simulation.seed + k`` for feeder ``k``).

Tasks run in this process by default, or on a Dask client (``client``, or
``scheduler`` / ``workers`` as sweeps take them, :mod:`scenarios.studies.dask_cluster`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from grid.district_networks import load_district
from scenarios.config.schema import Scenario
from scenarios.engine.district_feeder import FeederCurve, apply_district, run_feeder
from scenarios.engine.district_kpis import level_kpis
from scenarios.engine.district_market import clear_levels
from scenarios.engine.district_mv import check_mv
from scenarios.engine.grid_stage import scenario_limits
from scenarios.engine.inputs import timeline
from scenarios.engine.runner import RunResult
from scenarios.errors import ScenarioError
from scenarios.reports.district_report import write_district_report
from scenarios.results.files import write_json, write_table
from scenarios.results.out_dir import make_out_dir

if TYPE_CHECKING:
    from distributed import Client

DISTRICT_DIR = "district"
"""The district level's own files: ``OUT/district/``."""


def run_district(
    scenario: Scenario,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunResult:
    """Run the district ``grid.feeder`` names (module docstring); ``workers`` > 1 or a
    ``scheduler`` runs the feeders on Dask."""
    started = time.perf_counter()
    out = make_out_dir(out_dir)
    district = load_district(scenario.grid.feeder, households=scenario.community.households)
    if scenario.community.households < district.n_feeders:
        raise ScenarioError(
            [
                f"community.households: {scenario.community.households} households for "
                f"{district.n_feeders} LV feeders of {district.name}; give every feeder one"
            ]
        )
    sim = scenario.simulation
    n_t = sim.n_intervals
    owned = None
    if client is None and (scheduler or (workers or 1) > 1):
        from scenarios.studies.dask_cluster import connect_client

        client = owned = connect_client(scheduler, workers)
    try:
        ks = list(range(district.n_feeders))
        parts: list[FeederCurve] = _map(client, run_feeder, [(scenario, k, out) for k in ks])
        if progress is not None:
            progress(n_t, n_t)
        mv = None
        if scenario.grid.check != "off":
            slack_p = np.stack([p.slack_p_kw for p in parts], axis=1)
            slack_q = np.stack([p.slack_q_kvar for p in parts], axis=1)
            mv = check_mv(district, slack_p, slack_q, scenario_limits(scenario))
            _write_transformers(out, parts, slack_p, slack_q)
        level = None
        if "district" in scenario.market.levels:
            fee = scenario.market.district_fee_per_kwh
            level = clear_levels(parts, mv, n_t, fee)
            back = zip(parts, level.filled_kwh, level.price_per_kwh, strict=True)
            _map(client, apply_district, [(p.feeder_id, f, pr, fee, out) for p, f, pr in back])
            d = out / DISTRICT_DIR
            d.mkdir(exist_ok=True)
            intervals = level.intervals
            intervals.insert(1, "timestamp", timeline(scenario))
            write_table(intervals, d / "intervals.parquet")
            write_table(level.trades, d / "trades.parquet")
        elif mv is not None:
            d = out / DISTRICT_DIR
            d.mkdir(exist_ok=True)
            write_table(_mv_frame(scenario, mv), d / "intervals.parquet")
    finally:
        if owned is not None:
            from scenarios.studies.dask_cluster import close_client

            close_client(owned)
    kpis = level_kpis(out, district.feeder_ids, scenario, mv is not None)
    wall = time.perf_counter() - started
    write_json(kpis, out / "kpis.json")
    write_json(
        {
            "scenario": scenario.model_dump(mode="json"),
            "district": district.name,
            "feeders": list(district.feeder_ids),
            "households": scenario.community.households,
            "intervals": n_t,
            "wall_time_s": wall,
        },
        out / "manifest.json",
    )
    return RunResult(out, kpis, write_district_report(out, scenario, district), wall)


def _map(client: Client | None, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> Any:
    """``[fn(*a) for a in args]``, on the Dask ``client`` when there is one (results in
    the order of ``args``)."""
    if client is None:
        return [fn(*a) for a in args]
    futures = [client.submit(fn, *a, pure=False) for a in args]
    return client.gather(futures)


def _mv_frame(scenario: Scenario, mv: Any) -> pd.DataFrame:
    n_t = scenario.simulation.n_intervals
    return pd.DataFrame(
        {
            "t": np.arange(n_t, dtype=np.int32),
            "timestamp": timeline(scenario),
            "mv_v_min_pu": mv.v_min_pu,
            "mv_v_max_pu": mv.v_max_pu,
            "mv_max_line_loading_frac": mv.max_loading_frac,
            "mv_violations": mv.violations.astype(np.int32),
        }
    )


def _write_transformers(
    out: Path, parts: list[FeederCurve], slack_p: np.ndarray, slack_q: np.ndarray
) -> None:
    """``OUT/district/transformers.parquet``: every LV feeder's transformer flow per
    interval [kW, kvar], export to the MV grid positive."""
    n_t, nf = slack_p.shape
    d = out / DISTRICT_DIR
    d.mkdir(exist_ok=True)
    frame = pd.DataFrame(
        {
            "t": np.repeat(np.arange(n_t, dtype=np.int32), nf),
            "feeder": pd.Categorical(np.tile([p.feeder_id for p in parts], n_t)),
            "p_kw": slack_p.reshape(-1),
            "q_kvar": slack_q.reshape(-1),
        }
    )
    write_table(frame, d / "transformers.parquet")
