"""The market's order arrays: who offers what, on which side, of which kind.

One interval's orders are struct-of-arrays of length ``m`` (:class:`Orders`): the
household row, the :class:`Side` (``BUY`` = 0, ``SELL`` = 1, the codes the results
files and every room use; grid/ included), the energy [kWh, > 0], the limit price
[currency/kWh] and the kind.

The kind is what the market needs to know about an order and no more: ``OrderKind.NET``
(0) is a household's inflexible net position, whose unmatched part is exchanged with the
utility; every other value is a *flexible* device order, which happens only if matched.
The market never needs a member per device: the non-zero values are device codes
assigned by the device registry in ``agents/`` (:mod:`agents.devices`, in registration
order: 1 battery, 2 EV, then whatever is registered next), which also names them in
the results files (``books.parquet``/``trades.parquet`` write ``net``, ``battery``,
``ev``). A heat pump is one module and one registration there, no change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Side(IntEnum):
    """Which side of the book an order is on (stored as ``int8``)."""

    BUY = 0
    SELL = 1


#: each side's word in the results files and on the wire, indexed by its code
SIDE_NAMES = ("buy", "sell")


class OrderKind(IntEnum):
    """The one kind the market treats specially; other kinds are flexible device codes.

    ``NET`` orders are inflexible: what is not matched goes to the utility. Any other
    kind value (≥ 1) is a flexible device order (see the module docstring).
    """

    NET = 0


@dataclass(frozen=True, slots=True)
class Orders:
    """One interval's orders (arrays of length ``m``).

    Attributes
    ----------
    household : row in the household table (int64)
    side : :class:`Side` codes (int8)
    energy_kwh : offered energy [kWh], > 0
    price_per_kwh : limit price [currency/kWh]
    kind : ``OrderKind.NET`` or a device code (int8)
    """

    household: np.ndarray
    side: np.ndarray
    energy_kwh: np.ndarray
    price_per_kwh: np.ndarray
    kind: np.ndarray

    @classmethod
    def build(
        cls,
        household: np.ndarray,
        is_buy: np.ndarray,
        energy_kwh: np.ndarray,
        price_per_kwh: np.ndarray,
        kind: np.ndarray,
    ) -> Orders:
        """Orders from a buy mask (``True`` = :attr:`Side.BUY`)."""
        side = np.where(is_buy, Side.BUY, Side.SELL).astype(np.int8)
        return cls(household, side, energy_kwh, price_per_kwh, kind.astype(np.int8))

    def __len__(self) -> int:
        return len(self.energy_kwh)

    @property
    def is_buy(self) -> np.ndarray:
        """Mask of the buy orders."""
        return self.side == Side.BUY

    @property
    def is_sell(self) -> np.ndarray:
        """Mask of the sell orders."""
        return self.side == Side.SELL

    @property
    def flexible(self) -> np.ndarray:
        """Mask of the flexible (device) orders: they happen only if matched."""
        return self.kind != OrderKind.NET

    def take(self, keep: np.ndarray, energy_kwh: np.ndarray | None = None) -> Orders:
        """The orders in ``keep`` (a mask or rows), with their energies replaced by
        ``energy_kwh`` (given for every order) when given."""
        energy = self.energy_kwh if energy_kwh is None else energy_kwh
        return Orders(
            household=self.household[keep],
            side=self.side[keep],
            energy_kwh=energy[keep],
            price_per_kwh=self.price_per_kwh[keep],
            kind=self.kind[keep],
        )


#: Energy below this is no order and no fill [kWh] (rounding noise of the clearing).
TINY_KWH = 1e-9
