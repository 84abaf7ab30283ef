"""The roll-up: per-address results in, one verdict per target out, counted and reported.

The :class:`Tally` owns every target between its admission and its verdict (its
:class:`Pending` record), decides the verdict (:func:`scanner.verdict.target_verdict`),
sends it to the observer, traces it first when ``--trace-failures`` asks, and counts it.
Nothing else writes this state: the admission hands it targets, the pump hands it results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from anyio.abc import TaskGroup

from ..models import Category, DnsResult, ProbeResult, ScanSummary, Target, TargetResult
from ..observers import Observer
from ..verdict import Counts, target_verdict, unchecked

if TYPE_CHECKING:
    from ..probers.trace import PathTracer


@dataclass(slots=True)
class Pending:
    """A target whose addresses are being probed (only these are held in memory)."""

    index: int
    target: Target
    addresses: tuple[str, ...]
    probes: list[ProbeResult | None]
    dns: DnsResult | None = None
    done: int = 0


@dataclass
class Tally:
    observer: Observer
    tracer: PathTracer | None = None  # --trace-failures
    traces: TaskGroup | None = None  # where traces run (the scan's task group)
    counts: Counts = field(default_factory=Counts)
    pending: dict[int, Pending] = field(default_factory=dict)
    tracing: dict[int, TargetResult] = field(default_factory=dict)

    def admit(
        self, index: int, target: Target, addresses: tuple[str, ...], dns: DnsResult | None
    ) -> Pending:
        """A target whose ``addresses`` are about to be probed."""
        pending = Pending(index, target, addresses, [None] * len(addresses), dns)
        self.pending[index] = pending
        return pending

    def dns_failed(self, index: int, target: Target, dns: DnsResult) -> None:
        """A target whose name did not resolve: its verdict needs no probe."""
        self._decide(Pending(index, target, (), [], dns))

    def add(self, pending: Pending, slot: int, result: ProbeResult) -> None:
        """One address's final result; the target's verdict once all are in."""
        self.observer.on_probe(result)
        pending.probes[slot] = result
        pending.done += 1
        if pending.done == len(pending.addresses):
            self._decide(pending)

    def _decide(self, pending: Pending) -> None:
        self.pending.pop(pending.index, None)
        probes = [p for p in pending.probes if p is not None]
        result = target_verdict(
            pending.target, pending.dns, pending.addresses, probes, pending.index
        )
        if self.tracer is not None and self.traces is not None and self.tracer.wants(result):
            self.tracing[pending.index] = result  # recorded once traced (or untraced if cut)
            self.traces.start_soon(self._trace, result)
            return
        self._record(result)

    async def _trace(self, result: TargetResult) -> None:
        assert self.tracer is not None
        traced = await self.tracer.trace(result, self.observer.on_hop)
        if self.tracing.pop(result.index, None) is not None:
            self._record(traced)

    def _record(self, result: TargetResult) -> None:
        self.counts.add(result.ok, result.category)
        self.observer.on_target(result)

    def cut_short(self, reason: str, waiting: Iterable[tuple[int, Target]]) -> None:
        """Targets the scan stopped before their verdict end as inconclusive.

        Those being traced keep the verdict they had; those being probed (or ``waiting``
        for DNS, or for a slot) get a ``target.result`` saying the scan was stopped.
        """
        hint = f"not finished: the scan was stopped ({reason})"
        for _index, result in sorted(self.tracing.items()):  # probed, trace cut short
            self._record(result)
        self.tracing.clear()
        for _index, pending in sorted(self.pending.items()):
            self._record(
                TargetResult(
                    pending.target,
                    False,
                    Category.INCONCLUSIVE,
                    pending.addresses,
                    hint,
                    tuple(p for p in pending.probes if p is not None),
                    pending.dns,
                    index=pending.index,
                    unfinished=True,
                )
            )
        self.pending.clear()
        for index, target in waiting:
            self._record(unchecked(target, hint, index))

    def summary(self, duration_s: float, interrupted_by: str | None) -> ScanSummary:
        return self.counts.summary(duration_s, interrupted_by)
