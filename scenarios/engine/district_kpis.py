"""KPIs of a district run per level (issue 18), summed from the feeders' intervals files
(streamed, :func:`~scenarios.results.blocks.read_blocks`) and the district's own, one
feeder at a time (no agents, buses or lines file is loaded).

Levels: ``feeder_*`` the LV feeders' own markets (energy traded within a feeder, its grid
fees), ``district_*`` the district market between the feeders, ``utility_*`` the last
resort (what the households still import and export after both markets), and the MV check
(``mv_*``). ``community_savings`` is the no-P2P baseline's cost minus the run's, over all
households (both markets), plus ``end_stored_energy_value`` (the batteries' and EVs' end
state against the baseline's, at retail), as a single run reports it: the district's
trades move no energy, so that value is the sum of the feeders' own (their ``kpis.json``).
The energy shares (``self_sufficiency``, ``p2p_share``, …) are the single run's formulas
(:func:`scenarios.kpis.compute.energy_shares`) over consumption (demand and the devices'
net uptake), with the P2P energy of both markets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scenarios.config.schema import Scenario
from scenarios.engine.district_feeder import feeder_dir
from scenarios.kpis.compute import energy_shares
from scenarios.results.blocks import read_blocks
from scenarios.results.files import KPIS_FILE
from scenarios.results.schema import INTERVALS_FILE, device_energy_columns

_SUMMED = ("p2p_kwh", "grid_import_kwh", "grid_export_kwh", "grid_fees", "cost",
           "baseline_cost", "demand_kwh", "generation_kwh")  # fmt: skip
_DEVICES = device_energy_columns(INTERVALS_FILE)


def level_kpis(
    out: Path, feeder_ids: tuple[str, ...], scenario: Scenario, mv_checked: bool
) -> dict[str, Any]:
    """The district run's KPIs per level (module docstring)."""
    total = dict.fromkeys(_SUMMED, 0.0)
    devices = 0.0  # the devices' net uptake: consumption = demand + devices
    stored_value = 0.0
    lv_violation_intervals = 0
    for fid in feeder_ids:
        where = feeder_dir(out, fid)
        for batch in read_blocks(where / INTERVALS_FILE, (*_SUMMED, *_DEVICES, "violations")):
            col = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in batch.schema.names}
            for name in _SUMMED:
                total[name] += float(np.nansum(col[name]))
            devices += sum(float(np.nansum(col[c])) for c in _DEVICES if c in col)
            if "violations" in col:  # null where the interval was not checked
                lv_violation_intervals += int(np.count_nonzero(col["violations"] > 0))
        own = json.loads((where / KPIS_FILE).read_text())
        stored_value += float(own.get("end_stored_energy_value") or 0.0)
    kpis: dict[str, Any] = {
        "levels": list(scenario.market.levels),
        "feeders": len(feeder_ids),
        "households": scenario.community.households,
        "feeder_p2p_kwh": total["p2p_kwh"],
        "utility_import_kwh": total["grid_import_kwh"],
        "utility_export_kwh": total["grid_export_kwh"],
        "demand_kwh": total["demand_kwh"],
        "generation_kwh": total["generation_kwh"],
        "cost": total["cost"],
        "baseline_cost": total["baseline_cost"],
        "end_stored_energy_value": stored_value,
        "community_savings": total["baseline_cost"] - total["cost"] + stored_value,
        "lv_violation_intervals": lv_violation_intervals,
    }
    district = out / "district" / INTERVALS_FILE
    d = pd.read_parquet(district) if district.exists() else None
    volume = 0.0
    fees = 0.0
    if d is not None and "district_kwh" in d:
        volume = float(d["district_kwh"].sum())
        fees = float(d["grid_fees"].sum())
        traded = d["district_kwh"] > 0
        value = float((d["clearing_price_per_kwh"][traded] * d["district_kwh"][traded]).sum())
        kpis["district_mean_price_per_kwh"] = value / volume if volume > 0 else None
    kpis["district_kwh"] = volume
    kpis["district_grid_fee_cost"] = fees
    kpis["feeder_grid_fee_cost"] = total["grid_fees"] - fees
    if d is not None and mv_checked:
        kpis["mv_violation_intervals"] = int((d["mv_violations"] > 0).sum())
        kpis["mv_max_line_loading_frac"] = float(np.nanmax(d["mv_max_line_loading_frac"]))
        kpis["mv_v_min_pu"] = float(d["mv_v_min_pu"].min())
        kpis["mv_v_max_pu"] = float(d["mv_v_max_pu"].max())
    kpis["consumption_kwh"] = total["demand_kwh"] + devices
    kpis.update(
        energy_shares(
            total["generation_kwh"],
            kpis["consumption_kwh"],
            total["grid_import_kwh"],
            total["grid_export_kwh"],
            total["p2p_kwh"] + volume,
        )
    )
    return kpis
