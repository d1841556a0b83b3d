"""A district run (issue 18): ``grid.feeder = "district:<N>x<H>"``, households on every
LV feeder, the feeder and district markets, results as one partitioned dataset.

Levels and synchronisation (README "Districts and nested markets"):

1. **Feeders** (one task per LV feeder, independent, the whole run): each feeder's
   households run through the single-feeder engine, market, LV grid check and re-clearing
   included (:func:`scenarios.engine.district_feeder.stream_feeder`), into
   ``OUT/feeder=<id>/``. At the end of every block of ``[market] district_block_intervals``
   intervals (default a day) the task appends the block's residual orders
   (``district_orders.parquet``) and transformer flows (``_transformer.parquet``) to its
   partition, one row group per block; it returns nothing.
2. **District** (on the caller, once every feeder task is done), block by block
   (:mod:`scenarios.engine.district_blocks`): read every feeder's block of transformer
   flows and of residual orders, merge each feeder's orders into its aggregated curve, run
   the MV check of the block (:mod:`scenarios.engine.district_mv`) and the district market
   of each interval of it, split where the MV grid breaks
   (:mod:`scenarios.engine.district_market`); append the block's rows to ``OUT/district/``
   and each feeder's step fills to its ``_district_steps.parquet``.
3. **Back to the feeders** (one task per feeder): block by block, the task allocates the
   fills to its households and books them into its agents and intervals files, read and
   written again a block at a time (:mod:`scenarios.engine.district_booking`).

The district's trades move no energy (they re-assign who the households' residual
exchange is with), so nothing a feeder does in an interval depends on the district's
clearing of an earlier one: the feeders run the whole run without waiting for the
district, and exchange nothing with each other. What any process holds is one block (the
caller: every feeder's curve and flows of one block; a feeder task: its engine window and
one block of residuals), not the run. ``_transformer.parquet`` and
``_district_steps.parquet`` are removed once read.

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
import pyarrow as pa

from grid.district import District
from grid.district_networks import load_district
from scenarios.config.schema import Scenario
from scenarios.engine.district_blocks import AppendWriter, BlockReader, block_range, n_blocks
from scenarios.engine.district_feeder import (
    DISTRICT_DIR,
    ORDERS_FILE,
    STEPS_FILE,
    TRANSFORMER_FILE,
    TRANSFORMERS_FILE,
    book_feeder,
    curve,
    feeder_dir,
    stream_feeder,
)
from scenarios.engine.district_kpis import level_kpis
from scenarios.engine.district_market import clear_levels
from scenarios.engine.district_mv import MvCheck, check_mv, mv_model
from scenarios.engine.grid_stage import scenario_limits
from scenarios.engine.inputs import timeline
from scenarios.engine.runner import RunResult
from scenarios.errors import ScenarioError
from scenarios.reports.district_report import write_district_report
from scenarios.results.files import write_json
from scenarios.results.out_dir import make_out_dir
from scenarios.results.schema import INTERVALS_FILE, TRADES_FILE

if TYPE_CHECKING:
    from distributed import Client


def run_district(
    scenario: Scenario,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    block_intervals: int | None = None,
) -> RunResult:
    """Run the district ``grid.feeder`` names (module docstring); ``workers`` > 1 or a
    ``scheduler`` runs the feeders on Dask; the levels synchronise every
    ``[market] district_block_intervals`` intervals (default: a day), or every
    ``block_intervals`` where that is given (tests)."""
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
    key = scenario.market.district_block_intervals
    block = block_intervals if block_intervals is not None else key or sim.intervals_per_day
    if block < 1:
        raise ScenarioError([f"block_intervals: {block}; give at least 1 interval"])
    mv_on = scenario.grid.check != "off"
    two = "district" in scenario.market.levels
    owned = None
    if client is None and (scheduler or (workers or 1) > 1):
        from scenarios.studies.dask_cluster import connect_client

        client = owned = connect_client(scheduler, workers)
    try:
        ks = list(range(district.n_feeders))
        _map(client, stream_feeder, [(scenario, k, out, block) for k in ks])
        if progress is not None:
            progress(n_t, n_t)
        if mv_on or two:
            traded = _levels(scenario, district, out, block)
        if two:
            fee = scenario.market.district_fee_per_kwh
            args = [(fid, fee, block, traded[k], out) for k, fid in enumerate(district.feeder_ids)]
            _map(client, book_feeder, args)
    finally:
        if owned is not None:
            from scenarios.studies.dask_cluster import close_client

            close_client(owned)
    kpis = level_kpis(out, district.feeder_ids, scenario, mv_on)
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


def _levels(scenario: Scenario, district: District, out: Path, block: int) -> list[bool]:
    """The MV check and the district market, one block of intervals at a time, from the
    feeders' streamed files (module docstring); whether each feeder had a district fill."""
    n_t = scenario.simulation.n_intervals
    fids = district.feeder_ids
    mv_on = scenario.grid.check != "off"
    two = "district" in scenario.market.levels
    fee = scenario.market.district_fee_per_kwh
    limits = scenario_limits(scenario) if mv_on else None
    model = mv_model(district, limits) if limits is not None else None
    stamps = timeline(scenario)
    d = out / DISTRICT_DIR
    d.mkdir(exist_ok=True)
    _open_files(3 * len(fids) + 64)
    parts = [feeder_dir(out, f) for f in fids]
    flows = [BlockReader(p / TRANSFORMER_FILE, block) for p in parts] if mv_on else []
    cols = ["t", "side", "price_per_kwh", "energy_kwh"]
    orders = [BlockReader(p / ORDERS_FILE, block, cols) for p in parts] if two else []
    steps = [AppendWriter(p / STEPS_FILE) for p in parts] if two else []
    transformers = AppendWriter(d / TRANSFORMERS_FILE, gather=True) if mv_on else None
    intervals = AppendWriter(d / INTERVALS_FILE, gather=True)
    trades = AppendWriter(d / TRADES_FILE, gather=True) if two else None
    traded = [False] * len(fids)
    for i in range(n_blocks(n_t, block)):
        a, b = block_range(i, n_t, block)
        slack = np.zeros((2, b - a, len(fids)))
        mv = None
        for k, reader in enumerate(flows):
            part = reader.read(i)
            slack[0, :, k] = part.column("p_kw").to_numpy()
            slack[1, :, k] = part.column("q_kvar").to_numpy()
        if transformers is not None and limits is not None:
            mv = check_mv(district, slack[0], slack[1], limits, model)
            transformers.write(_arrow(_transformer_frame(a, fids, slack[0], slack[1])))
        if trades is not None:
            curves = [curve(k, f, r.read(i), slack[:, :, k]) for k, (f, r) in
                      enumerate(zip(fids, orders, strict=True))]  # fmt: skip
            level = clear_levels(curves, mv, b - a, fee, t0=a)
            for k, c in enumerate(curves):
                filled, price = level.filled_kwh[k], level.price_per_kwh[k]
                steps[k].write(pa.table({"t": c.t, "filled_kwh": filled, "price_per_kwh": price}))
                traded[k] = traded[k] or bool((filled > 0).any())
            level.intervals.insert(1, "timestamp", stamps[a:b])
            intervals.write(_arrow(level.intervals))
            trades.write(_arrow(level.trades))
        elif mv is not None:
            intervals.write(_arrow(_mv_frame(a, stamps[a:b], mv)))
    for w in [*steps, transformers, intervals, trades]:
        if w is not None:
            w.close()
    for p in parts if mv_on else []:
        (p / TRANSFORMER_FILE).unlink()
    return traded


