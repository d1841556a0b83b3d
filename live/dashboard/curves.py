"""Supply and demand step curves of an interval's book, for the dashboard's book chart:
from the orders (``books.parquet``, the live result's ``book``) or, when the book is not
stored, as the fills reveal them (:func:`revealed_book`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _step(kwh: np.ndarray, price: np.ndarray, descending: bool) -> dict[str, list[float]]:
    """A step curve through cumulative energy [kWh] at the limit prices, best first."""
    keep = kwh > 0
    kwh, price = kwh[keep], price[keep]
    if not len(kwh):
        return {"energy_kwh": [], "price_per_kwh": []}
    order = np.argsort(-price if descending else price, kind="stable")
    q = np.concatenate([[0.0], np.cumsum(kwh[order])])
    p = price[order]
    return {"energy_kwh": np.repeat(q, 2)[1:-1].tolist(), "price_per_kwh": np.repeat(p, 2).tolist()}


def book_curves(
    buy_kwh: np.ndarray, buy_price: np.ndarray, sell_kwh: np.ndarray, sell_price: np.ndarray
) -> dict[str, Any]:
    """Demand (bids, highest first) and supply (asks, lowest first) step curves."""
    return {"demand": _step(buy_kwh, buy_price, True), "supply": _step(sell_kwh, sell_price, False)}


def revealed_book(
    trades: pd.DataFrame,
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    retail: float | None,
    feed_in: float | None,
) -> dict[str, Any]:
    """Supply and demand as the fills reveal them, when the book itself is not stored.

    Matched demand is drawn at the price each buyer paid, matched supply at the price each
    seller received. What went to the utility instead was not matched in the market: the
    buyers' limits lay at or below the clearing price and the sellers' at or above it, so
    it is drawn at the bound every limit respects — unmatched demand at the feed-in
    tariff, unmatched supply at the retail tariff. The curves therefore meet at the
    clearing point; their shape away from it is a bound, not the book.
    """
    energy = trades["energy_kwh"].to_numpy(float)
    paid = trades["price_per_kwh"].to_numpy(float)
    got = (
        trades["seller_price_per_kwh"].to_numpy(float) if "seller_price_per_kwh" in trades else paid
    )
    got = np.where(np.isfinite(got), got, paid)
    low = feed_in if feed_in is not None else 0.0
    high = retail if retail is not None else (float(paid.max()) if len(paid) else 1.0)
    b_kwh = np.append(energy, float(np.nansum(import_kwh)))
    b_price = np.append(paid, low)
    s_kwh = np.append(energy, float(np.nansum(export_kwh)))
    s_price = np.append(got, high)
    return book_curves(b_kwh, b_price, s_kwh, s_price)
