"""A planner's stressed case: 10-20 kWp of PV and a battery on every roof in June.

30 households on SimBench's rural LV grid 1 (long lines): on the sunny second day the
noon export lifts the far buses to the model's upper limit (1.05 - 0.01 p.u.) and PV is
curtailed. Over-voltage and curtailment KPIs must be the sums of what the intervals and
households record, AC must stay inside the band where the model says it does, and energy
and money balance row by row to 1e-6.
"""

import numpy as np
import pytest

from scenarios import load_scenario, read_results, run
from scenarios.results.schema import QUANTUM

JUNE_PV = {
    "name": "june-full-pv",
    "simulation": {"start": "2026-06-20", "days": 2, "seed": 2},
    "community": {
        "households": 30,
        "profiles": "synthetic",
        "pv_share": 1.0,
        "pv_kwp": [10.0, 20.0],
        "battery_share": 1.0,
        "ev_share": 0.3,
    },
    "market": {"mechanism": "uniform"},
    "grid": {"feeder": "simbench:1-LV-rural1--0-sw", "check": "pyomo+ac"},
}


@pytest.fixture(scope="module")
def june(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("june-pv")
    scenario = load_scenario(JUNE_PV)
    run(scenario, out)
    tables = read_results(out)
    tables["scenario"] = scenario
    return tables


def test_over_voltage_is_curtailed_and_ac_stays_in_the_band(june) -> None:
    iv, k, g = june["intervals"], june["kpis"], june["scenario"].grid
    v_hi = g.v_max_pu - g.v_margin_pu
    flagged = iv[iv.violations_before_reclear > 0]
    assert len(flagged) >= 8
    assert flagged.recleared.all() and (flagged.curtailed_kwh > 0).all()
    # the binding limit is the voltage: held at the model's upper limit, not past it
    assert np.isclose(flagged.v_max_pu, v_hi, atol=1e-6).sum() >= 8
    assert (iv.violations == 0).all() and k["violation_hours"] == 0
    # AC agrees: no bus above the scenario's band in any interval, run or baseline
    assert iv.ac_v_max_pu.max() <= g.v_max_pu
    assert iv.baseline_ac_v_max_pu.max() <= g.v_max_pu
    assert k["ac_v_max_pu"] == pytest.approx(iv.ac_v_max_pu.max())
    assert k["ac_max_voltage_error_pu"] < g.v_margin_pu
    # the baseline is feeder-checked too, and curtails on the same afternoon
    assert k["baseline_curtailed_kwh"] == pytest.approx(iv.baseline_curtailed_kwh.sum())
    assert (iv.loc[flagged.index, "baseline_curtailed_kwh"] > 0).sum() >= 8
    assert k["baseline_violation_hours"] == 0


def test_curtailment_kpis_are_the_households_sums(june) -> None:
    iv, k, a = june["intervals"], june["kpis"], june["agents"]
    assert k["curtailed_kwh"] > 10
    assert k["curtailed_kwh"] == pytest.approx(iv.curtailed_kwh.sum())
    assert a.curtailed_kwh.sum() == pytest.approx(iv.curtailed_kwh.sum(), abs=1e-6)
    # nothing is curtailed outside a re-cleared interval, nor more than the PV gave
    assert (iv.loc[~iv.recleared, "curtailed_kwh"] == 0).all()
    assert k["generation_kwh"] == pytest.approx(a.generation_kwh.sum())
    # a household's PV gives at most its peak power over the interval: kWp × interval hours
    kwp = a.agent_id.astype(str).map(june["households"].set_index("agent_id").pv_kwp)
    hours = june["scenario"].simulation.interval_hours
    assert (a.curtailed_kwh >= 0).all()
    assert (a.generation_kwh + a.curtailed_kwh <= kwp * hours + 1e-9).all()
    assert k["self_consumption"] == pytest.approx(
        1 - a.grid_export_kwh.sum() / a.generation_kwh.sum()
    )


def test_energy_and_money_balance_row_by_row(june) -> None:
    a, tr, mk = june["agents"], june["trades"], june["scenario"].market
    lhs = a.generation_kwh - a.demand_kwh - a.battery_kwh - a.ev_kwh - a.heat_pump_kwh
    rhs = a.sold_p2p_kwh - a.bought_p2p_kwh + a.grid_export_kwh - a.grid_import_kwh
    assert np.abs(lhs - rhs).max() < 1e-6
    # each bill from its own meters and trades: utility at retail and feed-in, P2P at the
    # trade prices plus the grid fee
    key = ["t", "agent_id"]
    paid = tr.assign(m=tr.energy_kwh * tr.price_per_kwh + tr.grid_fee, agent_id=tr.buyer_id)
    got = tr.assign(m=tr.energy_kwh * tr.seller_price_per_kwh, agent_id=tr.seller_id)
    ai = a.set_index(key)
    paid_s = paid.groupby(key, observed=True).m.sum().reindex(ai.index, fill_value=0.0)
    got_s = got.groupby(key, observed=True).m.sum().reindex(ai.index, fill_value=0.0)
    bill = (
        ai.grid_import_kwh * mk.retail_price_per_kwh
        - ai.grid_export_kwh * mk.feed_in_price_per_kwh
        + ai.imbalance_cost
        + paid_s
        - got_s
    )
    assert (bill - ai.cost).abs().max() < 1e-6
    assert len(tr) > 0 and (tr.grid_fee / tr.energy_kwh).sub(mk.grid_fee_per_kwh).abs().max() < 1e-9
    # the community pays what the utility, the fees and the operator receive; the files'
    # quantum (2**-24) bounds the sum's rounding
    utility = (
        a.grid_import_kwh * mk.retail_price_per_kwh
        - a.grid_export_kwh * mk.feed_in_price_per_kwh
        + a.imbalance_cost
    ).sum()
    surplus = float((tr.energy_kwh * (tr.price_per_kwh - tr.seller_price_per_kwh)).sum())
    total = utility + tr.grid_fee.sum() + surplus
    assert abs(a.cost.sum() - total) < max(1e-6, len(a) * QUANTUM)
    k = june["kpis"]
    assert k["grid_fees"] == pytest.approx(tr.grid_fee.sum())
    assert k["market_surplus"] == pytest.approx(surplus, abs=1e-9)
    bought = tr.groupby(["t", "buyer_id"], observed=True).energy_kwh.sum()
    bought = bought.rename_axis(key).reindex(ai.index, fill_value=0.0)
    assert (bought - ai.bought_p2p_kwh).abs().max() < 1e-6
