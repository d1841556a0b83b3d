"""The peers' protocol without MQTT (:mod:`live.p2p_peer`): households exchanging their
messages in lock-step reach exactly the batch core's trades (:func:`market.p2p.clear_p2p`
on the whole book) at the batch's iteration, though none of them holds the book; and the
payload codec refuses what is malformed, naming the field."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sps

from live.p2p_codec import final_body, offer_payload, proposal_payload, read_peer
from live.p2p_partners import partner_rows
from live.p2p_peer import Negotiation, Offer
from live.protocol import Rejected, encode
from market.p2p import clear_p2p
from market.p2p_pairs import P2PRule


def _book(seed: int, n: int) -> list[Offer]:
    """Each household: one or two orders of random sides, energies and limit prices."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 3))
        is_buy = rng.random(k) < 0.5
        out.append(Offer(is_buy, rng.uniform(0.05, 0.35, k), np.zeros(k, np.int64),
                         rng.uniform(0.05, 2.0, k)))  # fmt: skip
    return out


def _negotiate(offers: list[Offer], rule: P2PRule) -> dict[int, Negotiation]:
    """Every household's negotiation, its messages delivered in lock-step."""
    n = len(offers)
    partners, diameter = partner_rows(rule.partners, n)
    negs = {r: Negotiation(r, partners[r], offers[r], rule, diameter) for r in range(n)}
    for r, neg in negs.items():
        o = neg.offer
        orders = list(zip(o.is_buy.tolist(), o.price.tolist(), o.kind.tolist(), strict=True))
        message = read_peer(encode(offer_payload("run", 0, orders)), "run")
        for p in neg.active:
            negs[p].take(r, 0, message)
    for neg in negs.values():
        neg.build()
    while any(neg.final_k is None for neg in negs.values()):
        for r, neg in negs.items():
            for p, (kwh, price, ok) in neg.propose().items():
                wire = encode(proposal_payload("run", 0, neg.k, kwh, price, ok))
                negs[p].take(r, neg.k, read_peer(wire, "run"))
        for neg in negs.values():
            assert not neg.waiting()
            neg.advance()
    return negs


@pytest.mark.parametrize(
    ("seed", "ring"), [(1, False), (2, True), (3, True), (4, False), (5, True)]
)
def test_lock_step_peers_reach_the_batch_trades_at_the_batch_iteration(seed: int, ring: bool):
    n = 9
    offers = _book(seed, n)
    partners = None
    if ring:  # ±1 and ±2 on a ring of 9: diameter 3, the flood runs 3 rounds past the end
        rows = [i for i in range(n) for _ in (1, 2)]
        cols = [(i + d) % n for i in range(n) for d in (1, 2)]
        rel = sps.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))
        partners = (rel + rel.T).astype(bool).tocsr()
    rule = P2PRule(partners=partners, max_iterations=3000, stopping="pairwise")
    negs = _negotiate(offers, rule)
    # the batch core on the whole book
    owner = np.concatenate([np.full(len(o.is_buy), r) for r, o in enumerate(offers)])
    is_buy = np.concatenate([o.is_buy for o in offers])
    price = np.concatenate([o.price for o in offers])
    energy = np.concatenate([o.energy for o in offers])
    b, s = is_buy, ~is_buy
    m = clear_p2p(energy[b], price[b], energy[s], price[s], buy_owner=owner[b],
                  sell_owner=owner[s], rule=rule)  # fmt: skip
    assert m.convergence is not None and m.convergence.converged
    finals = {neg.final_k for neg in negs.values()}
    assert finals == {m.convergence.iterations}
    batch: dict[tuple[int, int], float] = {}
    prices: dict[tuple[int, int, int, int], float] = {}
    for i, j, q, p in zip(m.trade_buy, m.trade_sell, m.trade_kwh, m.buyer_price_per_kwh,
                          strict=True):  # fmt: skip
        key = (int(owner[b][i]), int(owner[s][j]))
        batch[key] = batch.get(key, 0.0) + q
        prices[(*key, int(i), int(j))] = p
    ids = [f"h{i + 1:04d}" for i in range(n)]
    live: dict[tuple[int, int], float] = {}
    (k,) = finals
    start = np.cumsum([0] + [len(o.is_buy) for o in offers])  # each household's first order
    in_buy, in_sell = np.cumsum(b) - 1, np.cumsum(s) - 1  # an order's index in its side
    for r, neg in negs.items():
        for p in neg.active:
            mine, theirs = neg.trades_with(p, k, ids), negs[p].trades_with(r, k, ids)
            assert mine == theirs  # both sides hold the same trades: they sign one object
            assert mine is not None
            for buyer, bo, _, so, _, kwh, pr in mine:
                if ids.index(buyer) != r:
                    continue  # counted once, on the buyer's side
                live[(r, p)] = live.get((r, p), 0.0) + kwh
                # the same order pair's price as the batch's
                i, j = int(in_buy[start[r] + bo]), int(in_sell[start[p] + so])
                assert pr == pytest.approx(prices[(r, p, i, j)], abs=1e-9)
    assert sorted(live) == sorted(batch)
    for key, q in batch.items():
        assert live[key] == pytest.approx(q, abs=1e-9)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"[1]", "JSON object"),
        (b'{"v": 2, "run": "r", "t": 0, "k": 1}', "version"),
        (b'{"v": 1, "run": "other", "t": 0, "k": 1}', "run 'other'"),
        (b'{"v": 1, "run": "r", "t": -1, "k": 1}', "t must be"),
        (b'{"v": 1, "run": "r", "t": 0, "k": 0, "orders": [["hold", 0.1, 0]]}', "orders[0]"),
        (b'{"v": 1, "run": "r", "t": 0, "k": 1, "kwh": [0.1], "price": [], "ok": []}', "1 entries"),
        (b'{"v": 1, "run": "r", "t": 0, "k": 1, "kwh": [-1], "price": [0.1], "ok": []}', ">= 0"),
        (
            b'{"v": 1, "run": "r", "t": 0, "k": 1, "kwh": [1e999], "price": [0], "ok": []}',
            "infinity",
        ),
        (b'{"v": 1, "run": "r", "t": 0, "k": 1, "kwh": [true], "price": [0], "ok": []}', "kwh[0]"),
        (b'{"v": 1, "run": "r", "t": 0, "k": 1, "kwh": [], "price": [], "ok": [0]}', "ok[]"),
        (b'{"v": 1, "run": "r", "t": 0, "k": 2, "final": true, "trades": [["h1", 0]]}', "trades"),
    ],
)
def test_the_codec_names_what_is_wrong(payload: bytes, why: str) -> None:
    with pytest.raises(Rejected) as err:
        read_peer(payload, "r")
    assert why in str(err.value)


def test_a_final_round_trips_as_the_object_both_sides_sign() -> None:
    body = final_body("r", 3, 17, "h0001", "h0002", [["h0002", 0, 1, 1, 0, 0.25, 0.2731]])
    assert read_peer(encode(body), "r") == body
