"""The Python API behind ``import scanner``: load an inventory, check it, get typed results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from msgspec import Struct

from .engine import ScanOptions, run_scan, run_scan_sync
from .inventory import load_inventories
from .models import Inventory, ScanSummary, TargetResult
from .observers import Collector, FanOut, Observer
from .verdict import Verdict, exit_code, result_verdict, scan_passed


class CheckResult(Struct, frozen=True):
    """A whole check: the summary and every target's result, in inventory order."""

    summary: ScanSummary
    targets: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        """Every target met its expectation and the scan was not cut short."""
        return scan_passed(self.summary)

    @property
    def exit_code(self) -> int:
        """What ``scanner check`` would exit with (SPEC §1)."""
        return exit_code(self.summary)

    @property
    def failed(self) -> list[TargetResult]:
        return [t for t in self.targets if result_verdict(t) is Verdict.FAILED]

    @property
    def inconclusive(self) -> list[TargetResult]:
        return [t for t in self.targets if result_verdict(t) is Verdict.INCONCLUSIVE]


def load_inventory(*paths: str | Path) -> Inventory:
    """Load and merge inventory files; :class:`scanner.InventoryError` lists every problem."""
    return load_inventories([str(path) for path in paths])


def _observer(collector: Collector, observer: Observer | None) -> Observer:
    return collector if observer is None else FanOut(collector, observer)


def check(
    inventory: Inventory,
    options: ScanOptions = ScanOptions(),
    *,
    observer: Observer | None = None,
) -> CheckResult:
    """Check every target of ``inventory`` (in an event loop of its own) and return the results."""
    collector = Collector()
    summary = run_scan_sync(inventory, _observer(collector, observer), options)
    return CheckResult(summary, tuple(collector.results))


async def check_async(
    inventory: Inventory,
    options: ScanOptions = ScanOptions(),
    *,
    observer: Observer | None = None,
) -> CheckResult:
    """:func:`check` inside a running asyncio event loop."""
    collector = Collector()
    summary = await run_scan(inventory, _observer(collector, observer), options)
    return CheckResult(summary, tuple(collector.results))


__all__: Sequence[str] = ("CheckResult", "check", "check_async", "load_inventory")
