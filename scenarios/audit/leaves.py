"""The leaves of a ledger entry, and the plan they rebuild (both sides of one format).

An **input leaf** holds what one household put into an interval, exactly as the market
step used it::

    {"agent": "h0007", "t": 412,
     "reading": {"generation_kwh", "demand_kwh", "battery_kwh", "ev_kwh", "heat_pump_kwh",
                 "ev_deferrable_kwh"} | null,
     "orders": [[position, "buy" | "sell", energy_kwh, price_per_kwh, kind], ...],
     "estimated": false, "signed": ["<sha256 hex of a raw signed message>", ...],
     "rejected": 0}

``reading`` has one ``<device>_kwh`` per registered device kind
(:data:`agents.devices.DEVICE_KINDS`: its own energy before the market) besides the
generation, demand and the EV charging the feeder may postpone; ``position`` is the
order's index in the plan's order arrays, so :func:`plan_from_inputs` puts every order back
where it was (the mechanisms and the feeder's re-clearing see the same book in the same
order), while the list itself is in the household's own order (its message's, live; the
plan's, batch), which is the order its settlement lists its fills in
(:func:`where_from_inputs`); ``kind`` the plan's order kind code
(:class:`market.orders.OrderKind`, a device's code). One leaf per household that has
anything in the interval, in household-row order.

A **settlement leaf** is ``{"agent", "t", "version", "settlement": <the household's
settlement payload, exactly as published>}``, one per household, in row order.

Each leaf is hashed as ``merkle.leaf_hash(canonical(leaf))`` (RFC 8785 bytes,
:mod:`scenarios.audit.canonical`); an entry's header holds the Merkle root of each list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from agents.devices import DEVICE_KINDS
from agents.households.community import KIND_NET, Plan
from scenarios.audit import merkle
from scenarios.audit.canonical import canonical


def reading_keys() -> tuple[str, ...]:
    """The keys of an input leaf's ``reading``, in order (one per device kind registered
    now: a kind registered later, :func:`agents.devices.register`, is in them)."""
    return (
        "generation_kwh",
        "demand_kwh",
        *(f"{kind.name}_kwh" for kind in DEVICE_KINDS),
        "ev_deferrable_kwh",
    )


class LeafError(ValueError):
    """A leaf that does not have the ledger's form (named, with what is wrong)."""


def leaf_hashes(leaves: Iterable[Any]) -> list[bytes]:
    """``merkle.leaf_hash(canonical(leaf))`` of each leaf."""
    return [merkle.leaf_hash(canonical(leaf)) for leaf in leaves]


def leaf_hex(leaf: Any) -> str:
    """One leaf's hash, as hex (what a correction's ``supersedes`` names)."""
    return merkle.leaf_hash(canonical(leaf)).hex()


def leaves_root(leaves: Sequence[Any]) -> tuple[str, list[bytes]]:
    """The hex Merkle root over the leaves, and their leaf hashes."""
    hashes = leaf_hashes(leaves)
    return merkle.root(hashes).hex(), hashes


def rng_to_json(state: Mapping[str, Any]) -> dict[str, Any]:
    """A numpy bit generator's state for the ledger: its 128-bit words as strings (JSON
    numbers that large do not survive every reader)."""
    return {**state, "state": {k: str(v) for k, v in state["state"].items()}}


