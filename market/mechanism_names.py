"""The names of the market mechanisms, without their code: the scenario schema checks
``market.mechanism`` against them without importing numpy (``p2pgrid validate``'s
start-up). The registries :data:`market.mechanisms.ARRAY_MECHANISMS` and
:data:`market.clearing.MECHANISMS` hold these names in this order (a test checks it)."""

from __future__ import annotations

MECHANISM_NAMES = ("uniform", "pay_as_bid", "mcafee", "cda")
