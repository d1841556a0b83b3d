"""The names of the market mechanisms, without their code: the scenario schema checks
``market.mechanism`` against them without importing numpy (``p2pgrid validate``'s
start-up). The registries :data:`market.mechanisms.ARRAY_MECHANISMS` and
:data:`market.clearing.MECHANISMS` hold these names in this order (a test checks it).

``sharing`` is the family of energy-sharing allocation keys (:mod:`market.sharing`); its key
is ``[market.sharing] key``, or part of the name as ``sharing:<key>`` (``sharing:static``,
``sharing:proportional``, ``sharing:equal``), the form ``p2pgrid compare --mechanisms``
takes to put several keys side by side.

``p2p`` is the bilateral market without an auctioneer (consensus ADMM between partners,
:mod:`market.p2p`); its partners, preferences and ADMM settings are ``[market.p2p]``.
"""

from __future__ import annotations

MECHANISM_NAMES = ("uniform", "pay_as_bid", "mcafee", "cda", "sharing", "p2p")

SHARING = "sharing"
P2P = "p2p"
SHARING_KEYS = ("static", "proportional", "equal")
"""The allocation keys (:data:`market.sharing.SHARING_KEYS`, a test checks they agree)."""


def split_mechanism(name: str) -> tuple[str, str | None]:
    """``("sharing", "equal")`` from ``"sharing:equal"``; ``(name, None)`` otherwise.

    Raises
    ------
    ValueError
        An unknown mechanism, or an unknown key after ``sharing:``; the message lists
        the valid names.
    """
    base, sep, key = name.partition(":")
    if base not in MECHANISM_NAMES or (sep and base != SHARING):
        raise ValueError(f"{name!r} is not one of {', '.join(all_names())}")
    if not sep:
        return base, None
    if key not in SHARING_KEYS:
        raise ValueError(
            f"{name!r}: the sharing key {key!r} is not one of {', '.join(SHARING_KEYS)}"
        )
    return base, key


def all_names() -> tuple[str, ...]:
    """Every name ``market.mechanism`` and ``--mechanisms`` accept."""
    return (*MECHANISM_NAMES, *(f"{SHARING}:{k}" for k in SHARING_KEYS))
