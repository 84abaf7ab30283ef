"""One scan from start to finish: limits, the pipeline, signals, the deadline, the summary."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from typing import TYPE_CHECKING

import anyio

from ..models import Inventory, ScanStart, ScanSummary
from ..observers import Observer
from ..probers import Probers
from ..scope import ScopeGuard
from ._admission import Admission
from ._limits import Gate, effective_concurrency, raise_fd_limit
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
    fd_limit = raise_fd_limit()
    total = len(inventory.targets)
    concurrency = effective_concurrency(options.concurrency, fd_limit)
    concurrency = min(concurrency, max(1, 2 * total))  # two addresses per target, mostly
    networks = (*(inventory.scope or ()), *options.allow)
    guard = ScopeGuard(networks) if inventory.scope is not None or options.allow else None
    gate = Gate(options.rate, options.per_address)
    observer.on_start(ScanStart(total, inventory.paths, concurrency))
    started = time.perf_counter()
    interrupted_by: str | None = None
    scope = anyio.CancelScope(
        deadline=anyio.current_time() + options.max_duration if options.max_duration else math.inf
    )

    def on_signal(signum: int, _frame: object) -> None:
        # Only record it. loop.add_signal_handler callbacks (and call_soon_threadsafe
        # from here) were seen to wait under uvloop until a busy scan went idle, i.e.
        # the end; the ticker below runs on a timer and acts within 100 ms.
        nonlocal interrupted_by
        if interrupted_by is None:
            interrupted_by = signal.Signals(signum).name

    async def tick() -> None:
        """Flush buffered output and notice signals, ten times a second."""
        while True:
            await anyio.sleep(FLUSH_INTERVAL)
            observer.flush()
            if interrupted_by is not None:
                scope.cancel()

    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        if options.handle_signals
        else {}
    )
    tally = Tally(observer)
    admission: Admission | None = None
    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(tick)
            with scope:
                try:
                    async with anyio.create_task_group() as group:
                        tally.traces = group
                        probers = Probers(asyncio.get_running_loop())
                        if options.trace_failures:  # imported only then: start-up time counts
                            tally.tracer = _tracer(options, concurrency, gate)
                        admission = Admission(
                            inventory.targets, inventory.resolver, tally, observer, group
                        )
                        pump = ProbePump(
                            admission,
                            tally,
                            probers,
                            concurrency=concurrency,
                            gate=gate,
                            scope=guard,
                        )
                        try:
                            pump.fill()
                            await pump.done
                        finally:
                            pump.close()
                finally:
                    if admission is not None:
                        with anyio.CancelScope(shield=True):
                            await admission.aclose()
            outer.cancel_scope.cancel()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if scope.cancelled_caught and interrupted_by is None:
        interrupted_by = "deadline"
    if interrupted_by is not None:
        deadline = interrupted_by == "deadline"
        reason = "--max-duration reached" if deadline else f"{interrupted_by} received"
        if admission is not None:
            # after --max-duration every target gets a result (SPEC: unfinished targets end
            # as inconclusive); after a signal the never-started ones are only counted,
            # because a person pressing Ctrl-C on a million-target scan wants it to stop now
            tally.cut_short(reason, admission.unfinished(unstarted=deadline))
            tally.counts.not_started = admission.not_started
    summary = tally.summary(time.perf_counter() - started, interrupted_by)
    observer.on_finish(summary)
    observer.flush()
    return summary


def _tracer(options: ScanOptions, concurrency: int, gate: Gate) -> PathTracer:
    """The path tracer of ``--trace-failures``: traces outlive the probes (a dialer of
    their own each, closed when the trace ends), and count against ``--rate``."""
    from ..probers.trace import PathTracer, TraceConfig, tracer_slots

    config = options.trace or TraceConfig()
    return PathTracer(config, tracer_slots(concurrency, config), gate.pace)
