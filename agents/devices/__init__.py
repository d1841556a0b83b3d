"""The device registry: the kinds every community runs, in this order.

A new device kind is one module (a :class:`agents.devices.base.Device` subclass) and one
:func:`register` call. Registration assigns the kind its order-kind code (1, 2, … in
order; 0 is ``market.orders.OrderKind.NET``), and :func:`kind_names` names the codes in
the results files and on the wire.
"""

from __future__ import annotations

from agents.devices.base import Device, DeviceOrder, Step
from agents.devices.battery import Battery
from agents.devices.ev import Ev
from agents.devices.heat_pump import HeatPump

DEVICE_KINDS: list[type[Device]] = []


def register(kind: type[Device]) -> type[Device]:
    """Add a device kind (after those registered so far); returns it (a decorator)."""
    if any(k.name == kind.name for k in DEVICE_KINDS) or kind.name == "net":
        raise ValueError(f"device kind {kind.name!r} is already registered")
    kind.kind = len(DEVICE_KINDS) + 1
    DEVICE_KINDS.append(kind)
    return kind


def unregister(kind: type[Device]) -> None:
    """Remove the last registered kind (codes of the others stay as they are)."""
    if not DEVICE_KINDS or DEVICE_KINDS[-1] is not kind:
        raise ValueError(f"only the last registered kind can be removed, not {kind.name!r}")
    DEVICE_KINDS.pop()
    kind.kind = 0


def kind_names() -> tuple[str, ...]:
    """Name of every order kind, indexed by its code: ``net``, then the devices."""
    return ("net", *(k.name for k in DEVICE_KINDS))


register(Battery)
register(Ev)
register(HeatPump)

__all__ = [
    "DEVICE_KINDS",
    "Battery",
    "Device",
    "DeviceOrder",
    "Ev",
    "HeatPump",
    "Step",
    "kind_names",
    "register",
    "unregister",
]