def rng_from_json(saved: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`rng_to_json` (older ledgers wrote the words as numbers)."""
    return {**saved, "state": {k: int(v) for k, v in saved["state"].items()}}


def inputs_from_plan(
    t: int,
    plan: Plan,
    ids: Sequence[str],
    readings: Iterable[int] | None = None,
    signed: Mapping[str, Sequence[str]] | None = None,
    estimated: Iterable[str] = (),
    rejected: Mapping[str, int] | None = None,
    where: Sequence[tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """The input leaves of interval ``t``'s plan (the plan that went into the step).

    ``readings``: the rows that reported a reading (None: every row, as in a batch run);
    a household without one has ``"reading": null``. ``signed``: each agent's raw signed
    messages (their SHA-256, :meth:`scenarios.audit.ledger.AuditWriter.private`);
    ``estimated``: the agents settled on a substitute value; ``rejected``: how many of
    each agent's messages the market rejected in the interval. ``where``: each order's
    (row, index in its household's message), in plan order (None: the plan's order).
    """
    n = len(ids)
    signed = signed or {}
    rejected = rejected or {}
    estimated = set(estimated)
    has_reading = np.ones(n, bool) if readings is None else np.zeros(n, bool)
    if readings is not None:
        has_reading[list(readings)] = True
    columns = [plan.generation_kwh, plan.demand_kwh]
    columns += [plan.self_kwh.get(k.name, np.zeros(n)) for k in DEVICE_KINDS]
    columns.append(plan.ev_deferrable_kwh)
    values = np.column_stack(columns).tolist()
    keys = reading_keys()
    orders: dict[int, list[list[Any]]] = {}
    index: dict[int, list[int]] = {}
    for i, (h, b, e, p, k) in enumerate(
        zip(
            plan.household.tolist(),
            plan.is_buy.tolist(),
            plan.energy_kwh.tolist(),
            plan.price_per_kwh.tolist(),
            plan.kind.tolist(),
            strict=True,
        )
    ):
        orders.setdefault(h, []).append([i, "buy" if b else "sell", e, p, k])
        if where is not None:
            index.setdefault(h, []).append(where[i][1])
    for h, ranks in index.items():
        orders[h] = [o for _, o in sorted(zip(ranks, orders[h], strict=True))]
    out = []
    for row in range(n):
        agent = ids[row]
        if not (has_reading[row] or row in orders or agent in signed or rejected.get(agent)):
            continue
        out.append(
            {
                "agent": agent,
                "t": t,
                "reading": dict(zip(keys, values[row], strict=True)) if has_reading[row] else None,
                "orders": orders.get(row, []),
                "estimated": agent in estimated,
                "signed": list(signed.get(agent, [])),
                "rejected": int(rejected.get(agent, 0)),
            }
        )
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LeafError(f"{what} is {value!r}, not a number")
    return float(value)


def plan_from_inputs(n: int, row: Mapping[str, int], inputs: Sequence[Mapping[str, Any]]) -> Plan:
    """The plan the input leaves describe: every reading at its household's row (zeros
    for a household without one), every order at its ``position``, the net position the
    inflexible (net) orders carry, as the live market's planner builds it."""
    gen, demand, deferrable = np.zeros(n), np.zeros(n), np.zeros(n)
    own = {k.name: np.zeros(n) for k in DEVICE_KINDS}
    orders: dict[int, tuple[int, bool, float, float, int]] = {}
    keys = reading_keys()
    for leaf in inputs:
        agent = str(leaf.get("agent"))
        if agent not in row:
            raise LeafError(f"input leaf of unknown agent {agent!r}")
        r = row[agent]
        reading = leaf.get("reading")
        if reading is not None:
            if not isinstance(reading, Mapping) or set(reading) != set(keys):
                raise LeafError(f"{agent}: reading has not the keys {list(keys)}")
            gen[r] = _number(reading["generation_kwh"], f"{agent} generation_kwh")
            demand[r] = _number(reading["demand_kwh"], f"{agent} demand_kwh")
            deferrable[r] = _number(reading["ev_deferrable_kwh"], f"{agent} ev_deferrable_kwh")
            for k in DEVICE_KINDS:
                own[k.name][r] = _number(reading[f"{k.name}_kwh"], f"{agent} {k.name}_kwh")
        for order in leaf.get("orders", []):
            if not isinstance(order, list) or len(order) != 5 or order[1] not in ("buy", "sell"):
                raise LeafError(
                    f"{agent}: order {order!r} is not [position, side, kWh, price, kind]"
                )
            pos = order[0]
            if not isinstance(pos, int) or isinstance(pos, bool) or pos in orders:
                raise LeafError(f"{agent}: order position {pos!r} is not a free integer")
            orders[pos] = (
                r,
                order[1] == "buy",
                _number(order[2], f"{agent} order energy_kwh"),
                _number(order[3], f"{agent} order price_per_kwh"),
                int(order[4]),
            )
    m = len(orders)
    if set(orders) != set(range(m)):
        raise LeafError(f"order positions are not 0..{m - 1}")
    ranked = [orders[i] for i in range(m)]
    household = np.fromiter((o[0] for o in ranked), np.int64, m)
    is_buy = np.fromiter((o[1] for o in ranked), bool, m)
    energy = np.fromiter((o[2] for o in ranked), float, m)
    price = np.fromiter((o[3] for o in ranked), float, m)
    kind = np.fromiter((o[4] for o in ranked), np.int8, m)
    net = np.bincount(household, np.where(is_buy, -energy, energy) * (kind == KIND_NET), n)
    return Plan(
        generation_kwh=gen,
        demand_kwh=demand,
        self_kwh=own,
        drawn_kwh={},
        ev_deferrable_kwh=deferrable,
        net_kwh=net,
        household=household,
        is_buy=is_buy,
        energy_kwh=energy,
        price_per_kwh=price,
        kind=kind,
    )


def settlement_leaves(
    t: int, ids: Sequence[str], settlements: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The settlement leaves of an interval, in row order (every household settled)."""
    missing = [a for a in ids if a not in settlements]
    if missing:
        raise LeafError(f"interval {t}: no settlement for {missing[:5]}")
    return [
        {
            "agent": a,
            "t": t,
            "version": int(settlements[a].get("version", 1)),
            "settlement": settlements[a],
        }
        for a in ids
    ]


def where_from_inputs(row: Mapping[str, int], inputs: Sequence[Mapping[str, Any]]) -> list:
    """Each order's (household row, index in its leaf's list), in plan position order:
    what :func:`scenarios.results.payloads.settlement_payloads` lists fills by."""
    found = {
        order[0]: (row[leaf["agent"]], i)
        for leaf in inputs
        for i, order in enumerate(leaf.get("orders", []))
    }
    return [found[i] for i in range(len(found))]


def order_where(plan: Plan) -> list[tuple[int, int]]:
    """Each order's (household row, index among its household's orders), in plan order
    (a batch run's ``where``)."""
    seen: dict[int, int] = {}
    out = []
    for h in plan.household.tolist():
        i = seen.get(h, 0)
        seen[h] = i + 1
        out.append((h, i))
    return out


def correction_input(
    agent: str, t: int, import_kwh: float, export_kwh: float, signed: Sequence[str] = ()
) -> dict[str, Any]:
    """The input leaf of a meter's corrected energy: ``generation_kwh`` = export,
    ``demand_kwh`` = import, every other reading key 0."""
    reading = dict.fromkeys(reading_keys(), 0.0)
    reading["generation_kwh"], reading["demand_kwh"] = float(export_kwh), float(import_kwh)
    return {
        "agent": agent,
        "t": t,
        "reading": reading,
        "orders": [],
        "estimated": False,
        "signed": list(signed),
        "rejected": 0,
    }
