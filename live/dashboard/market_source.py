"""The dashboard's in-process live source: fed by a :class:`live.market.MarketService`
running in the same process (``p2pgrid live … --dashboard``).

It reads exactly what the market publishes (``clock``, ``market/result``,
``market/book`` and every ``agents/<id>/settlement``, plus the readings it accepted),
handed over by the market (:class:`live.market.MarketListener`) right after each
interval is committed to the ledger and published, so the dashboard needs no MQTT
connection of its own: no second client on a broker that may enforce an ACL, and no
second copy of every settlement on the wire. The payloads are read by
:class:`live.dashboard.live_source.LiveSource`, as for a dashboard watching the broker
(:class:`live.dashboard.mqtt_source.MqttSource`), so the page shows the same.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from live.bus import BrokerConfig
from live.dashboard.live_source import LiveSource, interval_of


class MarketSource(LiveSource):
    """A live market in this process.

    Parameters
    ----------
    community
        The community (topic root ``p2pgrid/<community>/``).
    broker
        The market's broker address, shown on the page (no connection is made).
    market, interval_minutes, households
        Tariffs, limits, interval length and the static household table, as for
        :class:`live.dashboard.live_source.LiveSource`.
    """

    def __init__(
        self,
        community: str,
        broker: str = "mqtt://127.0.0.1:1883",
        market: dict[str, Any] | None = None,
        interval_minutes: int = 15,
        households: pd.DataFrame | None = None,
    ) -> None:
        config = BrokerConfig.from_url(broker)
        where = f"{config.host}:{config.port}"
        super().__init__(community, where, market, interval_minutes, households)
        self.url = broker

    # --- live.market.MarketListener ------------------------------------------------
    def clock(self, payload: dict[str, Any]) -> None:
        self.on_clock(payload)

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
        if interval_of(result) is None:
            return
        with self._lock:  # held across: the result's row is built once, not revised
            for agent, payload in readings.items():
                self.on_reading(agent, payload)
            for agent, payload in settlements.items():
                self.on_settlement(agent, payload)
        if book is not None:
            self.on_book(book)
        self.on_result(result)

    def status(self) -> dict[str, Any]:
        latest = self.latest_t()
        with self._lock:
            errors = self._errors
        return {
            "state": "connected",
            "message": f"live (in-process): {self.community} on {self.url}"
            + (f", interval {latest}" if latest >= 0 else ", waiting for the market"),
            "latest_t": latest,
            "clock_t": interval_of(self._clock) if self._clock else None,
            "errors": errors,
            "last_error": self._last_error,
            "intervals": len(self._rows),
        }
