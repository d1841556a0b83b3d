"""The grid coupling on the market's order arrays: pairing the re-clearing's fills,
merging flexible orders, sharing curtailment (hand-built books, hand-checked numbers)."""

import numpy as np
import pytest

from grid.coupling import merge_flexible, share_curtailment
from grid.pairing import pair_fills
from market.orders import OrderKind, Orders, Side

NET, BATTERY = OrderKind.NET, 1  # a device code (the battery's in a run)


def _orders(household, is_buy, energy, price, kind) -> Orders:
    return Orders.build(
        np.asarray(household), np.asarray(is_buy, bool), np.asarray(energy, float),
        np.asarray(price, float), np.asarray(kind, np.int8),
    )  # fmt: skip


def test_share_curtailment_takes_unsold_surplus_first() -> None:
    # bus 0: households 0 and 1; 3 kWh to curtail; unsold 1 + 1, then self-used PV 4 + 0
    got = share_curtailment(
        np.array([3.0, 0.0]),
        np.array([0, 0, 1]),
        generation_kwh=np.array([5.0, 1.0, 2.0]),
        unsold_kwh=np.array([1.0, 1.0, 0.0]),
    )
    np.testing.assert_allclose(got, [2.0, 1.0, 0.0])


def test_pair_fills_prices_inside_every_bid_and_ask() -> None:
    orders = _orders(
        [0, 1, 2, 3],
        [True, True, False, False],
        [2.0, 1.0, 1.5, 1.5],
        [0.25, 0.15, 0.12, 0.10],
        [NET] * 4,
    )
    pairing = pair_fills(orders, np.array([2.0, 1.0, 1.5, 1.5]), price_per_kwh=0.20, n_households=4)
    assert pairing.energy_kwh.sum() == pytest.approx(3.0)
    # highest filled ask 0.12 <= lowest filled bid 0.15: one price, the dual clipped to 0.15
    np.testing.assert_allclose(pairing.price_per_kwh, 0.15)
    # bids descending against asks descending: 0.25/0.12 1.5 kWh, 0.25/0.10 0.5, 0.15/0.10 1
    assert list(
        zip(
            pairing.buyer.tolist(),
            pairing.seller.tolist(),
            pairing.energy_kwh.tolist(),
            strict=True,
        )
    ) == [(0, 2, 1.5), (0, 3, 0.5), (1, 3, 1.0)]


def test_forced_discharge_that_no_bid_accepts_is_not_traded() -> None:
    # The constrained clearing filled household 1's battery (ask 0.25) against household
    # 0's net buy (bid 0.20) to lift a voltage: the old pairing traded it at the midpoint
    # 0.225, 0.025 above the bid. Now it is no trade: 0 imports, 1 exports.
    orders = _orders([0, 1], [True, False], [1.0, 1.0], [0.20, 0.25], [NET, BATTERY])
    pairing = pair_fills(orders, np.array([1.0, 1.0]), price_per_kwh=0.30, n_households=2)
    assert len(pairing.energy_kwh) == 0
    np.testing.assert_array_equal(pairing.traded_kwh(2), [[0.0, 0.0], [0.0, 0.0]])


def test_forced_discharge_goes_to_the_bid_that_accepts_it() -> None:
    # Bids 0.30 (h0) and 0.15 (h1), asks 0.08 (h2) and 0.25 (h3's battery), 1 kWh each.
    # Merit order would pair 0.30/0.08 and 0.15/0.25 (crossed); highest bid with the
    # highest ask pairs both: 0.30/0.25 and 0.15/0.08. The dual 0.20 lies in neither
    # common interval ([0.25, 0.15] is empty), so each pair clips it: 0.25 and 0.15.
    orders = _orders(
        [0, 1, 2, 3],
        [True, True, False, False],
        [1.0] * 4,
        [0.30, 0.15, 0.08, 0.25],
        [NET, NET, NET, BATTERY],
    )
    p = pair_fills(orders, np.ones(4), price_per_kwh=0.20, n_households=4)
    assert list(
        zip(
            p.buyer.tolist(),
            p.seller.tolist(),
            p.energy_kwh.tolist(),
            p.price_per_kwh.tolist(),
            strict=True,
        )
    ) == [(0, 3, 1.0, 0.25), (1, 2, 1.0, 0.15)]
    np.testing.assert_array_equal(p.sell_kind, [BATTERY, NET])


def test_a_household_serves_itself_before_it_trades() -> None:
    # h0: net buy 2 kWh at 0.29 and battery sell 1 kWh at 0.25, both filled; h1 sells
    # 1 kWh at 0.10. h0's battery covers 1 kWh of its own buy (no trade with itself);
    # the other 1 kWh of h0's buy comes from h1, at the dual 0.20.
    orders = _orders(
        [0, 0, 1], [True, False, False], [2.0, 1.0, 1.0], [0.29, 0.25, 0.10], [NET, BATTERY, NET]
    )
    p = pair_fills(orders, np.array([2.0, 1.0, 1.0]), price_per_kwh=0.20, n_households=2)
    assert list(
        zip(
            p.buyer.tolist(),
            p.seller.tolist(),
            p.energy_kwh.tolist(),
            p.price_per_kwh.tolist(),
            strict=True,
        )
    ) == [(0, 1, 1.0, 0.20)]


def test_flexible_orders_merge_per_bus_side_and_price() -> None:
    # households 0, 1 on bus 0 and 2 on bus 1; three storage buys at 0.12, one sell
    orders = _orders(
        [0, 0, 1, 2, 1],
        [True, True, True, True, False],
        [1.0, 2.0, 3.0, 4.0, 5.0],
        [0.25, 0.12, 0.12, 0.12, 0.20],
        [NET, BATTERY, BATTERY, BATTERY, BATTERY],
    )
    book = merge_flexible(orders, household_bus=np.array([0, 0, 1]))
    assert book.n_fixed == 1
    # merged: (bus 0, sell, 0.20) 5 kWh; (bus 0, buy, 0.12) 5 kWh; (bus 1, buy, 0.12) 4 kWh
    merged = sorted(zip(book.bus[1:], book.side[1:], book.energy_kwh[1:], strict=True))
    assert merged == [(0, Side.BUY, 5.0), (0, Side.SELL, 5.0), (1, Side.BUY, 4.0)]
    # a merged fill is shared pro rata back onto its orders
    fills = np.zeros(len(book.energy_kwh))
    fills[0] = 1.0
    group_of = {
        (int(b), int(s)): i + 1
        for i, (b, s) in enumerate(zip(book.bus[1:], book.side[1:], strict=True))
    }
    fills[group_of[(0, Side.BUY)]] = 2.5
    np.testing.assert_allclose(book.split(fills), [1.0, 1.0, 1.5, 0.0, 0.0])
