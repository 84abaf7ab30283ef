"""The console script and ``python -m scanner``: quiet signals first, then the command line.

The first thing either does is :func:`scanner.signals.install`: from then on a Ctrl-C in
the middle of an import is recorded, not a KeyboardInterrupt traceback (SPEC §1: 130).
Then the standard streams are made safe to lose: a closed descriptor 0, 1 or 2 is
reopened on /dev/null (or the first socket would take its number), and a reader that
leaves, a full disk or a closed stream ends that stream only, never the scan.
"""

from __future__ import annotations

import os
import sys


class _Guarded:
    """``sys.stdout`` / ``sys.stderr`` that stop writing, quietly, once writing fails."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                return int(self._stream.write(text))  # type: ignore[attr-defined]
            except (OSError, ValueError):  # EPIPE, ENOSPC, EBADF, or closed
                self._stream = None
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()  # type: ignore[attr-defined]
            except (OSError, ValueError):
                self._stream = None

    def isatty(self) -> bool:
        try:
            return self._stream is not None and bool(self._stream.isatty())  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> object:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def _standard_descriptors() -> None:
    """Reopen closed descriptors 0-2 on /dev/null: they must never be handed to a socket."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # a lower one was closed too and is taken now: move it
                os.dup2(opened, fd)
                os.close(opened)


def run() -> None:
    from . import signals

    signals.install()
    _standard_descriptors()
    sys.stdout = _Guarded(sys.stdout)
    sys.stderr = _Guarded(sys.stderr)
    from .cli import run as run_cli

    run_cli()
