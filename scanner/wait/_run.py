"""``scanner wait``: rounds of the same engine until every target is ready, or the deadline.

Each round is one :func:`scanner.engine.run_scan` over the targets due: names are
resolved afresh every round (the resolver, the hosts file and resolv.conf are read per
scan), so a record that appears or changes while waiting is seen, and a DNS failure is
waited on like any other failure. A target's result is taken as soon as the engine
decides it, and its next round is scheduled from then (:mod:`._schedule`); several rounds
may be under way at once, so a target that times out after 3 s does not hold back one
that answered in a millisecond.

The deadline bounds every round (its ``max_duration`` is the time left); a target whose
round the deadline (or a signal) cut short keeps the state its last complete round gave.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
from msgspec import Struct
from msgspec.structs import replace

from .. import signals
from ..engine import ScanOptions, effective_concurrency, raise_fd_limit, run_scan
from ..engine._loop import backend_options
from ..models import Category, Inventory, ScanStart, ScanSummary, TargetResult
from ..observers import BaseObserver
from ..verdict import Counts
from ._schedule import Backoff, TargetState, WaitBook, WaitStatus

#: seconds between looks at the clock, the signals and the output (as the engine's ticker)
TICK = 0.1


class WaitOptions(Struct, frozen=True, kw_only=True):
    """How ``scanner wait`` waits; ``scan`` is what each round's engine run gets."""

    #: seconds until the wait gives up; None: wait for ever
    deadline: float | None = 60.0
    #: seconds between a target's rounds at first, after a change, and while it is good
    interval: float = 1.0
    #: the backoff's cap: a target that keeps failing alike is probed this often at least
    max_interval: float = 5.0
    #: each delay times a random factor in [1 - jitter, 1 + jitter]
    jitter: float = 0.25
    #: good rounds in a row before a target counts as ready
    stable: int = 1
    #: rounds under way at once at most (each its own engine run)
    max_rounds: int = 4
    scan: ScanOptions = ScanOptions()

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            interval=self.interval,
            max_interval=max(self.interval, self.max_interval),
            jitter=self.jitter,
        )


class WaitOutcome(Struct, frozen=True):
    """How a wait ended: every target's last result and, for those not ready, their status."""

    ready: bool
    summary: ScanSummary
    #: every target's last result, in inventory order
    results: tuple[TargetResult, ...]
    #: the targets not ready at the end, in inventory order
    waiting: tuple[WaitStatus, ...]
    #: seconds since the epoch when the wait began (for ``since`` as a moment)
    began_at: float


class WaitObserver(Protocol):
    """Receives a wait as it goes: the start, each target's rounds, the end."""

    def on_wait_start(self, start: ScanStart, options: WaitOptions, began_at: float) -> None: ...
    def on_status(self, status: WaitStatus) -> None: ...
    def on_wait_finish(self, outcome: WaitOutcome) -> None: ...
    def tick(self) -> None: ...
    def backlogged(self) -> bool: ...


class BaseWaitObserver:
    """Ignores everything; subclass and override what you need."""

    def on_wait_start(self, start: ScanStart, options: WaitOptions, began_at: float) -> None:
        pass

    def on_status(self, status: WaitStatus) -> None:
        pass

    def on_wait_finish(self, outcome: WaitOutcome) -> None:
        pass

    def tick(self) -> None:
        pass

    def backlogged(self) -> bool:
        return False


class WaitFanOut:
    """Hands every call to several wait observers, in order."""

    def __init__(self, *observers: WaitObserver) -> None:
        self.observers = observers

    def on_wait_start(self, start: ScanStart, options: WaitOptions, began_at: float) -> None:
        for observer in self.observers:
            observer.on_wait_start(start, options, began_at)

    def on_status(self, status: WaitStatus) -> None:
        for observer in self.observers:
            observer.on_status(status)

    def on_wait_finish(self, outcome: WaitOutcome) -> None:
        for observer in self.observers:
            observer.on_wait_finish(outcome)

    def tick(self) -> None:
        for observer in self.observers:
            observer.tick()

    def backlogged(self) -> bool:
        return any(observer.backlogged() for observer in self.observers)


class _Clock:
    """When the wait began, its deadline, and whether it is over for a reason of its own."""

    def __init__(self, options: WaitOptions, now: Callable[[], float]) -> None:
        self.now = now
        self.start = now()
        self.began_at = time.time()
        self.deadline = self.start + options.deadline if options.deadline else math.inf
        self._signals = options.scan.handle_signals

    @property
    def signal(self) -> str | None:
        return signals.received() if self._signals else None

    def closing(self) -> bool:
        """The deadline passed or a signal came: what a round now cuts short proves nothing."""
        return self.now() >= self.deadline or self.signal is not None

    def left(self) -> float | None:
        return None if self.deadline == math.inf else max(0.001, self.deadline - self.now())


