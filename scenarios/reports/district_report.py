"""A district run's ``OUT/report.html`` (issue 18): the KPIs per level, a table of the LV
feeders and the district's time series, computed from streamed files.

Read, one feeder at a time and only the columns drawn: each feeder's ``kpis.json`` (its
own market's KPIs, as a single run reports them), ``households.parquet``'s row count (the
file's metadata), ``intervals.parquet`` (one row per interval) and of ``lines.parquet`` the
rows of its MV/LV transformer only (a filtered scan, row group by row group); the
district's ``intervals.parquet`` (one row per interval), ``trades.parquet`` and
``transformers.parquet`` (in record batches, folded as they come). No agents, buses or
whole lines file is loaded, so the report's memory grows with the intervals of one feeder
and with feeders × time buckets, not with feeders × intervals. The KPIs are those of
``OUT/kpis.json`` (:func:`scenarios.engine.district_kpis.level_kpis`); nothing here recomputes one.

Time series are drawn per time bucket (:func:`scenarios.reports.grid_tables.time_buckets`,
at most 700 buckets of consecutive intervals) as envelopes: the lowest and highest value of
the bucket, never its mean (one interval outside the voltage band shows).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from grid.district import District
from scenarios.config.schema import Scenario
from scenarios.engine.district_feeder import DISTRICT_DIR, TRANSFORMERS_FILE, feeder_dir
from scenarios.kpis.format import format_kpi
from scenarios.reports.district_figures import (
    Buckets,
    band_figure,
    level_energy_figure,
    loading_figure,
    price_figure,
    transformer_figure,
)
from scenarios.reports.grid_tables import time_buckets
from scenarios.reports.html_page import figures_html, kpi_cards, write_page
from scenarios.results.blocks import read_blocks
from scenarios.results.files import KPIS_FILE, REPORT_FILE
from scenarios.results.schema import HOUSEHOLDS_FILE, INTERVALS_FILE, LINES_FILE, TRADES_FILE

#: The KPI cards of ``OUT/kpis.json`` per level: (heading, ((key, label), ...)).
LEVEL_CARDS: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (
    ("Feeder markets", (
        ("feeder_p2p_kwh", "Traded within the LV feeders"),
        ("feeder_grid_fee_cost", "Grid fees of the feeder markets"),
        ("lv_violation_intervals", "Feeder-intervals with an LV limit broken"),
    )),
    ("District market", (
        ("district_kwh", "Traded between the feeders"),
        ("district_mean_price_per_kwh", "Mean district price"),
        ("district_grid_fee_cost", "Grid fees of the district market"),
        ("mv_violation_intervals", "Intervals with an MV limit broken"),
        ("mv_max_line_loading_frac", "Highest MV loading"),
        ("mv_v_min_pu", "Lowest MV voltage"),
        ("mv_v_max_pu", "Highest MV voltage"),
    )),
    ("Utility (last resort)", (
        ("utility_import_kwh", "Imported from the utility"),
        ("utility_export_kwh", "Exported to the utility"),
    )),
    ("All households", (
        ("self_sufficiency", "Self-sufficiency"),
        ("community_savings", "Community savings"),
        ("baseline_cost", "Bills without P2P"),
        ("demand_kwh", "Demand"),
        ("generation_kwh", "PV generation"),
    )),
)  # fmt: skip

#: The feeder table's columns: (key, heading); a key of a feeder's kpis.json is
#: formatted as that KPI.
FEEDER_COLUMNS = (
    ("feeder", "LV feeder"),
    ("households", "households"),
    ("self_sufficiency", "local self-sufficiency"),
    ("to_district_kwh", "sold to the district"),
    ("from_district_kwh", "bought from the district"),
    ("transformer_peak_loading_frac", "transformer peak loading"),
    ("max_line_loading_frac", "LV peak loading"),
    ("violation_hours", "LV violation hours"),
)
#: feeder intervals.parquet: column -> how its buckets fold over feeders and intervals
_LV_SERIES = {
    "p2p_kwh": "sum",
    "grid_import_kwh": "sum",
    "grid_export_kwh": "sum",
    "v_min_pu": "min",
    "v_max_pu": "max",
    "max_line_loading_frac": "max",
}


@dataclass
class _FeederScan:
    """The feeders' rows of the table and their intervals folded per time bucket."""

    rows: list[dict[str, Any]]
    lv: dict[str, np.ndarray]


