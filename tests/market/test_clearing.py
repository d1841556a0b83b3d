"""DataFrame API: ``market.clear`` and the mechanism registry."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import market
from market import MECHANISMS, ClearingResult, OrderError, clear, clear_uniform

BASE_COLUMNS = ["buyer_id", "seller_id", "energy_kwh", "price_per_kwh", "seller_price_per_kwh"]


def _orders() -> pd.DataFrame:
    # The book of test_uniform.test_simple_crossing_book, sides interleaved:
    # bids h1 0.30 (5), h3 0.25 (3), h5 0.10 (4); asks h2 0.12 (4), h4 0.20 (3),
    # h6 0.28 (5). Volume 7 kWh at (0.25 + 0.20) / 2.
    return pd.DataFrame(
        {
            "agent_id": ["h1", "h2", "h3", "h4", "h5", "h6"],
            "side": ["buy", "sell", "buy", "sell", "buy", "sell"],
            "energy_kwh": [5.0, 4.0, 3.0, 3.0, 4.0, 5.0],
            "price_per_kwh": [0.30, 0.12, 0.25, 0.20, 0.10, 0.28],
        },
        index=[101, 102, 103, 104, 105, 106],
    )


def test_package_entry_point() -> None:
    res = market.clear(_orders())
    assert isinstance(res, ClearingResult)
    assert res.price_per_kwh == pytest.approx(0.225, abs=1e-15)
    assert res.volume_kwh == 7.0


def test_trades_table() -> None:
    res = clear(_orders(), mechanism="uniform")
    expected = pd.DataFrame(
        {
            "buyer_id": ["h1", "h1", "h3"],
            "seller_id": ["h2", "h4", "h4"],
            "energy_kwh": [4.0, 1.0, 2.0],
            "price_per_kwh": [0.225] * 3,
            "seller_price_per_kwh": [0.225] * 3,
        }
    )
    pd.testing.assert_frame_equal(res.trades, expected, atol=1e-15, rtol=0)
    assert list(res.trades.columns) == BASE_COLUMNS
    assert isinstance(res.price_per_kwh, float)


def test_filled_energy_is_indexed_like_the_orders() -> None:
    res = clear(_orders())
    expected = pd.Series(
        [5.0, 4.0, 2.0, 3.0, 0.0, 0.0], index=[101, 102, 103, 104, 105, 106], name="filled_kwh"
    )
    pd.testing.assert_series_equal(res.filled_kwh, expected)


def test_order_id_and_bus_are_carried_into_the_trades() -> None:
    orders = _orders().assign(order_id=[f"o{i}" for i in range(6)], bus=[11, 12, 13, 14, 15, 16])
    res = clear(orders)
    assert list(res.trades.columns) == [
        *BASE_COLUMNS,
        "buy_order_id",
        "sell_order_id",
        "buyer_bus",
        "seller_bus",
    ]
    assert res.trades["buy_order_id"].tolist() == ["o0", "o0", "o2"]
    assert res.trades["sell_order_id"].tolist() == ["o1", "o3", "o3"]
    assert res.trades["buyer_bus"].tolist() == [11, 11, 13]
    assert res.trades["seller_bus"].tolist() == [12, 14, 14]
    only_bus = clear(_orders().assign(bus=[1, 2, 3, 4, 5, 6]))
    assert list(only_bus.trades.columns) == [*BASE_COLUMNS, "buyer_bus", "seller_bus"]


@pytest.mark.parametrize(
    "orders",
    [
        _orders().iloc[:0],  # empty
        _orders()[_orders()["side"] == "buy"],  # one-sided
        _orders()[_orders()["side"] == "sell"],
        _orders().iloc[[0]],  # single order
        _orders().iloc[[4, 5]],  # no crossing: bid 0.10 < ask 0.28
    ],
    ids=["empty", "buys-only", "sells-only", "single", "no-crossing"],
)
def test_nothing_trades(orders: pd.DataFrame) -> None:
    res = clear(orders)
    assert res.price_per_kwh is None
    assert res.volume_kwh == 0.0
    assert list(res.trades.columns) == BASE_COLUMNS
    assert len(res.trades) == 0
    assert res.trades["energy_kwh"].dtype == np.float64
    pd.testing.assert_series_equal(
        res.filled_kwh, pd.Series(0.0, index=orders.index, name="filled_kwh")
    )


def test_single_buy_and_sell() -> None:
    orders = pd.DataFrame(
        {"agent_id": ["a", "b"], "side": ["sell", "buy"], "energy_kwh": [2, 1.5]}
    ).assign(price_per_kwh=[0.1, 0.3])
    res = clear(orders)
    assert res.price_per_kwh == pytest.approx(0.2, abs=1e-15)
    assert res.trades[["buyer_id", "seller_id", "energy_kwh"]].values.tolist() == [["b", "a", 1.5]]
    assert res.filled_kwh.tolist() == [1.5, 1.5]


def test_same_agent_on_both_sides_is_valid_but_never_trades_with_itself() -> None:
    # Validation does not forbid it; the only crossing pair is a's own, so nothing trades
    # (tests/market/test_owners.py: re-pairing when another agent is in the book).
    orders = pd.DataFrame(
        {
            "agent_id": ["a", "a"],
            "side": ["buy", "sell"],
            "energy_kwh": [1.0, 1.0],
            "price_per_kwh": [0.3, 0.1],
        }
    )
    res = clear(orders)
    assert res.trades.empty and res.volume_kwh == 0.0
    assert res.filled_kwh.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("column", "position", "value", "message"),
    [
        ("energy_kwh", 1, np.nan, "orders row 102 (agent 'h2'): energy_kwh is NaN"),
        ("energy_kwh", 2, 0.0, "orders row 103 (agent 'h3'): energy_kwh is 0.0"),
        ("energy_kwh", 3, -3.0, "orders row 104 (agent 'h4'): energy_kwh is -3.0"),
        ("side", 4, "offer", "orders row 105 (agent 'h5'): side is 'offer'"),
    ],
)
def test_invalid_orders_are_rejected(
    column: str, position: int, value: object, message: str
) -> None:
    orders = _orders()
    orders.iloc[position, orders.columns.get_loc(column)] = value
    with pytest.raises(OrderError, match=re.escape(message)):
        clear(orders)


def test_missing_column_is_rejected() -> None:
    with pytest.raises(OrderError, match="missing required column 'energy_kwh'"):
        clear(_orders().drop(columns="energy_kwh"))


def test_unknown_mechanism() -> None:
    with pytest.raises(ValueError, match="mechanism 'uniformm' is not one of uniform") as info:
        clear(_orders(), mechanism="uniformm")
    assert not isinstance(info.value, OrderError)
    assert "uniform" in MECHANISMS
    for name in MECHANISMS:
        assert name in str(info.value)


def test_unknown_mechanism_is_reported_before_the_orders_are_checked() -> None:
    with pytest.raises(ValueError, match="is not one of"):
        clear(pd.DataFrame(), mechanism="vickrey")


def test_registry_entries_take_an_order_book() -> None:
    res = MECHANISMS["uniform"](market.order_book(_orders()))
    pd.testing.assert_frame_equal(res.trades, clear(_orders()).trades)


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    side = draw(st.lists(st.sampled_from(["buy", "sell"]), min_size=n, max_size=n))
    energy = draw(st.lists(st.floats(1e-3, 50.0), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(5, 35), min_size=n, max_size=n))
    agents = draw(st.lists(st.sampled_from(["h1", "h2", "h3", "h4", "h5"]), min_size=n, max_size=n))
    index = draw(st.permutations(list(range(100, 100 + n))))
    return pd.DataFrame(
        {
            "agent_id": agents,
            "side": side,
            "energy_kwh": energy,
            "price_per_kwh": np.asarray(cents, dtype=np.int64) / 100.0,
            "order_id": [f"o{i}" for i in range(n)],
        },
        index=index,
    )


@settings(max_examples=150, deadline=None)
@given(_frames())
def test_dataframe_api_agrees_with_the_array_core(orders: pd.DataFrame) -> None:
    res = clear(orders)
    again = clear(orders.copy())
    pd.testing.assert_frame_equal(res.trades, again.trades)  # deterministic
    pd.testing.assert_series_equal(res.filled_kwh, again.filled_kwh)

    buys = orders[orders["side"] == "buy"]
    sells = orders[orders["side"] == "sell"]
    m = clear_uniform(
        buys["energy_kwh"],
        buys["price_per_kwh"],
        sells["energy_kwh"],
        sells["price_per_kwh"],
        buy_owner=buys["agent_id"].to_numpy(),
        sell_owner=sells["agent_id"].to_numpy(),
    )
    assert res.volume_kwh == m.volume_kwh
    assert (res.trades["buyer_id"] != res.trades["seller_id"]).all()  # never with itself
    if np.isnan(m.price_per_kwh):
        assert res.price_per_kwh is None
    else:
        assert res.price_per_kwh == m.price_per_kwh
    assert res.trades["buyer_id"].tolist() == buys["agent_id"].iloc[m.trade_buy].tolist()
    assert res.trades["seller_id"].tolist() == sells["agent_id"].iloc[m.trade_sell].tolist()
    assert res.trades["buy_order_id"].tolist() == buys["order_id"].iloc[m.trade_buy].tolist()
    assert res.trades["sell_order_id"].tolist() == sells["order_id"].iloc[m.trade_sell].tolist()
    np.testing.assert_array_equal(res.trades["energy_kwh"].to_numpy(), m.trade_kwh)

    # Per-order fills are the sums of that order's trades, never above the order.
    bought = res.trades.groupby("buy_order_id")["energy_kwh"].sum()
    sold = res.trades.groupby("sell_order_id")["energy_kwh"].sum()
    per_order = pd.concat([bought, sold]).reindex(orders["order_id"], fill_value=0.0)
    np.testing.assert_allclose(res.filled_kwh.to_numpy(), per_order.to_numpy(), rtol=1e-12)
    # Up to the rounding of cumulative sums: a few ulps of the traded volume.
    ulps = 64 * np.finfo(np.float64).eps * max(1.0, res.volume_kwh)
    assert (res.filled_kwh <= orders["energy_kwh"] + ulps).all()
    assert res.filled_kwh.index.equals(orders.index)
    # Individual rationality, per trade.
    limit = orders.set_index("order_id")["price_per_kwh"]
    assert (res.trades["price_per_kwh"] <= limit[res.trades["buy_order_id"]].to_numpy()).all()
    assert (
        res.trades["seller_price_per_kwh"] >= limit[res.trades["sell_order_id"]].to_numpy()
    ).all()
