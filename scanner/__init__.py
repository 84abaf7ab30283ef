"""scanner: check a whole service inventory at once and say why each failing endpoint fails.

The Python API is this module's small face over private modules (httpcore's way)::

    import scanner

    inventory = scanner.load_inventory("inventory.yaml")
    result = scanner.check(inventory)
    for target in result.failed:
        print(target.target.name, target.category, target.hint)
    raise SystemExit(result.exit_code)

:func:`check` runs the same engine as ``scanner check`` and returns typed results
(:class:`CheckResult`, :class:`TargetResult`, :class:`Category` ...); pass an
:class:`Observer` to see every fact as it happens, and :class:`ScanOptions` for limits.
``await check_async(...)`` does the same inside a running event loop.

The stages, in the order data flows: :mod:`scanner.inventory` → :mod:`scanner.resolve`
→ :mod:`scanner.engine` (:mod:`scanner.probers`, :mod:`scanner.classify`,
:mod:`scanner.verdict`) → :mod:`scanner.observers` → :mod:`scanner.report` →
:mod:`scanner.cli`. Importing this package imports nothing heavy, so ``scanner --help``
starts fast: every name below is imported when first used.
"""

from __future__ import annotations

# not typing's: this module runs first of all, before the quiet signal handlers are in
# place, so it imports nothing at all (mypy knows the name)
TYPE_CHECKING = False

__version__ = "0.1.0"

#: public name -> the private module that defines it
_EXPORTS = {
    "CheckResult": "scanner._api",
    "check": "scanner._api",
    "check_async": "scanner._api",
    "load_inventory": "scanner._api",
    "ScanOptions": "scanner.engine",
    "InventoryError": "scanner.inventory",
    "Problem": "scanner.inventory",
    "Observer": "scanner.observers",
    "BaseObserver": "scanner.observers",
    "Collector": "scanner.observers",
    "FanOut": "scanner.observers",
    "Category": "scanner.models",
    "DnsResult": "scanner.models",
    "Inventory": "scanner.models",
    "ProbeResult": "scanner.models",
    "ScanStart": "scanner.models",
    "ScanSummary": "scanner.models",
    "Target": "scanner.models",
    "TargetResult": "scanner.models",
    "Verdict": "scanner.verdict",
}

__all__ = [
    "BaseObserver",
    "Category",
    "CheckResult",
    "Collector",
    "DnsResult",
    "FanOut",
    "Inventory",
    "InventoryError",
    "Observer",
    "ProbeResult",
    "Problem",
    "ScanOptions",
    "ScanStart",
    "ScanSummary",
    "Target",
    "TargetResult",
    "Verdict",
    "__version__",
    "check",
    "check_async",
    "load_inventory",
]

if TYPE_CHECKING:
    from ._api import CheckResult, check, check_async, load_inventory
    from .engine import ScanOptions
    from .inventory import InventoryError, Problem
    from .models import (
        Category,
        DnsResult,
        Inventory,
        ProbeResult,
        ScanStart,
        ScanSummary,
        Target,
        TargetResult,
    )
    from .observers import BaseObserver, Collector, FanOut, Observer
    from .verdict import Verdict


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scanner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
