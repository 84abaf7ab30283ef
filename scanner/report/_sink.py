"""Output that never stalls a scan: lines batched, written by a thread, bounded, and dropped
cleanly when the reader leaves.

A scan must never wait on its reader: blocked in ``write()`` on a full pipe, the event
loop noticed finished handshakes late, and 240 of 1,500 targets with 38 ms of real latency
ended ``slow`` (up to 479 ms) when stdout was read at 30 KB/s; with a reader that stopped
reading, SIGTERM and SIGINT were ignored for good. So the loop only hands whole batches to a
writer thread. When more than :data:`BACKLOG_BYTES` wait for the reader, the sink says so
(:attr:`LineSink.backlogged`) and the scan starts no new probe until it drains: the probing
waits, never the clocks.

A reader that left (EPIPE), a full disk (ENOSPC) or a closed descriptor end the stream
only: the scan goes on, and its verdict, exit code and reports do not depend on it.
"""

from __future__ import annotations

import contextlib
import math
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO

#: bytes handed to the writer that it has not written yet, above which the scan pauses
BACKLOG_BYTES = 16 << 20
#: seconds an interrupted scan still waits for its reader before dropping the rest
GRACE = 0.5
#: seconds between looks at whether to stop waiting for a slow reader (a signal)
_WAIT = 0.05


def write_all(stream: IO[bytes], data: bytes | bytearray) -> None:
    """Write every byte of ``data`` to ``stream``, however many calls it takes.

    A raw FileIO's ``write`` is one system call and may write only part: a signal that
    arrives while the pipe is full cuts it short, and a non-blocking pipe takes what
    fits. Without this loop the rest of the batch was lost and a line torn in two.
    """
    view = memoryview(data)
    while view:
        try:
            written = stream.write(view)
        except BlockingIOError as exc:  # a buffered writer on a non-blocking pipe
            written = exc.characters_written
        if not written:  # a non-blocking pipe is full: wait until the reader drains it
            select.select([], [stream.fileno()], [])
            continue
        view = view[written:]


def raw_stdout() -> IO[bytes]:
    """File descriptor 1 as an unbuffered file of its own.

    Not ``sys.stdout.buffer``: a writer thread stuck in a write to a reader that stopped
    would hold that buffer's lock, and the interpreter's own flush at exit would then
    wait for it forever.
    """
    return open(1, "wb", buffering=0, closefd=False)


class LineSink:
    """Whole lines in, batches of about ``batch_bytes`` out through a writer thread."""

    def __init__(self, stream: IO[bytes], batch_bytes: int = 1 << 16, name: str = "stdout") -> None:
        self._stream = stream
        self._name = name
        #: whole lines not handed to the writer yet, for a writer that encodes its lines in
        #: place (the JSON events: no bytes object per line, no join); :meth:`wrote` after
        #: each line. A plain attribute, not a property: it is asked for twice a target.
        self.buffer = bytearray()
        self._batch_bytes = batch_bytes
        self._queue: deque[bytearray] = deque()
        self._queued = 0  # bytes handed to the writer, not written yet
        self._ready = threading.Condition()
        self._writer: threading.Thread | None = None
        self.gone = False  # the reader left, or the stream failed: the rest is dropped

    def write(self, line: bytes) -> None:
        self.buffer += line
        if len(self.buffer) >= self._batch_bytes:
            self.flush()

    def wrote(self) -> None:
        """A whole line was appended to :attr:`buffer`."""
        if len(self.buffer) >= self._batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Hand what is buffered to the writer; never waits for the reader."""
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, bytearray()
        if self.gone:
            return
        with self._ready:
            self._queue.append(batch)
            self._queued += len(batch)
            self._ready.notify()
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write, name=f"scanner-{self._name}", daemon=True
            )
            self._writer.start()

    @property
    def backlogged(self) -> bool:
        """More than :data:`BACKLOG_BYTES` wait for the reader: start nothing new."""
        return self._queued > BACKLOG_BYTES

    def drain(self, interrupted: Callable[[], bool] = lambda: False) -> None:
        """Wait until the reader has everything or the stream failed; once ``interrupted()``,
        for :data:`GRACE` seconds more at most, then drop the rest.

        Waits in short steps so a signal handler runs meanwhile: an interrupted scan
        still delivers its last events to a reader that reads, and does not wait for
        good on one that stopped (SIGTERM must end it within a second).
        """
        self.flush()
        give_up_at = math.inf
        with self._ready:
            while self._queued and not self.gone:
                now = time.monotonic()
                if give_up_at == math.inf and interrupted():
                    give_up_at = now + GRACE
                if now >= give_up_at:
                    self._drop()
                    return
                self._ready.wait(_WAIT)

    def _drop(self) -> None:
        self._queue.clear()
        self._queued = 0
        self.gone = True
        self._ready.notify_all()

    def _write(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = self._queue.popleft()
            try:
                write_all(self._stream, batch)
                self._stream.flush()
            except OSError as exc:
                with self._ready:
                    self._drop()
                if not isinstance(exc, BrokenPipeError):  # a reader that left is no news
                    _warn(f"{self._name}: {exc.strerror or exc}; the rest of it is dropped")
                return
            with self._ready:
                self._queued = max(0, self._queued - len(batch))  # 0 once dropped
                self._ready.notify_all()


def _warn(message: str) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr is gone too
        print(f"scanner: {message}", file=sys.stderr, flush=True)


class SinkText:
    """A text stream (for the console) whose bytes go through a :class:`LineSink`."""

    def __init__(self, sink: LineSink, like: object = None) -> None:
        self.sink = sink
        self._like = like  # what isatty() asks
        self.encoding = getattr(like, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        self.sink.write(text.encode(self.encoding, "replace"))
        return len(text)

    def flush(self) -> None:
        self.sink.flush()

    def isatty(self) -> bool:
        try:
            return bool(getattr(self._like, "isatty", lambda: False)())
        except (OSError, ValueError):
            return False
