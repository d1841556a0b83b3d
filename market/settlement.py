"""Settlement: what every household pays for an interval, vectorised.

Energy balance of a household (DESIGN.md), per interval:
``net = generation − demand − battery − ev = sold − bought + export − import``.
Whatever the household's physical net position is not covered by its P2P trades goes
to the utility: a shortfall is imported at the retail price, a surplus exported at the
feed-in price. The buyer of a P2P kWh pays the trade price plus the grid fee; the
seller receives its seller price. Money balance over all households:
``Σ cost = Σ import × retail − Σ export × feed_in + Σ fees + (Σ paid − Σ received)``,
the last term (the market surplus, kept by the market operator) being zero for
mechanisms in which buyers and sellers face one price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tariffs:
    """The utility's prices [currency/kWh]."""

    retail_price_per_kwh: float
    feed_in_price_per_kwh: float
    grid_fee_per_kwh: float


@dataclass(frozen=True, slots=True)
class Bill:
    """One interval's settlement per household (arrays of length ``n``).

    ``grid_import_kwh``/``grid_export_kwh`` are with the utility [kWh]; ``cost`` is
    positive when the household pays [currency]; ``fees`` are the grid fees it paid on
    P2P purchases [currency].
    """

    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_paid: np.ndarray
    p2p_received: np.ndarray
    fees: np.ndarray
    cost: np.ndarray


def trade_payments(
    n_households: int,
    buyer: np.ndarray,
    seller: np.ndarray,
    energy_kwh: np.ndarray,
    price_per_kwh: np.ndarray,
    seller_price_per_kwh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Money each household pays for and receives from its P2P trades [currency].

    ``buyer``/``seller`` are household rows of each trade; ``price_per_kwh`` is what the
    buyer pays and ``seller_price_per_kwh`` what the seller receives.
    """
    paid = np.bincount(buyer, energy_kwh * price_per_kwh, n_households)
    received = np.bincount(seller, energy_kwh * seller_price_per_kwh, n_households)
    return paid, received


def settle(
    net_kwh: np.ndarray,
    bought_kwh: np.ndarray,
    sold_kwh: np.ndarray,
    p2p_paid: np.ndarray,
    p2p_received: np.ndarray,
    tariffs: Tariffs,
    fees: np.ndarray | None = None,
) -> Bill:
    """Settle one interval.

    Parameters
    ----------
    net_kwh : physical net position ``generation − demand − battery − ev`` [kWh]
    bought_kwh, sold_kwh : energy bought and sold peer to peer [kWh]
    p2p_paid, p2p_received : money paid for and received from P2P trades [currency]
    tariffs : retail, feed-in and grid fee [currency/kWh]
    fees : grid fees each household pays on its purchases [currency], e.g. the sum of
        its trades' distance fees (:func:`market.fees.distance_fee_per_kwh`); default
        the flat ``tariffs.grid_fee_per_kwh × bought_kwh``
    """
    to_utility = net_kwh - sold_kwh + bought_kwh
    export = np.maximum(to_utility, 0.0)
    imported = np.maximum(-to_utility, 0.0)
    if fees is None:
        fees = tariffs.grid_fee_per_kwh * bought_kwh
    cost = (
        imported * tariffs.retail_price_per_kwh
        - export * tariffs.feed_in_price_per_kwh
        + p2p_paid
        - p2p_received
        + fees
    )
    return Bill(imported, export, p2p_paid, p2p_received, fees, cost)
