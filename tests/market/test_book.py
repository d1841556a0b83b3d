"""Order validation: every problem reported at once, naming row, agent and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market.book import (
    MAX_LISTED_PROBLEMS,
    OrderBook,
    OrderError,
    order_book,
    validate_orders,
)


def _orders(**overrides: list) -> pd.DataFrame:
    data = {
        "agent_id": ["h01", "h02", "h03", "h04"],
        "side": ["buy", "sell", "buy", "sell"],
        "energy_kwh": [1.0, 2.0, 3.0, 4.0],
        "price_per_kwh": [0.30, 0.10, 0.25, 0.20],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def _problems(orders: object) -> OrderError:
    with pytest.raises(OrderError) as info:
        order_book(orders)  # type: ignore[arg-type]
    return info.value


def test_valid_orders_become_arrays() -> None:
    orders = _orders(order_id=["o1", "o2", "o3", "o4"], bus=[3, 5, 3, 7])
    orders.index = [10, 11, 12, 13]
    book = order_book(orders)
    assert isinstance(book, OrderBook)
    assert len(book) == 4
    assert list(book.index) == [10, 11, 12, 13]
    assert book.agent_id.tolist() == ["h01", "h02", "h03", "h04"]
    assert book.is_buy.tolist() == [True, False, True, False]
    assert book.buy_rows.tolist() == [0, 2]
    assert book.sell_rows.tolist() == [1, 3]
    assert book.buy_kwh.tolist() == [1.0, 3.0]
    assert book.buy_price_per_kwh.tolist() == [0.30, 0.25]
    assert book.sell_kwh.tolist() == [2.0, 4.0]
    assert book.sell_price_per_kwh.tolist() == [0.10, 0.20]
    assert book.order_id is not None and book.order_id.tolist() == ["o1", "o2", "o3", "o4"]
    assert book.bus is not None and book.bus.tolist() == [3, 5, 3, 7]
    assert book.energy_kwh.dtype == book.price_per_kwh.dtype == np.float64


def test_optional_columns_absent() -> None:
    book = order_book(_orders())
    assert book.order_id is None and book.bus is None


def test_validate_orders_returns_float_columns() -> None:
    orders = _orders()
    assert validate_orders(orders) is orders  # already float64: nothing to convert
    ints = _orders(energy_kwh=[1, 2, 3, 4], price_per_kwh=[0, 1, 0, 1])
    checked = validate_orders(ints)
    assert checked is not ints
    assert checked["energy_kwh"].dtype == checked["price_per_kwh"].dtype == np.float64
    assert checked["energy_kwh"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert ints["energy_kwh"].dtype == np.int64  # input untouched


def test_other_dtypes_are_accepted() -> None:
    orders = _orders(
        side=pd.Categorical(["buy", "sell", "buy", "sell"]),
        energy_kwh=pd.array([1.0, 2.0, 3.0, 4.0], dtype="Float64"),
        price_per_kwh=np.array([0.3, 0.1, 0.25, 0.2], dtype=np.float32),
    )
    orders["agent_id"] = orders["agent_id"].astype("string")
    book = order_book(orders)
    assert book.is_buy.tolist() == [True, False, True, False]
    assert book.energy_kwh.dtype == np.float64
    strings = _orders(side=pd.array(["buy", "sell", "buy", "sell"], dtype="string"))
    assert order_book(strings).is_buy.tolist() == [True, False, True, False]
    numbers_as_objects = _orders(energy_kwh=np.array([1, 2.5, 3, 4], dtype=object))
    assert order_book(numbers_as_objects).energy_kwh.tolist() == [1.0, 2.5, 3.0, 4.0]


def test_empty_frame_with_the_columns_is_valid() -> None:
    book = order_book(_orders().iloc[:0])
    assert len(book) == 0
    assert book.buy_rows.size == book.sell_rows.size == 0


def test_nan_energy_names_row_agent_and_column() -> None:
    err = _problems(_orders(energy_kwh=[1.0, 2.0, 3.0, np.nan]))
    assert err.problems == (
        "orders row 3 (agent 'h04'): energy_kwh is NaN; must be a finite number > 0",
    )
    assert str(err) == (
        "invalid orders: 1 problem\n"
        "  orders row 3 (agent 'h04'): energy_kwh is NaN; must be a finite number > 0"
    )
    assert err.rows.tolist() == [3]
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("energy", "shown"),
    [(0.0, "0.0"), (-1.5, "-1.5"), (np.inf, "inf"), (-np.inf, "-inf")],
)
def test_zero_negative_and_infinite_energy(energy: float, shown: str) -> None:
    err = _problems(_orders(energy_kwh=[1.0, energy, 3.0, 4.0]))
    assert err.problems == (
        f"orders row 1 (agent 'h02'): energy_kwh is {shown}; must be a finite number > 0",
    )


def test_integer_zero_energy() -> None:
    err = _problems(_orders(energy_kwh=[1, 0, 3, 4]))
    assert err.problems == (
        "orders row 1 (agent 'h02'): energy_kwh is 0; must be a finite number > 0",
    )


def test_missing_energy_in_nullable_column() -> None:
    err = _problems(_orders(energy_kwh=pd.array([1.0, None, 3.0, 4.0], dtype="Float64")))
    assert err.problems == (
        "orders row 1 (agent 'h02'): energy_kwh is missing; must be a finite number > 0",
    )


def test_bad_price() -> None:
    err = _problems(_orders(price_per_kwh=[0.3, np.nan, 0.2, np.inf]))
    assert err.problems == (
        "orders row 1 (agent 'h02'): price_per_kwh is NaN; must be a finite number",
        "orders row 3 (agent 'h04'): price_per_kwh is inf; must be a finite number",
    )


def test_zero_and_negative_prices_are_valid() -> None:
    assert order_book(_orders(price_per_kwh=[0.0, -0.05, 0.1, 0.0])).price_per_kwh[1] == -0.05


def test_bad_side() -> None:
    err = _problems(_orders(side=["buy", "bid", None, "SELL"]))
    assert err.problems == (
        "orders row 1 (agent 'h02'): side is 'bid'; must be 'buy' or 'sell'",
        "orders row 2 (agent 'h03'): side is missing; must be 'buy' or 'sell'",
        "orders row 3 (agent 'h04'): side is 'SELL'; must be 'buy' or 'sell'",
    )
    assert err.rows.tolist() == [1, 2, 3]


def test_bad_side_with_pandas_na_and_categorical() -> None:
    err = _problems(_orders(side=pd.array(["buy", pd.NA, "sell", "ask"], dtype="string")))
    assert [p.split(":")[0] for p in err.problems] == [
        "orders row 1 (agent 'h02')",
        "orders row 3 (agent 'h04')",
    ]
    err = _problems(_orders(side=pd.Categorical(["buy", "sell", "hold", "buy"])))
    assert err.problems == ("orders row 2 (agent 'h03'): side is 'hold'; must be 'buy' or 'sell'",)


def test_missing_agent() -> None:
    err = _problems(_orders(agent_id=["h01", None, "h03", np.nan]))
    assert err.problems == (
        "orders row 1 (agent missing): agent_id is missing; must name the agent",
        "orders row 3 (agent missing): agent_id is NaN; must name the agent",
    )


def test_non_numeric_energy() -> None:
    err = _problems(_orders(energy_kwh=[1.0, "abc", True, 4.0]))
    assert err.problems == (
        "orders row 1 (agent 'h02'): energy_kwh is 'abc'; must be a finite number > 0",
        "orders row 2 (agent 'h03'): energy_kwh is True; must be a finite number > 0",
    )
    err = _problems(_orders(energy_kwh=[True, False, True, True]))
    assert err.problems == (
        "orders: column 'energy_kwh' has dtype bool; must be a finite number > 0",
    )


def test_missing_columns() -> None:
    err = _problems(_orders().drop(columns=["price_per_kwh", "side"]))
    assert err.problems == (
        "orders: missing required columns 'side', 'price_per_kwh' "
        "(columns present: 'agent_id', 'energy_kwh')",
    )
    err = _problems(pd.DataFrame())
    assert "missing required columns 'agent_id', 'side', 'energy_kwh', 'price_per_kwh'" in str(err)


def test_missing_column_and_bad_rows_in_the_other_columns() -> None:
    err = _problems(_orders(energy_kwh=[1.0, 0.0, 3.0, 4.0]).drop(columns=["price_per_kwh"]))
    assert len(err.problems) == 2
    assert err.problems[0].startswith("orders: missing required column 'price_per_kwh'")
    assert err.problems[1].startswith("orders row 1 (agent 'h02'): energy_kwh is 0.0")


def test_duplicated_column() -> None:
    orders = pd.concat([_orders(), _orders()[["side"]]], axis=1)
    err = _problems(orders)
    assert err.problems == ("orders: column 'side' appears more than once",)


def test_not_a_dataframe() -> None:
    err = _problems([{"agent_id": "h01"}])
    assert err.problems == ("orders must be a pandas DataFrame, got list",)


def test_every_problem_is_listed_row_by_row() -> None:
    orders = _orders(
        agent_id=["h01", "h02", None, "h04"],
        side=["buy", "sel", "buy", "sell"],
        energy_kwh=[np.nan, -2.0, 3.0, 4.0],
        price_per_kwh=[0.3, np.nan, 0.25, 0.2],
    )
    orders.index = ["a", "b", "c", "d"]
    err = _problems(orders)
    assert err.problems == (
        "orders row 'a' (agent 'h01'): energy_kwh is NaN; must be a finite number > 0",
        "orders row 'b' (agent 'h02'): side is 'sel'; must be 'buy' or 'sell'",
        "orders row 'b' (agent 'h02'): energy_kwh is -2.0; must be a finite number > 0",
        "orders row 'b' (agent 'h02'): price_per_kwh is NaN; must be a finite number",
        "orders row 'c' (agent missing): agent_id is missing; must name the agent",
    )
    assert str(err).startswith("invalid orders: 5 problems\n  orders row 'a'")
    assert err.rows.tolist() == [0, 1, 2]


def test_long_lists_are_capped() -> None:
    n = 50
    orders = pd.DataFrame(
        {
            "agent_id": [f"h{i:02d}" for i in range(n)],
            "side": ["buy"] * n,
            "energy_kwh": [0.0] * n,
            "price_per_kwh": [0.2] * n,
        }
    )
    err = _problems(orders)
    assert len(err.problems) == n
    lines = str(err).splitlines()
    assert lines[0] == "invalid orders: 50 problems"
    assert len(lines) == 1 + MAX_LISTED_PROBLEMS + 1
    assert lines[MAX_LISTED_PROBLEMS].startswith("  orders row 19 (agent 'h19')")
    assert lines[-1] == f"  ... and {n - MAX_LISTED_PROBLEMS} more"
    assert err.rows.tolist() == list(range(n))


def test_integer_agent_ids() -> None:
    err = _problems(_orders(agent_id=[7, 8, 9, 10], energy_kwh=[1.0, 2.0, np.nan, 4.0]))
    assert err.problems == (
        "orders row 2 (agent 9): energy_kwh is NaN; must be a finite number > 0",
    )
