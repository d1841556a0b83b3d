"""Parameter sweeps on Dask: every variant of a sweep file, run in parallel, resumable.

``p2pgrid sweep FILE --out DIR`` (or :func:`run_sweep`) expands the sweep file
(:mod:`scenarios.studies.sweep_file`), runs each valid variant with
:func:`scenarios.engine.runner.run` on a Dask cluster and writes

=========================  =========================================================
``variants/<id>/``         the variant's full results (the files of ``p2pgrid run``),
                           ``scenario.yaml`` (run it alone with ``p2pgrid run``) and
                           ``done.json``, the completeness marker
``kpis.parquet``           one row per variant: ``variant``, ``status`` (ok | failed),
                           ``error``, ``reused``, the swept keys (columns named by
                           their key path, e.g. ``community.pv_share``), ``seed``, every
                           key of ``kpis.json``, ``wall_time_s``, ``cpu_time_s``,
                           ``peak_rss_mb``
``sweep.json``             the sweep as expanded: name, seed rule, keys, variants
``sweep.html``             the sweep page (:mod:`scenarios.reports.sweep`)
=========================  =========================================================

The Dask cluster: :mod:`scenarios.studies.dask_cluster`; one variant's run, its
``done.json`` and resuming: :mod:`scenarios.studies.sweep_worker`.

Determinism. A variant is the same :class:`~scenarios.config.schema.Scenario` with the same
seed whether it runs in a sweep or alone (``p2pgrid run variants/<id>/scenario.yaml``),
and the engine is deterministic, so its results files are the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scenarios.results.files import KPIS_FILE, write_json
from scenarios.results.out_dir import make_out_dir
from scenarios.studies.dask_cluster import connect_client
from scenarios.studies.sweep_variants import SweepSpec, Variant
from scenarios.studies.sweep_worker import (
    DONE_FILE,
    ERROR_FILE,
    fingerprint,
    is_complete,
    run_variant,
)

if TYPE_CHECKING:
    import duckdb
    from distributed import Client

VARIANTS_DIR = "variants"
KPI_TABLE = "kpis.parquet"
SWEEP_FILE = "sweep.json"
SWEEP_REPORT = "sweep.html"


SweepProgress = Callable[[int, int, str, str], None]
"""``progress(done, total, variant_id, status)`` after each variant (status ok | failed
| reused)."""


@dataclass(frozen=True)
class SweepResult:
    """Where the sweep is, and what happened to each variant."""

    out_dir: Path
    table: pd.DataFrame
    """``kpis.parquet`` as a DataFrame."""
    report_path: Path
    ran: int
    reused: int
    failed: dict[str, str]
    """Variant id → error text."""

    @property
    def kpi_path(self) -> Path:
        return self.out_dir / KPI_TABLE


def _write_sweep_json(spec: SweepSpec, variants: list[Variant], out: Path) -> None:
    write_json(
        {
            "name": spec.name,
            "source": spec.source,
            "seed_rule": spec.seed_rule,
            "keys": spec.keys,
            "sample": ({"n": spec.sample_n, "seed": spec.sample_seed} if spec.sample_n else None),
            "set": spec.fixed,
            "variants": [
                {"id": v.id, "parameters": v.parameters, "seed": v.seed, "valid": v.error is None}
                for v in variants
            ],
        },
        out / SWEEP_FILE,
    )


def _kpi_row(
    variant: Variant, keys: list[str], outcome: Mapping[str, Any], out: Path
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "variant": variant.id,
        "status": outcome["status"],
        "error": outcome.get("error"),
        "reused": outcome["status"] == "reused",
    }
    if outcome["status"] == "reused":
        row["status"] = "ok"
    row.update({k: variant.parameters[k] for k in keys})
    row["seed"] = variant.seed
    if row["status"] == "ok":
        kpis = json.loads((out / VARIANTS_DIR / variant.id / KPIS_FILE).read_text("utf-8"))
        row.update({f"{k}": v for k, v in kpis.items() if k not in row})
    row["wall_time_s"] = outcome.get("wall_time_s")
    row["cpu_time_s"] = outcome.get("cpu_time_s")
    row["peak_rss_mb"] = outcome.get("peak_rss_mb")
    row["worker"] = outcome.get("worker")
    return row


def _typed_table(rows: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    """Columns with one type each: numbers as float64, text as string, lists kept."""
    table = pd.DataFrame(rows)
    fixed = {"variant", "status", "error", "reused", "worker", *keys}
    for name in table.columns:
        if name in fixed:
            continue
        values = [v for v in table[name] if v is not None and not _isnan(v)]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            table[name] = pd.to_numeric(table[name], errors="coerce").astype("float64")
        elif not values:
            table[name] = pd.Series([None] * len(table), dtype="float64")
        elif all(isinstance(v, str) for v in values):
            table[name] = table[name].astype("string")
    for key in keys:  # a swept key of mixed kinds (numbers and text): one text column
        kinds = {_kind(v) for v in table[key]}
        if len(kinds) > 1 and kinds != {"number"}:
            table[key] = table[key].map(json.dumps).astype("string")
    table["seed"] = table["seed"].astype("int64")
    table["reused"] = table["reused"].astype(bool)
    for name in ("variant", "status", "error", "worker"):
        table[name] = table[name].astype("string")
    return table


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    client: Client | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: SweepProgress | None = None,
    report: bool = True,
) -> SweepResult:
    """Run every variant of ``spec`` on Dask and write the KPI table and the page.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`scenarios.studies.sweep_file.load_sweep`.
    out_dir : path
        Results directory; re-running into the same directory resumes.
    client : distributed.Client, optional
        Use this client (it is left open).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``), when no ``client``.
    n_workers : int, optional
        Workers of the local cluster started when neither is given (default: cores).
    progress : callable, optional
        ``progress(done, total, variant_id, status)``.
    report : bool
        Write ``sweep.html``.
    """
    from distributed import as_completed

    out = make_out_dir(out_dir)
    (out / VARIANTS_DIR).mkdir(exist_ok=True)
    variants = spec.variants()
    _write_sweep_json(spec, variants, out)
    total = len(variants)
    outcomes: dict[str, dict[str, Any]] = {}
    done = 0

    def note(vid: str, outcome: dict[str, Any]) -> None:
        nonlocal done
        outcomes[vid] = outcome
        done += 1
        if progress is not None:
            progress(done, total, vid, outcome["status"])

    pending: list[Variant] = []
    for v in variants:
        vdir = out / VARIANTS_DIR / v.id
        if v.scenario is None:
            vdir.mkdir(parents=True, exist_ok=True)
            (vdir / ERROR_FILE).write_text(f"{v.error}\n", encoding="utf-8")
            note(v.id, {"status": "failed", "error": v.error})
        elif is_complete(vdir, v.scenario):
            marker = json.loads((vdir / DONE_FILE).read_text(encoding="utf-8"))
            note(v.id, {**marker, "status": "reused", "error": None})
        else:
            pending.append(v)

    if pending:
        owned: Client | None = None
        if client is None:
            owned = connect_client(scheduler, n_workers)
            client = owned
        try:
            futures = {
                client.submit(
                    run_variant,
                    v.id,
                    v.scenario.model_dump(mode="json"),  # type: ignore[union-attr]
                    str((out / VARIANTS_DIR / v.id).resolve()),
                    key=f"p2pgrid-sweep-{v.id}-{fingerprint(v.scenario)[:16]}",  # type: ignore[arg-type]
                    pure=False,
                ): v.id
                for v in pending
            }
            for future in as_completed(futures):
                vid = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a lost worker, a cancelled task
                    outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                note(vid, outcome)
                future.release()
        finally:
            if owned is not None:
                cluster = owned.cluster
                owned.close()
                if cluster is not None:
                    cluster.close()

    rows = [_kpi_row(v, spec.keys, outcomes[v.id], out) for v in variants]
    table = _typed_table(rows, spec.keys)
    table.to_parquet(out / KPI_TABLE, index=False)
    report_path = out / SWEEP_REPORT
    if report:
        from scenarios.reports.sweep import write_sweep

        write_sweep(report_path, spec, table, out / VARIANTS_DIR)
    failed = {r["variant"]: str(r["error"]) for r in rows if r["status"] == "failed"}
    reused = sum(1 for o in outcomes.values() if o["status"] == "reused")
    ran = sum(1 for v in pending if outcomes[v.id]["status"] == "ok")
    return SweepResult(out, table, report_path, ran, reused, failed)


def open_kpis(
    out_dir: str | Path, con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the sweep's KPI table as the view ``kpis``.

    Column names are the scenario key paths, so quote them::

        con = open_kpis("sweep-out")
        con.sql('SELECT "community.pv_share", avg(self_sufficiency) FROM kpis '
                "WHERE status = 'ok' GROUP BY 1 ORDER BY 1").df()

    Parameters
    ----------
    out_dir : path
        The sweep's results directory (or the ``kpis.parquet`` file itself).
    con : duckdb.DuckDBPyConnection, optional
        Add the view to this connection instead of a new in-memory one.
    """
    import duckdb

    path = Path(out_dir)
    if path.is_dir():
        path = path / KPI_TABLE
    if not path.is_file():
        raise FileNotFoundError(f"no sweep KPI table at {str(path)!r}")
    con = con if con is not None else duckdb.connect()
    literal = str(path).replace("'", "''")
    con.execute(f"CREATE OR REPLACE VIEW kpis AS SELECT * FROM read_parquet('{literal}')")
    return con
