"""The dashboard's in-process live source: fed by a :class:`live.market.MarketService`
running in the same process (``p2pgrid live … --dashboard``).

It reads exactly what the market publishes (``clock``, ``market/result``,
``market/book`` and every ``agents/<id>/settlement``, plus the readings it accepted),
handed over by the market (:class:`live.market.MarketListener`) right after each
interval is committed to the ledger and published, so the dashboard needs no MQTT
connection of its own: no second client on a broker that may enforce an ACL, and no
second copy of every settlement on the wire. The payloads are interpreted by
:class:`MqttSource`'s own code (``SETTLEMENT_MAP``, the result's ``book`` and
``grid.buses``/``grid.lines``), so what the page shows is what a dashboard watching
the broker would show.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from live.dashboard.mqtt_source import READING_MAP, SETTLEMENT_MAP, MqttSource, map_payload


class MarketSource(MqttSource):
    """A live market in this process.

    Parameters
    ----------
    community
        The community (topic root ``p2pgrid/<community>/``).
    broker
        The market's broker address, shown on the page (no connection is made).
    market, interval_minutes, households
        Tariffs, limits, interval length and the static household table, as for
        :class:`MqttSource`.
    """

    def __init__(
        self,
        community: str,
        broker: str = "mqtt://127.0.0.1:1883",
        market: dict[str, Any] | None = None,
        interval_minutes: int = 15,
        households: pd.DataFrame | None = None,
    ) -> None:
        super().__init__(broker, community, market, interval_minutes, households)
        self._state = "connected"

    def start(self) -> None:
        self._set_state("connected")

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    # --- live.market.MarketListener ------------------------------------------------
    def clock(self, payload: dict[str, Any]) -> None:
        self._on_clock(payload)

    def interval(
        self,
        result: dict[str, Any],
        settlements: dict[str, dict[str, Any]],
        readings: dict[str, dict[str, Any]],
        book: dict[str, Any] | None = None,
    ) -> None:
        """One committed interval (and its ``market/book``: this process is the market's,
        the operator's view): the row is built once, with every household in it, and
        pushed to the browsers as one event."""
        t = self._t(result)
        if t is None:
            return
        with self._lock:
            for agent, payload in readings.items():
                self.money.row(agent)
                self._readings[t][agent] = map_payload(payload, READING_MAP)
            for agent, payload in settlements.items():
                self.money.row(agent)
                self._positions[t][agent] = map_payload(payload, SETTLEMENT_MAP)
        if book is not None:
            self._on_book(book)
        self._on_result(result)

    def status(self) -> dict[str, Any]:
        out = super().status()
        latest = out["latest_t"]
        out["message"] = f"live (in-process): {self.community} on {self.broker}" + (
            f", interval {latest}" if latest >= 0 else ", waiting for the market"
        )
        return out
