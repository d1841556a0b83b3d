"""Fairness and value KPIs per member type (issue 16, item 3): hand-solved on a
four-member community, the Gini and Jain indices against hand calculations, and a real
run's kpis.json against an independent computation from its results files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.kpis.compute import gini, jain
from scenarios.kpis.format import format_kpi
from scenarios.kpis.member_types import MEMBER_TYPES, member_type_kpis, member_types
from scenarios.results.schema import QUANTUM

RETAIL, FEED_IN = 0.30, 0.08


def _community() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A: PV + battery, B: PV, C: EV, D: no device.

    savings = baseline − cost + 0.30 × stored delta:
    A 12 − 10 = 2, B 8 − 5 = 3, C 19.7 − 21 + 0.30 × 1 = −1, D 7 − 6 = 1.
    """
    households = pd.DataFrame(
        {
            "agent_id": ["A", "B", "C", "D"],
            "pv_kwp": [5.0, 3.0, 0.0, 0.0],
            "battery_kwh": [10.0, 0.0, 0.0, 0.0],
            "ev_kwh": [0.0, 0.0, 60.0, 0.0],
            "hp_source": np.zeros(4, dtype=np.int8),
        }
    )
    members = pd.DataFrame(
        {
            "agent_id": ["D", "C", "B", "A"],  # another order than households'
            "cost": [6.0, 21.0, 5.0, 10.0],
            "baseline_cost": [7.0, 19.7, 8.0, 12.0],
            "stored_delta_kwh": [0.0, 1.0, 0.0, 0.0],
            "bought_p2p_kwh": [2.0, 4.0, 1.0, 0.0],
            "grid_import_kwh": [2.0, 6.0, 3.0, 2.0],
            "sold_p2p_kwh": [0.0, 0.0, 4.0, 3.0],
            "grid_export_kwh": [0.0, 0.0, 2.0, 1.0],
            # A sold 3 kWh at 0.20, B 4 kWh at 0.15
            "sales_revenue": [0.0, 0.0, 0.6, 0.6],
        }
    )
    return members, households


def test_four_members_by_hand() -> None:
    members, households = _community()
    k = member_type_kpis(members, households, RETAIL, FEED_IN)
    # PV owners A and B: savings 2 and 3
    assert k["pv_members"] == 2
    assert k["pv_savings"] == pytest.approx(5.0)
    assert k["pv_savings_mean"] == pytest.approx(2.5)
    # shared-energy share of what they drew: (0 + 1) / (0 + 1 + 2 + 3)
    assert k["pv_p2p_share"] == pytest.approx(1 / 6)
    # Gini: |2 − 3| × 2 ordered pairs / (2 × 2² × 2.5) = 2 / 20; Jain: 5² / (2 × 13)
    assert k["pv_savings_gini"] == pytest.approx(0.1)
    assert k["pv_savings_jain"] == pytest.approx(25 / 26)
    # battery owner A alone: no inequality
    assert (k["battery_members"], k["battery_savings"]) == (1, pytest.approx(2.0))
    assert k["battery_savings_gini"] == 0.0 and k["battery_savings_jain"] == 1.0
    assert k["battery_p2p_share"] == pytest.approx(0.0)
    # EV owner C: worse off by 1 (its extra kWh stored valued at retail included)
    assert k["ev_savings"] == pytest.approx(-1.0)
    assert k["ev_p2p_share"] == pytest.approx(0.4)
    # no heat pump in the community: counted, nothing to compute
    assert k["heat_pump_members"] == 0
    assert all(
        k[f"heat_pump_{m}"] is None
        for m in ("savings", "savings_mean", "p2p_share", "savings_gini", "savings_jain")
    )
    assert (k["non_owner_members"], k["non_owner_savings"]) == (1, pytest.approx(1.0))
    assert k["non_owner_p2p_share"] == pytest.approx(0.5)
    # the owners' surplus: A 3 + 1, B 4 + 2 kWh; earned 0.6 + 0.6 + (1 + 2) × 0.08
    assert k["pv_surplus_kwh"] == pytest.approx(10.0)
    assert k["pv_surplus_revenue"] == pytest.approx(1.44)
    assert k["pv_feed_in_only_revenue"] == pytest.approx(0.8)
    assert k["pv_sharing_gain"] == pytest.approx(0.64)
    assert k["pv_surplus_value_per_kwh"] == pytest.approx(0.144)