def _open_files(needed: int) -> None:
    """Let this process hold ``needed`` open files (the caller keeps every feeder's block
    files open through the run: three per feeder), raising the soft limit if it is lower."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ScenarioError(
                [f"grid.feeder: the district needs {needed} open files, the limit is {hard}"]
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _mv_frame(t0: int, stamps: Any, mv: MvCheck) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": np.arange(t0, t0 + len(mv.v_min_pu), dtype=np.int32),
            "timestamp": stamps,
            "mv_v_min_pu": mv.v_min_pu,
            "mv_v_max_pu": mv.v_max_pu,
            "mv_max_line_loading_frac": mv.max_loading_frac,
            "mv_violations": mv.violations.astype(np.int32),
        }
    )


def _transformer_frame(
    t0: int, fids: tuple[str, ...], slack_p: np.ndarray, slack_q: np.ndarray
) -> pd.DataFrame:
    """``OUT/district/transformers.parquet``'s rows of a block: every LV feeder's
    transformer flow per interval [kW, kvar], export to the MV grid positive."""
    n_t, nf = slack_p.shape
    return pd.DataFrame(
        {
            "t": np.repeat(np.arange(t0, t0 + n_t, dtype=np.int32), nf),
            "feeder": pd.Categorical(np.tile(list(fids), n_t)),
            "p_kw": slack_p.reshape(-1),
            "q_kvar": slack_q.reshape(-1),
        }
    )
