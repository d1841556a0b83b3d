"""The payloads of the decentralised p2p market (``p2pgrid live --decentralised``) on the
peer topic ``p2pgrid/<community>/peers/<from>/<to>`` (:mod:`live.p2p_topics`).

Three kinds, each a JSON object with ``v`` (1), ``run`` (the clock's run id) and ``t``
(the interval):

- **offer** (``k = 0``): ``orders``, the sender's orders of the interval as
  ``[side, price_per_kwh, kind]`` (``side`` ``"buy"``/``"sell"``; the limit price
  [currency/kWh]; the order kind code). The energies stay private: each household's
  local problem caps only its own proposals.
- **proposal** (``k ≥ 1``, ADMM iteration ``k``): ``kwh``, the sender's proposed energy
  [kWh] for each order pair of the two, and ``price``, the pair price [currency/kWh]
  the proposal was made against (both in the pairs' canonical order,
  :mod:`live.p2p_peer`), and ``ok``, the iterations of the last few whose convergence
  the sender can vouch for so far (the termination flood, :mod:`live.p2p_peer`).
- **final** (``final: true``): at the iterate ``k`` both agree on, the pairs' trades
  ``[buyer_id, buy_order, buy_kind, sell_order, sell_kind, kwh, price]`` between the
  households ``a < b``, with the sender's ``sig`` (:mod:`scenarios.audit.keys`, over the
  canonical bytes of the object without ``sig``) when it has a key. Both sides sign
  the same object; the pair of signatures is the bilateral trade's record
  (``peers/<id>/trades``, read by the recorder: :mod:`live.p2p_recorder`).
"""

from __future__ import annotations

from typing import Any

import orjson

from live.protocol import VERSION, Rejected
from live.protocol import _finite as _number  # one rule for a number on the wire
from scenarios.audit.canonical import canonical

MAX_PEER_BYTES = 256_000
SIDES = ("buy", "sell")


def offer_payload(run: str, t: int, orders: list[tuple[bool, float, int]]) -> dict[str, Any]:
    """Interval ``t``'s offer: ``(is_buy, price_per_kwh, kind)`` per order."""
    return {
        "v": VERSION,
        "run": run,
        "t": t,
        "k": 0,
        "orders": [[SIDES[0] if b else SIDES[1], p, k] for b, p, k in orders],
    }


def proposal_payload(
    run: str, t: int, k: int, kwh: list[float], price: list[float], ok: list[int]
) -> dict[str, Any]:
    """Iteration ``k``'s proposal to one partner."""
    return {"v": VERSION, "run": run, "t": t, "k": k, "kwh": kwh, "price": price, "ok": ok}


def final_body(run: str, t: int, k: int, a: str, b: str, trades: list[list[Any]]) -> dict[str, Any]:
    """What both sides of the households ``a < b`` sign: their trades at iterate ``k``."""
    return {"v": VERSION, "run": run, "t": t, "k": k, "final": True, "a": a, "b": b,
            "trades": trades}  # fmt: skip


def _int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise Rejected(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _numbers(data: dict[str, Any], key: str) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list):
        raise Rejected(f"{key} must be a list of numbers")
    return [_number(x, f"{key}[{i}]") for i, x in enumerate(values)]


def read_peer(payload: bytes, run: str) -> dict[str, Any]:
    """A peer message of run ``run``, checked (:class:`~live.protocol.Rejected` naming
    the field otherwise): its ``t``, ``k`` and, by kind, ``orders`` as ``(is_buy,
    price, kind)`` tuples, ``kwh``/``price``/``ok`` lists of equal length, or the final's
    ``trades``."""
    if len(payload) > MAX_PEER_BYTES:
        raise Rejected(f"payload of {len(payload)} bytes is above {MAX_PEER_BYTES}")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejected("a peer message must be a JSON object")
    if data.get("v") != VERSION or isinstance(data.get("v"), bool):
        raise Rejected(f"unsupported version v={data.get('v')!r}")
    if data.get("run") != run:
        raise Rejected(f"run {data.get('run')!r} is not the clock's run {run!r}")
    _int(data.get("t"), "t")
    k = _int(data.get("k"), "k")
    if data.get("final") is True:
        trades = data.get("trades")
        if not isinstance(trades, list) or not all(
            isinstance(r, list) and len(r) == 7 and isinstance(r[0], str) for r in trades
        ):
            raise Rejected("trades must be [buyer_id, buy, buy_kind, sell, sell_kind, kwh, price]")
        for i, r in enumerate(trades):
            for j in (1, 2, 3, 4):
                _int(r[j], f"trades[{i}][{j}]")
            _number(r[5], f"trades[{i}] kwh")
            _number(r[6], f"trades[{i}] price")
        return data
    if k == 0:
        orders = data.get("orders")
        if not isinstance(orders, list):
            raise Rejected("orders must be a list of [side, price_per_kwh, kind]")
        out = []
        for i, o in enumerate(orders):
            if not (isinstance(o, list) and len(o) == 3 and o[0] in SIDES):
                raise Rejected(f"orders[{i}] must be [side, price_per_kwh, kind]")
            out.append((o[0] == SIDES[0], _number(o[1], f"orders[{i}] price"),
                        _int(o[2], f"orders[{i}] kind")))  # fmt: skip
        data["orders"] = out
        return data
    kwh, price = _numbers(data, "kwh"), _numbers(data, "price")
    if len(kwh) != len(price):
        raise Rejected(f"kwh has {len(kwh)} entries and price {len(price)}")
    if any(x < 0 for x in kwh):
        raise Rejected("kwh must be >= 0")
    ok = data.get("ok")
    if not isinstance(ok, list):
        raise Rejected("ok must be a list of iterations")
    data["ok"] = [_int(j, "ok[]", 1) for j in ok]
    data["kwh"] = kwh
    return data


def record_bytes(record: dict[str, Any]) -> bytes:
    """The canonical bytes both sides of a trade record signed."""
    body = {k: v for k, v in record.items() if k != "sigs"}
    return canonical(body)
