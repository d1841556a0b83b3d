"""The transport picks paho's client by version: the optimised one only on the versions
it was tested with, paho's stock client (with a warning) elsewhere or when forced."""

from __future__ import annotations

import pytest

from live.paho_client import STOCK_SWITCH, TESTED_PAHO, FastClient, StockClient, client_class


def test_tested_versions_get_the_optimised_client(monkeypatch) -> None:
    monkeypatch.delenv(STOCK_SWITCH, raising=False)
    low, _ = TESTED_PAHO
    assert client_class(".".join(map(str, low)) + ".0") is FastClient
    assert client_class(f"{low[0]}.{low[1]}.7.post1") is FastClient


@pytest.mark.parametrize("installed", ["2.1.0", "2.3.0", "3.0.0", "1.6.1"])
def test_untested_versions_fall_back_with_a_warning(monkeypatch, installed: str) -> None:
    monkeypatch.delenv(STOCK_SWITCH, raising=False)
    with pytest.warns(RuntimeWarning, match=rf"paho-mqtt {installed} is outside"):
        assert client_class(installed) is StockClient


def test_the_switch_forces_the_stock_client(monkeypatch) -> None:
    monkeypatch.setenv(STOCK_SWITCH, "1")
    low, _ = TESTED_PAHO
    assert client_class(".".join(map(str, low)) + ".0") is StockClient


@pytest.mark.parametrize("cls", [FastClient, StockClient])
def test_both_clients_count_until_acknowledged(mosquitto, cls) -> None:
    """Either client: ``pending`` counts a QoS 1 message until the broker acknowledges
    it, then returns to 0; nothing is lost in between (a subscriber sees all 500)."""
    import threading
    import time

    import paho.mqtt.client as mqtt

    got: list[bytes] = []
    done = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.on_message = lambda c, u, m: (got.append(m.payload), len(got) == 500 and done.set())
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("t/x", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    c = cls(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, window=50)
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not c.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(500):
            c.enqueue("t/x", str(i).encode(), 1, False)
        assert c.pending() > 0
        while c.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.pending() == 0
        assert c.looping()
        assert done.wait(10)
        assert got == [str(i).encode() for i in range(500)]
    finally:
        c.disconnect()
        c.loop_stop()
        sub.disconnect()
        sub.loop_stop()
    assert not c.looping()
