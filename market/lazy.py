"""Lazy package namespaces (PEP 562), shared by the package ``__init__`` files.

A package lists what it exports as ``_EXPORTS = {name: module}`` and takes its module-level
``__getattr__`` and ``__dir__`` from :func:`lazy_namespace`: a name is imported from its
module on first use and cached in the package's namespace, so ``import market`` or
``p2pgrid --help`` loads only what is used. (In ``market/``, the lowest room, so that every
package may use it.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_namespace(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of ``package`` exporting ``exports``."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
