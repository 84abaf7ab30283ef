"""Which event loop runs a scan, and running one from synchronous code."""

from __future__ import annotations

import os

import anyio

from ..models import Inventory, ScanSummary
from ..observers import Observer
from ._options import ScanOptions
from ._run import run_scan


def backend_options() -> dict[str, object]:
    """uvloop when installed (the ``fast`` extra) and not disabled with SCANNER_UVLOOP=0.

    Measured with the fast extra: open 20,863/s and refused 33,348/s against 19,987/s
    and 30,860/s on asyncio's own loop (benchmarks/compare.py, 2026-11-29).
    """
    if os.environ.get("SCANNER_UVLOOP", "1") != "0":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return {}
        return {"use_uvloop": True}
    return {}


def run_scan_sync(
    inventory: Inventory, observer: Observer, options: ScanOptions = ScanOptions()
) -> ScanSummary:
    """:func:`run_scan` in an event loop of its own (uvloop when installed)."""
    return anyio.run(run_scan, inventory, observer, options, backend_options=backend_options())
