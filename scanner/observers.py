"""The one interface through which a scan tells the world what happens, as it happens.

The engine calls an :class:`Observer` for every fact (pip-audit's ``_state.py`` idea: the
library reports, front ends decide how to show it). The JSON-lines stream, the console,
the report builder, the workers' channel to their parent, the demo's check and the Python
API's collector are all observers; :class:`FanOut` hands every event to several.

Calls come from the event loop's thread, in this order: ``on_start`` once, then
``on_dns`` / ``on_probe`` / ``on_target`` / ``on_hop`` as results are decided (a
target's ``on_target`` after its probes), ``flush`` and ``backlogged`` about ten times a
second, and ``on_finish`` once. An observer must not block: the scan's clocks stop while
it runs. One whose output backs up says so in ``backlogged``, and the scan starts no new
probe until it catches up.
"""

from __future__ import annotations

from typing import Protocol

from .models import (
    DnsResult,
    Hop,
    PathTrace,
    ProbeResult,
    ScanStart,
    ScanSummary,
    Target,
    TargetResult,
)


class Observer(Protocol):
    """Receives the facts of a scan as they happen."""

    def on_start(self, start: ScanStart) -> None: ...
    def on_dns(self, result: DnsResult) -> None: ...
    def on_probe(self, result: ProbeResult) -> None: ...
    def on_target(self, result: TargetResult) -> None: ...
    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None: ...
    def on_finish(self, summary: ScanSummary) -> None: ...
    def flush(self) -> None: ...
    def backlogged(self) -> bool: ...


class BaseObserver:
    """An observer that ignores everything; subclass and override what you need."""

    def on_start(self, start: ScanStart) -> None:
        pass

    def on_dns(self, result: DnsResult) -> None:
        pass

    def on_probe(self, result: ProbeResult) -> None:
        pass

    def on_target(self, result: TargetResult) -> None:
        pass

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        pass

    def on_finish(self, summary: ScanSummary) -> None:
        pass

    def flush(self) -> None:
        pass

    def backlogged(self) -> bool:
        """True while output waits for a slow reader: the scan starts no new probe."""
        return False


class FanOut:
    """Hands every event to several observers, in order (e.g. JSON stream + report)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def on_start(self, start: ScanStart) -> None:
        for observer in self.observers:
            observer.on_start(start)

    def on_dns(self, result: DnsResult) -> None:
        for observer in self.observers:
            observer.on_dns(result)

    def on_probe(self, result: ProbeResult) -> None:
        for observer in self.observers:
            observer.on_probe(result)

    def on_target(self, result: TargetResult) -> None:
        for observer in self.observers:
            observer.on_target(result)

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        for observer in self.observers:
            observer.on_hop(target, path, hop)

    def on_finish(self, summary: ScanSummary) -> None:
        for observer in self.observers:
            observer.on_finish(summary)

    def flush(self) -> None:
        for observer in self.observers:
            observer.flush()

    def backlogged(self) -> bool:
        return any(observer.backlogged() for observer in self.observers)


class Collector(BaseObserver):
    """Keeps every fact of a scan (structlog.testing's ``capture_logs`` idea).

    The Python API returns its :attr:`results`; tests and the demo read the rest.
    Results arrive as they are decided; :attr:`results` puts them in inventory order.
    """

    def __init__(self) -> None:
        self.start: ScanStart | None = None
        self.dns: list[DnsResult] = []
        self.probes: list[ProbeResult] = []
        self.targets: list[TargetResult] = []
        self.hops: list[tuple[Target, PathTrace, Hop]] = []
        self.summary: ScanSummary | None = None

    def on_start(self, start: ScanStart) -> None:
        self.start = start

    def on_dns(self, result: DnsResult) -> None:
        self.dns.append(result)

    def on_probe(self, result: ProbeResult) -> None:
        self.probes.append(result)

    def on_target(self, result: TargetResult) -> None:
        self.targets.append(result)

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        self.hops.append((target, path, hop))

    def on_finish(self, summary: ScanSummary) -> None:
        self.summary = summary

    @property
    def results(self) -> list[TargetResult]:
        """Every target's result in inventory order."""
        return sorted(self.targets, key=lambda result: result.index)

    def by_name(self) -> dict[str, TargetResult]:
        return {result.target.name: result for result in self.targets}