def test_community_gini_and_jain_by_hand() -> None:
    savings = np.array([2.0, 3.0, -1.0, 1.0])
    # Σ over unordered pairs |s_i − s_j| = 1 + 3 + 1 + 4 + 2 + 2 = 13, over ordered 26;
    # Σ|s| = 7: 26 / (2 × 4 × 7)
    assert gini(savings) == pytest.approx(26 / 56)
    # (Σ s)² / (n Σ s²) = 25 / (4 × 15)
    assert jain(savings) == pytest.approx(25 / 60)
    # the standard formula on non-negative values (as before negatives were handled)
    assert gini(np.array([3.0, 1.0, 6.0, 2.0])) == pytest.approx(1 / 3)
    # the bound (n − 1)/n: one gains, one loses, the rest at 0
    assert gini(np.array([5.0, -3.0, 0.0, 0.0])) == pytest.approx(0.75)
    # equal savings: Gini 0, Jain 1; k of n equal, the rest nothing: Jain k/n
    assert gini(np.full(3, 2.0)) == 0.0 and jain(np.full(3, 2.0)) == pytest.approx(1.0)
    assert jain(np.array([4.0, 4.0, 0.0, 0.0, 0.0])) == pytest.approx(2 / 5)
    # gains and losses that cancel: Jain 0; nothing to compare: None
    assert jain(np.array([1.0, -1.0])) == 0.0
    assert gini(np.zeros(3)) is None and jain(np.zeros(3)) is None
    assert gini(np.array([])) is None and jain(np.array([])) is None


def test_gini_is_the_pairwise_formula_and_bounded() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 5, 11):
        x = rng.normal(0.5, 2.0, n)
        pairs = sum(abs(a - b) for a, b in itertools.product(x, x))
        assert gini(x) == pytest.approx(pairs / (2 * n * np.abs(x).sum()))
        assert 0.0 <= gini(x) <= (n - 1) / n + 1e-12
        assert 0.0 <= jain(x) <= 1.0 + 1e-12


def test_member_types_overlap_and_non_owners() -> None:
    households = pd.DataFrame(
        {
            "pv_kwp": [4.0, 0.0, 0.0, 6.0],
            "battery_kwh": [5.0, 0.0, 0.0, 0.0],
            "ev_kwh": [0.0, 50.0, 0.0, 0.0],
            "hp_source": [1, 0, 0, 2],
        }
    )
    types = member_types(households)
    assert list(types.columns) == list(MEMBER_TYPES)
    assert types.to_numpy().astype(int).tolist() == [
        [1, 1, 0, 1, 0],  # PV, battery and heat pump: in three types
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1],  # owns nothing
        [1, 0, 0, 1, 0],
    ]


def test_bad_member_tables_are_named() -> None:
    members, households = _community()
    with pytest.raises(ValueError, match=r"missing column.*sales_revenue"):
        member_type_kpis(members.drop(columns="sales_revenue"), households, RETAIL, FEED_IN)
    with pytest.raises(ValueError, match="same members"):
        member_type_kpis(members.iloc[:3], households, RETAIL, FEED_IN)


def test_formats_of_the_new_kpis() -> None:
    assert format_kpi("pv_savings", 1234.5) == "1,234.50 EUR"
    assert format_kpi("non_owner_savings_mean", 2.0) == "2.00 EUR"
    assert format_kpi("pv_sharing_gain", 0.64) == "0.64 EUR"
    assert format_kpi("pv_p2p_share", 0.25) == "25.0 %"
    assert format_kpi("self_sufficiency_shared", 0.1) == "10.0 %"
    assert format_kpi("pv_surplus_value_per_kwh", 0.144) == "0.1440 EUR/kWh"
    assert format_kpi("ev_members", 3) == "3"


def test_a_run_writes_them_as_its_files_say(small_run: Path) -> None:
    """kpis.json's member-type KPIs equal a pandas computation from agents.parquet,
    trades.parquet and households.parquet (another path than the streamed totals)."""
    kpis = json.loads((small_run / "kpis.json").read_text(encoding="utf-8"))
    agents = pd.read_parquet(small_run / "agents.parquet")
    # the KPIs sum the run's own values, agents.parquet holds them in steps of QUANTUM:
    # a sum over its rows is within QUANTUM / 2 per row and column summed
    bound = len(agents) * QUANTUM
    trades = pd.read_parquet(small_run / "trades.parquet")
    households = pd.read_parquet(small_run / "households.parquet").set_index("agent_id")
    manifest = json.loads((small_run / "manifest.json").read_text(encoding="utf-8"))
    market = manifest["scenario"]["market"]
    agents["agent_id"] = agents["agent_id"].astype(str)
    per = agents.groupby("agent_id").sum(numeric_only=True)
    end = agents[agents["t"] == agents["t"].max()].set_index("agent_id")
    stored = end["soc_kwh"] + end["ev_soc_kwh"] - end["baseline_stored_kwh"]
    savings = per["baseline_cost"] - per["cost"] + market["retail_price_per_kwh"] * stored
    pv = households.index[households["pv_kwp"] > 0]
    non = households.index[
        (households[["pv_kwp", "battery_kwh", "ev_kwh"]].sum(axis=1) == 0)
        & (households["hp_source"] == 0)
    ]
    assert len(pv) and len(non)
    for name, ids in (("pv", pv), ("non_owner", non)):
        assert kpis[f"{name}_members"] == len(ids)
        assert kpis[f"{name}_savings"] == pytest.approx(savings[ids].sum(), rel=1e-9, abs=bound)
        bought, imported = per.loc[ids, "bought_p2p_kwh"].sum(), per.loc[ids, "grid_import_kwh"]
        assert kpis[f"{name}_p2p_share"] == pytest.approx(
            bought / (bought + imported.sum()), rel=1e-9, abs=bound
        )
        assert kpis[f"{name}_savings_gini"] == pytest.approx(
            gini(savings[ids].to_numpy()), abs=bound
        )
    assert kpis["savings_jain"] == pytest.approx(jain(savings.to_numpy()), abs=bound)
    trades["seller_id"] = trades["seller_id"].astype(str)
    sales = trades[trades["seller_id"].isin(pv)]
    revenue = (sales["energy_kwh"] * sales["seller_price_per_kwh"]).sum()
    exported = per.loc[pv, "grid_export_kwh"].sum()
    surplus = per.loc[pv, "sold_p2p_kwh"].sum() + exported
    assert kpis["pv_surplus_kwh"] == pytest.approx(surplus, rel=1e-9, abs=bound)
    feed_in = market["feed_in_price_per_kwh"]
    assert kpis["pv_surplus_revenue"] == pytest.approx(
        revenue + exported * feed_in, rel=1e-9, abs=bound
    )
    assert kpis["pv_sharing_gain"] == pytest.approx(
        revenue - sales["energy_kwh"].sum() * feed_in, rel=1e-9, abs=bound
    )
    # the self-sufficiency splits into what the members reach alone and what they share
    assert kpis["self_sufficiency_own"] + kpis["self_sufficiency_shared"] == pytest.approx(
        kpis["self_sufficiency"]
    )
    assert kpis["self_sufficiency_shared"] == pytest.approx(
        kpis["p2p_kwh"] / kpis["consumption_kwh"]
    )


