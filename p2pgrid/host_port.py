"""``HOST:PORT`` options of the live commands (``--dashboard``, ``--listen``)."""

from __future__ import annotations

import ipaddress
import re

DASHBOARD_DEFAULT = "127.0.0.1:8050"


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``PORT`` → (host, port), defaults filled."""
    default_host, default_port = DASHBOARD_DEFAULT.split(":")
    value = value.strip()
    if value.isdigit():
        host, port_text = default_host, value
    elif value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else default_port
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, default_port
    if not host:
        host = default_host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number in 0…65535")
    return host, int(port_text)


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)(:\d{1,5})?$|^\d{1,5}$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def optional_dashboard_value(argv: list[str]) -> list[str]:
    """``--dashboard`` takes an optional ``HOST:PORT``: give it the default when the next
    word is not an address (another option, the scenario file, or nothing)."""
    out = list(argv)
    i = 0
    while i < len(out):
        if out[i] == "--dashboard":
            nxt = out[i + 1] if i + 1 < len(out) else None
            is_address = nxt is not None and (
                nxt.isdigit()
                or nxt == "localhost"
                or _is_ip(nxt)
                or (":" in nxt and not nxt.startswith("-") and bool(_HOST_PORT.match(nxt)))
            )
            if not is_address:
                out.insert(i + 1, DASHBOARD_DEFAULT)
            i += 1
        i += 1
    return out