def _transformer_peak(path: Path, trafo: str) -> float | None:
    """The largest loading of line ``trafo`` in a lines.parquet, streamed in blocks (a
    filtered read of a year's file took 80 MB at its peak)."""
    if not path.is_file():
        return None
    peaks = []
    for batch in read_blocks(path, ["line", "loading_frac"]):
        mine = pc.equal(batch.column("line"), trafo)
        v = pc.filter(batch.column("loading_frac"), mine).to_numpy(zero_copy_only=False)
        v = v.astype(float)
        v = v[~np.isnan(v)]
        peaks += [v.max()] if len(v) else []
    return float(max(peaks)) if peaks else None


def _district_sides(out: Path, feeder_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """kWh each feeder sold to (``sell``) and bought from (``buy``) the district, from
    ``district/trades.parquet`` in record batches."""
    sides = {"sell": np.zeros(len(feeder_ids)), "buy": np.zeros(len(feeder_ids))}
    path = out / DISTRICT_DIR / TRADES_FILE
    if not path.is_file():
        return sides
    index = pd.Series(np.arange(len(feeder_ids)), index=list(feeder_ids))
    cols = ["feeder", "side", "energy_kwh"]
    for batch in read_blocks(path, cols):
        k = index.reindex(_strings(batch.column("feeder"))).to_numpy(np.int64)
        side = _strings(batch.column("side"))
        kwh = batch.column("energy_kwh").to_numpy(zero_copy_only=False).astype(float)
        for name, acc in sides.items():
            mine = side == name
            acc += np.bincount(k[mine], kwh[mine], len(feeder_ids))
    return sides


def _strings(column: pa.Array) -> np.ndarray:
    return column.cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)


def _scan_feeders(out: Path, district: District, buckets: Buckets) -> _FeederScan:
    sides = _district_sides(out, district.feeder_ids)
    lv = {c: buckets.empty(how) for c, how in _LV_SERIES.items()}
    rows = []
    for k, (fid, feeder) in enumerate(zip(district.feeder_ids, district.feeders, strict=True)):
        where = feeder_dir(out, fid)
        kpis = json.loads((where / KPIS_FILE).read_text(encoding="utf-8"))
        loadings = []  # per block: the feeder's largest line loading, where checked
        for batch in read_blocks(where / INTERVALS_FILE, ["t", *_LV_SERIES]):
            t = batch.column("t").to_numpy()
            for col in (c for c in _LV_SERIES if c in batch.schema.names):
                v = batch.column(col).to_numpy(zero_copy_only=False).astype(float)
                buckets.fold(lv[col], t, v, _LV_SERIES[col])
                if col == "max_line_loading_frac" and not np.isnan(v).all():
                    loadings.append(np.nanmax(v))
        trafo = feeder.lines.loc[feeder.lines["kind"] == "trafo", "line"]
        peak = _transformer_peak(where / LINES_FILE, str(trafo.iloc[0])) if len(trafo) else None
        rows.append(
            {
                "feeder": fid,
                "households": pq.ParquetFile(where / HOUSEHOLDS_FILE).metadata.num_rows,
                "self_sufficiency": kpis.get("self_sufficiency"),
                "to_district_kwh": float(sides["sell"][k]),
                "from_district_kwh": float(sides["buy"][k]),
                "transformer_peak_loading_frac": peak,
                "max_line_loading_frac": float(max(loadings)) if loadings else None,
                "violation_hours": kpis.get("violation_hours"),
            }
        )
    return _FeederScan(rows, lv)