class _Wake:
    """Wakes the scheduler when a round has news (an anyio.Event cannot be reset)."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    def set(self) -> None:
        self.event.set()

    async def wait(self, timeout: float) -> None:
        with anyio.move_on_after(max(0.0, timeout)):
            await self.event.wait()
        if self.event.is_set():
            self.event = anyio.Event()


class _Round(BaseObserver):
    """One engine run's observer: each target's result goes to the book as it comes."""

    def __init__(
        self,
        states: Sequence[TargetState],
        book: WaitBook,
        observer: WaitObserver,
        clock: _Clock,
        wake: _Wake,
    ) -> None:
        self.states = states
        self.book = book
        self.observer = observer
        self.clock = clock
        self.wake = wake
        self.began = clock.now()
        self.seen: set[int] = set()

    def on_target(self, result: TargetResult) -> None:
        state = self.states[result.index]
        self.seen.add(result.index)
        now = self.clock.now()
        if result.category is Category.INCONCLUSIVE and self.clock.closing():
            self.book.put_back(state, now)  # cut short by the end of the wait: no news
            return
        result = replace(result, index=state.index)
        self.observer.on_status(self.book.record(state, result, began=self.began, now=now))
        self.wake.set()

    def backlogged(self) -> bool:
        return self.observer.backlogged()

    def finish(self) -> None:
        """The run ended: targets it gave no result for are due again."""
        now = self.clock.now()
        for number, state in enumerate(self.states):
            if number not in self.seen:
                self.book.put_back(state, now)
        self.wake.set()


async def wait_ready(
    inventory: Inventory,
    observer: WaitObserver,
    options: WaitOptions = WaitOptions(),
    *,
    draw: Callable[[], float] = random.random,
) -> WaitOutcome:
    """Probe the targets of ``inventory`` in rounds until every one is ready (or the
    deadline, or a signal when ``options.scan.handle_signals``); returns how it ended."""
    clock = _Clock(options, time.monotonic)
    book = WaitBook(
        inventory.targets,
        start=clock.start,
        stable=options.stable,
        backoff=options.backoff,
        draw=draw,
    )
    total = len(book.states)
    concurrency = effective_concurrency(options.scan.concurrency, raise_fd_limit())
    start = ScanStart(total, inventory.paths, min(concurrency, max(1, 2 * total)))
    observer.on_wait_start(start, options, clock.began_at)
    wake = _Wake()
    running = 0
    # installed for the whole wait, so a signal between two rounds is kept (the rounds'
    # own install/uninstall nest inside this one) and ends the rounds under way
    if options.scan.handle_signals:
        signals.install()

    async def one_round(states: list[TargetState]) -> None:
        nonlocal running
        recorder = _Round(states, book, observer, clock, wake)
        sub = replace(inventory, targets=tuple(s.target for s in states))
        try:
            await run_scan(sub, recorder, replace(options.scan, max_duration=clock.left()))
        finally:
            running -= 1
            recorder.finish()

    interrupted_by = None
    try:
        async with anyio.create_task_group() as group:
            while not book.done and not clock.closing():
                now = clock.now()
                if running < options.max_rounds:
                    due = book.due(now, window=min(TICK, options.interval / 4))
                    if due:
                        for state in due:
                            state.in_flight = True
                        running += 1
                        group.start_soon(one_round, due)
                observer.tick()
                await wake.wait(min(TICK, book.next_due() - now, clock.deadline - now))
            # rounds under way end by themselves: at the deadline (their max_duration) or
            # within 0.1 s of a signal (their own ticker)
        observer.tick()
    finally:
        if options.scan.handle_signals:
            interrupted_by = signals.received()
            signals.uninstall()
    return _outcome(book, clock, interrupted_by, observer)


def _outcome(
    book: WaitBook, clock: _Clock, signal: str | None, observer: WaitObserver
) -> WaitOutcome:
    now = clock.now()
    results, waiting = book.final(now)
    counts = Counts()
    counts.add_all((r.ok, r.category) for r in results)
    ended_by = signal or (None if book.done else "deadline")
    summary = counts.summary(now - clock.start, ended_by)
    outcome = WaitOutcome(
        book.done and signal is None, summary, tuple(results), tuple(waiting), clock.began_at
    )
    observer.on_wait_finish(outcome)
    return outcome


def wait_ready_sync(
    inventory: Inventory, observer: WaitObserver, options: WaitOptions = WaitOptions()
) -> WaitOutcome:
    """:func:`wait_ready` in an event loop of its own (uvloop when installed)."""
    return anyio.run(wait_ready, inventory, observer, options, backend_options=backend_options())
