"""A settlement re-issued on corrected meter energy (version k+1).

When a household was settled on a substitute (estimated) value and its meter's true
energy arrives later, the trades stand (and what was paid and received for them, and the
grid fees), and so does the committed net (what its orders committed it to); only the
metered side changes: the true metered net minus the commitment is its imbalance,
settled at the imbalance prices through the one settlement function of every interval
(:func:`market.settlement.settle`). The live market issues these corrections
(:mod:`live.corrections`); the ledger's replay re-derives them with this same function
(:mod:`scenarios.audit.replay`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.settlement import Tariffs, settle


def rebill(
    payload: dict[str, Any], import_kwh: float, export_kwh: float, tariffs: Tariffs
) -> dict[str, Any]:
    """The settlement ``payload`` with the metered energy ``import_kwh`` / ``export_kwh``
    instead of its estimate: the next ``version``; the same trades, fees and committed
    net; the difference to the commitment is imbalance (:func:`market.settlement.settle`)."""
    devices = payload["battery_kwh"] + payload["ev_kwh"] + payload.get("heat_pump_kwh", 0.0)
    metered = export_kwh - import_kwh - devices

    def one(key: str) -> np.ndarray:
        return np.array([float(payload[key])])

    bill = settle(
        np.array([metered]),
        one("committed_net_kwh"),
        one("bought_kwh"),
        one("sold_kwh"),
        one("paid"),
        one("received"),
        tariffs,
        one("fees"),
    )
    return {
        **payload,
        "version": int(payload.get("version", 1)) + 1,
        "estimated": False,
        "generation_kwh": export_kwh,
        "demand_kwh": import_kwh,
        **{
            key: float(getattr(bill, key)[0])
            for key in ("grid_import_kwh", "grid_export_kwh", "imbalance_kwh", "imbalance_cost")
        },
        "cost": float(bill.cost[0]),
    }