def _transformer_extremes(
    path: Path, feeder_ids: Sequence[str], buckets: Buckets
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per (feeder, bucket): the lowest and highest transformer flow [kW], from
    ``district/transformers.parquet`` in record batches."""
    if not path.is_file():
        return None
    index = {f: i for i, f in enumerate(feeder_ids)}
    nb = buckets.n
    low = np.full(len(feeder_ids) * nb, np.nan)
    high = low.copy()
    for batch in read_blocks(path, ["t", "feeder", "p_kw"]):
        k = pd.Series(_strings(batch.column("feeder"))).map(index).to_numpy(np.int64)
        t = batch.column("t").to_numpy().astype(np.int64)
        flat = k * nb + buckets.of[t]
        p = batch.column("p_kw").to_numpy(zero_copy_only=False).astype(float)
        np.fmin.at(low, flat, p)
        np.fmax.at(high, flat, p)
    shape = (len(feeder_ids), nb)
    return low.reshape(shape), high.reshape(shape)


def _feeder_table(rows: list[dict[str, Any]], currency: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in FEEDER_COLUMNS)
    body = []
    for r in rows:
        cells = []
        for key, _ in FEEDER_COLUMNS:
            v = r[key]
            text = str(v) if key in ("feeder", "households") else format_kpi(key, v, currency)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<h2>LV feeders</h2><p>Local self-sufficiency and LV violation hours are each "
        "feeder's own market (its kpis.json, before the district market).</p>"
        f'<div class="scroll"><table class="feeders"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def write_district_report(out: Path, scenario: Scenario, district: District) -> Path:
    """Write ``OUT/report.html``, the district report page of the finished run in ``out``
    (module docstring); its path."""
    out = Path(out)
    kpis = json.loads((out / KPIS_FILE).read_text(encoding="utf-8"))
    currency = scenario.market.currency
    first = feeder_dir(out, district.feeder_ids[0]) / INTERVALS_FILE
    stamps = pq.read_table(first, columns=["timestamp"]).column(0).to_pandas()
    of, size = time_buckets(stamps)
    buckets = Buckets(of, size, stamps.groupby(of).first().to_numpy())
    scan = _scan_feeders(out, district, buckets)
    d_path = out / DISTRICT_DIR / INTERVALS_FILE
    d_iv = pq.read_table(d_path).to_pandas() if d_path.is_file() else None
    limits = (scenario.grid.v_min_pu, scenario.grid.v_max_pu)
    figures = [level_energy_figure(buckets, scan.lv, d_iv)]
    if d_iv is not None and "clearing_price_per_kwh" in d_iv:
        m = scenario.market
        tariff = (m.retail_price_per_kwh, m.feed_in_price_per_kwh)
        figures.append(price_figure(buckets, d_iv, currency, tariff))
    figures.append(band_figure(buckets, scan.lv, d_iv, limits))
    figures.append(loading_figure(buckets, scan.lv, d_iv))
    flows = _transformer_extremes(
        out / DISTRICT_DIR / TRANSFORMERS_FILE, district.feeder_ids, buckets
    )
    if flows is not None:
        figures.append(transformer_figure(buckets, district.feeder_ids, *flows))
    cards = "".join(
        f"<h2>{html.escape(head)}</h2>" + kpi_cards(kpis, labels, currency)
        for head, labels in LEVEL_CARDS
    )
    levels = " → ".join(kpis.get("levels", ["feeder"])) + " → utility"
    intro = (
        f"<p>{html.escape(district.name)}: {district.n_feeders} LV feeders, "
        f"{kpis.get('households')} households, {len(stamps)} intervals from "
        f"{html.escape(str(stamps.iloc[0]))}; levels {html.escape(levels)}.</p>"
    )
    css = (
        "table.feeders{border-collapse:collapse;font-size:.9em}"
        "table.feeders td,table.feeders th{border:1px solid #ddd;padding:3px 8px;"
        "text-align:right}"
        ".scroll{max-height:520px;overflow:auto;display:inline-block}"
    )
    body = chain([intro + cards + _feeder_table(scan.rows, currency)], figures_html(figures))
    return write_page(Path(out) / REPORT_FILE, f"{scenario.name} — district", body, css)
