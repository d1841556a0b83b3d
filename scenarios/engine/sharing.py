"""A scenario's energy-sharing contract as the market's :class:`~market.sharing.SharingRule`.

Member ids (``[market.sharing] shares`` and ``priority``) become arrays over the
community's household rows, the owner codes the engine's array core receives; the
internal price follows ``price_rule`` (:mod:`scenarios.config.schema_sharing`), and each
shared kWh carries the jurisdiction's grid fee and levies (:mod:`market.sharing_fees`),
billed to the member it is allocated to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.households.community import KIND_NET, TINY_KWH
from grid.pairing import Pairing
from market.mechanisms import ArrayMechanism
from market.sharing import SharingRule
from market.sharing_fees import SharedCharges
from scenarios.config.schema import Scenario


def shared_charges_of(scenario: Scenario) -> SharedCharges:
    """The grid fee and levies per shared kWh of the scenario [currency/kWh]."""
    mk = scenario.market
    return mk.sharing.charges(mk.grid_fee_per_kwh)


def internal_price_per_kwh(scenario: Scenario) -> float:
    """The internal price of a shared kWh [currency/kWh]."""
    mk = scenario.market
    charges = shared_charges_of(scenario).total_per_kwh
    return mk.sharing.price_per_kwh_of(mk.retail_price_per_kwh, mk.feed_in_price_per_kwh, charges)


def sharing_rule(scenario: Scenario, agent_ids: Sequence[str]) -> SharingRule:
    """The scenario's key, shares by household row, priority by row and internal price.

    Raises
    ------
    ValueError
        A share or priority group names an id that is not a member (the schema checks
        this too; kept for callers that build a community of their own).
    """
    sh = scenario.market.sharing
    row = {a: i for i, a in enumerate(agent_ids)}
    n = len(row)

    def rows_of(ids: Sequence[str], what: str) -> np.ndarray:
        missing = [a for a in ids if a not in row]
        if missing:
            raise ValueError(f"market.sharing.{what}: {missing} are not members of the community")
        return np.array([row[a] for a in ids], dtype=np.int64)

    shares = None
    table = sh.share_table()
    if table:
        shares = np.zeros(n)
        shares[rows_of(list(table), "shares")] = list(table.values())
    elif sh.key == "static":  # no shares given: the same for every member
        shares = np.full(n, 1.0 / n)
    priority = None
    if sh.priority:
        priority = np.full(n, len(sh.priority), dtype=np.int64)
        for group, ids in enumerate(sh.priority):
            priority[rows_of(ids, "priority")] = group
    return SharingRule(
        key=sh.key,
        price_per_kwh=internal_price_per_kwh(scenario),
        shares=shares,
        priority=priority,
    )


def share_net(core: ArrayMechanism, rng: np.random.Generator, net_kwh: np.ndarray) -> Pairing:
    """The sharing core's trades on the net positions ``net_kwh`` (export positive) of the
    household rows: after the feeder re-cleared an interval (curtailment, deferral), the
    allocation is made on what is left."""
    sell = np.flatnonzero(net_kwh > TINY_KWH)
    buy = np.flatnonzero(net_kwh < -TINY_KWH)
    zb, zs = np.zeros(len(buy)), np.zeros(len(sell))
    m = core(-net_kwh[buy], zb, net_kwh[sell], zs, rng, buy_owner=buy, sell_owner=sell)
    kind = np.full(len(m.trade_kwh), KIND_NET, dtype=np.int64)
    return Pairing(
        buyer=buy[m.trade_buy],
        seller=sell[m.trade_sell],
        energy_kwh=m.trade_kwh,
        price_per_kwh=m.buyer_price_per_kwh,
        seller_price_per_kwh=m.seller_price_per_kwh,
        buy_kind=kind,
        sell_kind=kind.copy(),
    )


def member_terms(scenario: Scenario, agent_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Each member's terms under the scenario's contract, aligned with ``agent_ids``:
    ``share`` (the static key's share, NaN under the other keys), ``priority`` (its group,
    0 first; members in no group share the last number) and ``load`` (``household``, or
    a ``[[community.members]]`` entry's load shape). For exports and KPIs that read a run's
    manifest: ``member_terms(validate_scenario(manifest["scenario"]), households.agent_id)``.
    """
    rule = sharing_rule(scenario, agent_ids)
    n = len(agent_ids)
    given = {m.id: m.load for m in scenario.community.members}
    return {
        "share": rule.shares
        if rule.key == "static" and rule.shares is not None
        else np.full(n, np.nan),
        "priority": rule.priority if rule.priority is not None else np.zeros(n, dtype=np.int64),
        "load": np.array([given.get(a, "household") for a in agent_ids]),
    }