def test_the_report_shows_the_member_types(small_run: Path) -> None:
    page = (small_run / "report.html").read_text(encoding="utf-8")
    assert "Savings per member type against the no-P2P baseline" in page
    assert "mean savings per member over the run [EUR]" in page
    kpis = json.loads((small_run / "kpis.json").read_text(encoding="utf-8"))
    members = kpis["pv_members"]
    assert f"{members} members, P2P share" in page


def test_a_sharing_run(small_sharing_run: Path) -> None:
    """With a sharing key every allocation is a trade at the internal price: the owners'
    gain over feed-in is their shared energy times the internal price minus feed-in, and
    a member's P2P share is its allocated energy over its metered consumption."""
    kpis = json.loads((small_sharing_run / "kpis.json").read_text(encoding="utf-8"))
    trades = pd.read_parquet(small_sharing_run / "trades.parquet")
    agents = pd.read_parquet(small_sharing_run / "agents.parquet")
    households = pd.read_parquet(small_sharing_run / "households.parquet")
    market = json.loads((small_sharing_run / "manifest.json").read_text(encoding="utf-8"))[
        "scenario"
    ]["market"]
    assert market["mechanism"] == "sharing" and len(trades) > 0
    internal = trades["seller_price_per_kwh"].unique()
    assert len(internal) == 1  # one internal price for every shared kWh
    pv = set(households.loc[households["pv_kwp"] > 0, "agent_id"])
    shared_by_pv = trades.loc[trades["seller_id"].astype(str).isin(pv), "energy_kwh"].sum()
    assert shared_by_pv > 0
    assert kpis["pv_sharing_gain"] == pytest.approx(
        shared_by_pv * (internal[0] - market["feed_in_price_per_kwh"]), rel=1e-9
    )
    non = households.loc[households["pv_kwp"] == 0, "agent_id"]
    assert agents.loc[agents["agent_id"].astype(str).isin(non), "sold_p2p_kwh"].sum() == 0
    assert kpis["self_sufficiency_shared"] == pytest.approx(
        trades["energy_kwh"].sum() / kpis["consumption_kwh"]
    )
    # buyers pay less than retail, sellers get more than feed-in: nobody loses, so the
    # Gini is the standard one and the savings of every type are positive
    assert kpis["households_better_off_frac"] == 1.0
    for name in ("pv", "non_owner"):
        assert kpis[f"{name}_savings"] > 0 and 0 <= kpis[f"{name}_savings_gini"] < 1


def test_member_totals_name_what_is_missing(small_run: Path, tmp_path: Path) -> None:
    from scenarios.results.files import ResultsFileError
    from scenarios.results.member_totals import member_totals

    totals = member_totals(small_run)
    agents = pd.read_parquet(small_run / "agents.parquet")
    assert totals["bought_p2p_kwh"].sum() == pytest.approx(agents["bought_p2p_kwh"].sum())
    assert list(totals["agent_id"]) == list(
        pd.read_parquet(small_run / "households.parquet")["agent_id"]
    )
    for name in ("households.parquet", "intervals.parquet", "agents.parquet"):
        (tmp_path / name).write_bytes((small_run / name).read_bytes())
    with pytest.raises(ResultsFileError, match=r"no trades\.parquet"):
        member_totals(tmp_path)
