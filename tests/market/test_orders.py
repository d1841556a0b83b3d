"""The market's order arrays: side codes as the results files write them, selection."""

from __future__ import annotations

import numpy as np
import pytest

from agents.devices import Battery, Device, Ev, kind_names, register, unregister
from market.orders import SIDE_NAMES, OrderKind, Orders, Side


def test_side_codes_are_the_books_codes() -> None:
    # books.parquet writes side 0 = buy, 1 = sell; the net kind is 0
    assert [SIDE_NAMES[s] for s in Side] == ["buy", "sell"]
    assert int(Side.BUY) == 0 and int(Side.SELL) == 1 and int(OrderKind.NET) == 0


def test_orders_build_and_take() -> None:
    orders = Orders.build(
        np.array([0, 1, 2]),
        np.array([True, False, True]),
        np.array([1.0, 2.0, 3.0]),
        np.array([0.2, 0.1, 0.3]),
        np.array([0, 1, 2]),
    )
    assert orders.side.tolist() == [0, 1, 0] and orders.side.dtype == np.int8
    assert orders.flexible.tolist() == [False, True, True]
    kept = orders.take(orders.is_buy, energy_kwh=np.array([5.0, 6.0, 7.0]))
    assert len(kept) == 2
    assert kept.household.tolist() == [0, 2] and kept.energy_kwh.tolist() == [5.0, 7.0]
    assert kept.is_sell.tolist() == [False, False]


def test_the_registry_assigns_codes_and_refuses_a_second_name() -> None:
    assert (Battery.kind, Ev.kind) == (1, 2)
    assert kind_names()[:3] == ("net", "battery", "ev")

    class Twin(Device):
        name = "ev"

    with pytest.raises(ValueError, match="'ev' is already registered"):
        register(Twin)

    class Extra(Device):
        name = "extra"

    register(Extra)
    try:
        assert Extra.kind == len(kind_names()) - 1 and kind_names()[-1] == "extra"
        with pytest.raises(ValueError, match="only the last registered kind"):
            unregister(Ev)
    finally:
        unregister(Extra)
    assert "extra" not in kind_names()
