"""SIGINT and SIGTERM, recorded and never raised: the scan, its reports and the exit code decide.

Python's default SIGINT handler raises KeyboardInterrupt wherever the program happens to
be: in an import (a traceback, exit -2, no ``scan.finished``), in the middle of writing a
report (a torn file). Instead, from the first line of the command line on, both signals
only set :func:`received`; the scan notices within 100 ms and stops, the reports are
written, and the process exits 130 or 143 (SPEC §1).

Only the standard library's ``signal`` module is imported here: this runs before anything
else, so the window in which a signal could still raise is as short as it can be.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Recorder:
    """The process's one record of SIGINT/SIGTERM (signal handlers are process-wide)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.depth = 0
        self.previous: dict[int, object] = {}
        #: called with each signal as it arrives (the workers' parent forwards it)
        self.listeners: list[Callable[[int], None]] = []

    def record(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
        for listener in list(self.listeners):
            listener(signum)


_recorder = _Recorder()


def install() -> None:
    """Record SIGINT/SIGTERM from now on (nested: each install needs its uninstall)."""
    if _recorder.depth == 0:
        for sig in _SIGNALS:
            _recorder.previous[sig] = signal.signal(sig, _recorder.record)
    _recorder.depth += 1


def uninstall() -> None:
    """Undo one :func:`install`; the last one puts the previous handlers back and forgets
    what was received (a program that scans again starts afresh)."""
    _recorder.depth -= 1
    if _recorder.depth == 0:
        for sig, handler in _recorder.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        _recorder.previous.clear()
        _recorder.received = None


def received() -> str | None:
    """``"SIGINT"`` or ``"SIGTERM"`` once one arrived while installed; else None."""
    return _recorder.received


def listen(listener: Callable[[int], None]) -> Callable[[], None]:
    """Call ``listener(signum)`` for each signal that arrives; returns how to stop."""
    _recorder.listeners.append(listener)
    return lambda: _recorder.listeners.remove(listener)


def reset_in_child() -> None:
    """A forked worker keeps what its parent received (an interrupted scan's workers stop
    at once) but none of its parent's listeners."""
    _recorder.listeners.clear()
