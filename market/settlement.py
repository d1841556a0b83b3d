"""Settlement: what every household pays for an interval, vectorised.

Orders are commitments; the meter is the truth. Per household and interval (all
energies [kWh], positive when the household injects):

- **metered net** ``m = generation − demand − battery − ev``: the reading's generation
  and demand, less the energy its storage drew (charging positive). Flexible storage
  orders (``kind`` battery / ev) are dispatch: what they are filled for is that device's
  energy, and EV charging the feeder postponed is taken off the EV.
- **committed net** ``c``: the household's net orders in full (sell positive, buy
  negative: the matched part traded peer to peer, the unmatched part committed to the
  utility), its flexible storage orders as far as they were filled,
  less the PV the feeder curtailed, plus the EV charging it postponed
  (:func:`committed_net_kwh` and the feeder's instructions, added by the caller).
- **imbalance** ``m − c``: positive is a surplus (more injected than committed), negative
  a shortfall.

Exchange with the utility. ``export − import = m − sold + bought``: the metered exchange
(positive and negative part), so that the energy identity of DESIGN.md holds literally
with metered values, ``generation − demand − battery − ev = sold − bought + export −
import``; the imbalance is a *component* of that exchange, reported on its own
(``imbalance_kwh``). The committed exchange ``c − sold + bought`` (the unmatched part of
the net orders, with the feeder's instructions) is settled at retail (import) and
feed-in (export); the imbalance at the imbalance prices: a shortfall bought at
``imbalance_shortfall_price_per_kwh``, a surplus sold at
``imbalance_surplus_price_per_kwh`` (defaults: retail and feed-in).

Money. The buyer of a P2P kWh pays the trade price plus the grid fee; the seller
receives its seller price. ``cost`` (positive when the household pays) =
``committed import × retail − committed export × feed_in + imbalance_cost + paid −
received + fees``, and over all households
``Σ cost = Σ utility energy + Σ imbalance_cost + Σ fees + (Σ paid − Σ received)``, the
last term (the market surplus, kept by the market operator) zero for mechanisms in
which buyers and sellers face one price.

The same formula bills an energy-sharing contract (``market.mechanism = "sharing"``,
:mod:`market.sharing`): each allocation is a trade at the community's internal price, so a
member pays ``shared × internal price`` (``paid``) plus the jurisdiction's grid fee and levies
on it (``fees``, :mod:`market.sharing_fees`), its residual supply at retail (the committed
import) and gets feed-in for the surplus not shared (the committed export); the internal
payments sum to zero over the members, and
``Σ cost = Σ residual × retail − Σ feed-in + Σ fees``.

A household whose orders are exactly its net position (the batch engine's simulated
agents, which know their interval exactly, and meter-backed households whose orders
the market places from the meter) has zero imbalance up to rounding (positions below
1e-9 kWh are not ordered): ``c = m``. To settle a corrected reading later, call
:func:`settle` again with the new metered net and the interval's committed net, trades
and fees unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tariffs:
    """The utility's prices [currency/kWh].

    ``imbalance_shortfall_price_per_kwh`` / ``imbalance_surplus_price_per_kwh`` settle the
    metered energy a household did not commit; None means the retail / feed-in price.
    """

    retail_price_per_kwh: float
    feed_in_price_per_kwh: float
    grid_fee_per_kwh: float
    imbalance_shortfall_price_per_kwh: float | None = None
    imbalance_surplus_price_per_kwh: float | None = None

    @property
    def shortfall_price_per_kwh(self) -> float:
        """What a kWh of shortfall costs [currency/kWh]."""
        s = self.imbalance_shortfall_price_per_kwh
        return self.retail_price_per_kwh if s is None else s

    @property
    def surplus_price_per_kwh(self) -> float:
        """What a kWh of surplus earns [currency/kWh]."""
        s = self.imbalance_surplus_price_per_kwh
        return self.feed_in_price_per_kwh if s is None else s


@dataclass(frozen=True, slots=True)
class Bill:
    """One interval's settlement per household (arrays of length ``n``).

    ``grid_import_kwh``/``grid_export_kwh`` are the metered exchange with the utility
    [kWh] (imbalance included); ``imbalance_kwh`` is metered minus committed net [kWh]
    (positive: surplus) and ``imbalance_cost`` what it costs at the imbalance prices
    [currency, positive when the household pays]; ``cost`` is the whole bill, positive
    when the household pays [currency]; ``fees`` are the grid fees it paid on P2P
    purchases [currency].
    """

    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    imbalance_kwh: np.ndarray
    imbalance_cost: np.ndarray
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


def committed_net_kwh(
    n_households: int,
    household: np.ndarray,
    is_buy: np.ndarray,
    flexible: np.ndarray,
    energy_kwh: np.ndarray,
    filled_kwh: np.ndarray,
) -> np.ndarray:
    """What each household's orders commit it to inject [kWh] (sell positive).

    Per order (arrays of length ``m``): a net order (``flexible`` False) commits its whole
    ``energy_kwh`` — the fill peer to peer, the rest with the utility; a flexible storage
    order commits only its ``filled_kwh``. Instructions of the feeder (curtailment,
    postponed EV charging) are the caller's to add.
    """
    committed = np.where(flexible, filled_kwh, energy_kwh)
    return np.bincount(household, np.where(is_buy, -committed, committed), n_households)


def settle(
    metered_net_kwh: np.ndarray,
    committed_net_kwh: np.ndarray,
    bought_kwh: np.ndarray,
    sold_kwh: np.ndarray,
    p2p_paid: np.ndarray,
    p2p_received: np.ndarray,
    tariffs: Tariffs,
    fees: np.ndarray | None = None,
) -> Bill:
    """Settle one interval (every argument an array over the households, see the module
    docstring for the semantics).

    Parameters
    ----------
    metered_net_kwh : ``generation − demand − battery − ev`` as metered [kWh]
    committed_net_kwh : what the household committed to inject [kWh]: its net orders in
        full, flexible orders as filled, less curtailment, plus postponed EV charging
    bought_kwh, sold_kwh : energy bought and sold peer to peer [kWh]
    p2p_paid, p2p_received : money paid for and received from P2P trades [currency]
    tariffs : retail, feed-in, grid fee and imbalance prices [currency/kWh]
    fees : grid fees each household pays on its purchases [currency], e.g. the sum of
        its trades' distance fees (:func:`market.fees.distance_fee_per_kwh`); default
        the flat ``tariffs.grid_fee_per_kwh × bought_kwh``
    """
    to_utility = metered_net_kwh - sold_kwh + bought_kwh
    imbalance = metered_net_kwh - committed_net_kwh
    committed_to_utility = to_utility - imbalance
    if fees is None:
        fees = tariffs.grid_fee_per_kwh * bought_kwh
    imbalance_cost = (
        np.maximum(-imbalance, 0.0) * tariffs.shortfall_price_per_kwh
        - np.maximum(imbalance, 0.0) * tariffs.surplus_price_per_kwh
    )
    cost = (
        utility_energy_cost(committed_to_utility, tariffs)
        + imbalance_cost
        + p2p_paid
        - p2p_received
        + fees
    )
    return Bill(
        grid_import_kwh=np.maximum(-to_utility, 0.0),
        grid_export_kwh=np.maximum(to_utility, 0.0),
        imbalance_kwh=imbalance,
        imbalance_cost=imbalance_cost,
        p2p_paid=p2p_paid,
        p2p_received=p2p_received,
        fees=fees,
        cost=cost,
    )


def utility_energy_cost(to_utility_kwh: np.ndarray, tariffs: Tariffs) -> np.ndarray:
    """An exchange committed with the utility at retail (import, ``to_utility_kwh < 0``)
    and feed-in (export) [currency, positive when the household pays]."""
    return np.where(
        to_utility_kwh < 0,
        -to_utility_kwh * tariffs.retail_price_per_kwh,
        -to_utility_kwh * tariffs.feed_in_price_per_kwh,
    )
