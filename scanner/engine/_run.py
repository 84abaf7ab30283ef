"""One scan from start to finish: limits, the pipeline, signals, the deadline, the summary."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

import anyio

from .. import signals
from ..models import Inventory, ScanStart, ScanSummary
from ..observers import Observer
from ..probers import Probers
from ..scope import ScopeGuard
from ._admission import Admission
from ._limits import (
    FD_RESERVE,
    Gate,
    effective_concurrency,
    raise_fd_limit,
    size_descriptor_table,
)
from ._options import ScanOptions
from ._pump import ProbePump
from ._tally import Tally

if TYPE_CHECKING:
    from ..probers.trace import PathTracer

#: seconds between flushes of buffered event output (and checks for a signal)
FLUSH_INTERVAL = 0.1


async def run_scan(
    inventory: Inventory, observer: Observer, options: ScanOptions = ScanOptions()
) -> ScanSummary:
    """Scan every target of ``inventory``; every fact goes to ``observer`` as it happens.

    Returns the scan's summary. Results are the observer's to keep (see
    :class:`scanner.observers.Collector`): a streaming scan of a million targets holds none.
    """
    total = len(inventory.targets)
    fd_limit = raise_fd_limit()
    concurrency = effective_concurrency(options.concurrency, fd_limit)
    concurrency = min(concurrency, max(1, 2 * total))  # two addresses per target, mostly
    # before on_start, whose first flush starts the output's writer thread
    size_descriptor_table(concurrency + FD_RESERVE, fd_limit)
    observer.on_start(ScanStart(total, inventory.paths, concurrency))
    started = time.perf_counter()
    stop = _Stop(options)
    tally = Tally(observer)
    parts = _Parts()

    async def tick() -> None:
        """Flush buffered output, pause while it backs up, notice signals: ten times a second."""
        while True:
            await anyio.sleep(FLUSH_INTERVAL)
            observer.flush()
            if parts.pump is not None:
                parts.pump.pause(observer.backlogged())
            if stop.signal is not None:
                stop.scope.cancel()

    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(tick)
            with stop.scope:
                await _pipeline(
                    inventory, observer, options, tally, parts=parts, concurrency=concurrency
                )
            outer.cancel_scope.cancel()
    finally:
        stop.restore()
    interrupted_by = stop.reason()
    if interrupted_by is not None and parts.admission is not None:
        deadline = interrupted_by == "deadline"
        reason = "--max-duration reached" if deadline else f"{interrupted_by} received"
        # after --max-duration every target gets a result (SPEC: unfinished targets end
        # as inconclusive); after a signal the never-started ones are only counted,
        # because a person pressing Ctrl-C on a million-target scan wants it to stop now
        tally.cut_short(reason, parts.admission.unfinished(unstarted=deadline))
        tally.counts.not_started = parts.admission.not_started
    summary = tally.summary(time.perf_counter() - started, interrupted_by)
    observer.on_finish(summary)
    observer.flush()
    return summary


async def _pipeline(
    inventory: Inventory,
    observer: Observer,
    options: ScanOptions,
    tally: Tally,
    *,
    parts: _Parts,
    concurrency: int,
) -> None:
    """Admission → pump → tally until every target has its verdict (or the scan is cut)."""
    networks = (*(inventory.scope or ()), *options.allow)
    guard = ScopeGuard(networks) if inventory.scope is not None or options.allow else None
    gate = Gate(options.rate, options.per_address)
    try:
        async with anyio.create_task_group() as group:
            tally.traces = group
            if options.trace_failures:  # imported only then: start-up time counts
                tally.tracer = _tracer(options, concurrency, gate)
            admission = parts.admission = Admission(
                inventory.targets, inventory.resolver, tally, observer
            )
            probers = Probers(asyncio.get_running_loop())
            pump = parts.pump = ProbePump(
                admission, tally, probers, concurrency=concurrency, gate=gate, scope=guard
            )
            try:
                pump.fill()
                await pump.done
            finally:
                pump.close()
    finally:
        parts.pump = None
        if parts.admission is not None:
            with anyio.CancelScope(shield=True):
                await parts.admission.aclose()


class _Parts:
    """The running scan's parts the ticker and the ending need."""

    admission: Admission | None = None
    pump: ProbePump | None = None


class _Stop:
    """What ends a scan early: SIGINT/SIGTERM (when asked to handle them) or the deadline.

    Signals are only recorded (:mod:`scanner.signals`); the scan's ticker acts on them
    within 100 ms. loop.add_signal_handler callbacks (and call_soon_threadsafe from a
    handler) were seen to wait under uvloop until a busy scan went idle, i.e. the end.
    """

    def __init__(self, options: ScanOptions) -> None:
        deadline = options.max_duration
        self.scope = anyio.CancelScope(
            deadline=anyio.current_time() + deadline if deadline else math.inf
        )
        self._signals = options.handle_signals
        if self._signals:
            signals.install()
            if signals.received():  # before the scan began: it ends at once
                self.scope.cancel()

    @property
    def signal(self) -> str | None:
        return signals.received() if self._signals else None

    def restore(self) -> None:
        if self._signals:
            signals.uninstall()

    def reason(self) -> str | None:
        """ "SIGINT", "SIGTERM", "deadline", or None when the scan ran to its end."""
        if self.signal is not None:
            return self.signal
        return "deadline" if self.scope.cancelled_caught else None


def _tracer(options: ScanOptions, concurrency: int, gate: Gate) -> PathTracer:
    """The path tracer of ``--trace-failures``: traces outlive the probes (a dialer of
    their own each, closed when the trace ends), and count against ``--rate``."""
    from ..probers.trace import PathTracer, TraceConfig, tracer_slots

    config = options.trace or TraceConfig()
    return PathTracer(config, tracer_slots(concurrency, config), gate.pace)
