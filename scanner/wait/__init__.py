"""``scanner wait``: rounds of checks until every target meets its expectation, or a deadline.

The pieces: :mod:`._schedule` (pure: each target's state, backoff with jitter, when it
is ready) and :mod:`._run` (the rounds, each one run of :func:`scanner.engine.run_scan`).
What a wait shows goes to a :class:`WaitObserver`: the JSON events
(:class:`scanner.report.events.WaitEventWriter`) and the console
(:class:`scanner.report.live.WaitConsole`) are two.
"""

from ._run import (
    TICK,
    BaseWaitObserver,
    WaitFanOut,
    WaitObserver,
    WaitOptions,
    WaitOutcome,
    wait_ready,
    wait_ready_sync,
)
from ._schedule import Backoff, TargetState, WaitBook, WaitStatus, summary_line

__all__ = [
    "TICK",
    "Backoff",
    "BaseWaitObserver",
    "TargetState",
    "WaitBook",
    "WaitFanOut",
    "WaitObserver",
    "WaitOptions",
    "WaitOutcome",
    "WaitStatus",
    "summary_line",
    "wait_ready",
    "wait_ready_sync",
]
