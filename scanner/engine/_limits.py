"""What bounds a scan besides its targets: descriptors, ``--rate`` and ``--per-host``."""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import resource
import time
from collections import deque
from collections.abc import Callable

from ..models import DEFAULT_CONCURRENCY

#: descriptors kept free for stdout, DNS sockets, report files and the event loop
FD_RESERVE = 64


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def effective_concurrency(requested: int | None, fd_limit: int) -> int:
    """Probes in flight: as asked (or the default), never more than free descriptors.

    A quarter of a small limit (at most :data:`FD_RESERVE`) stays free for stdout, DNS
    sockets and report files, so ``ulimit -n 64`` still scans 48 at a time.
    """
    wanted = requested if requested and requested > 0 else DEFAULT_CONCURRENCY
    reserve = min(FD_RESERVE, max(8, fd_limit // 4))
    return max(1, min(wanted, fd_limit - reserve))


def size_descriptor_table(count: int, fd_limit: int) -> None:
    """Have the kernel make room for ``count`` descriptors now, in one step.

    The kernel grows a process's descriptor table by doubling as descriptors open, and
    while another thread shares the table (the writer thread of the event stream) each
    growth waits for an RCU grace period, about 10 ms here: opening 1,024 sockets with a
    second thread alive took 36-44 ms, against 4.1-4.4 ms with the table sized first, and
    the first 1,024 handshakes of a scan whose SYNs are dropped took 59-62 ms to send,
    26-28 ms sized first. Sized before that thread starts, the growth costs 0.05 ms.
    Descriptors that are not there yet cannot be taken: nothing open is touched.
    """
    highest = min(count, fd_limit) - 1
    if highest < 64:  # the table every process starts with holds 64 already
        return
    try:
        probe = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        # F_DUPFD takes the lowest free descriptor at or above ``highest``: never one in use
        os.close(fcntl.fcntl(probe, fcntl.F_DUPFD_CLOEXEC, highest))
    except OSError:  # no descriptor that high is free: the table grows as it used to
        pass
    finally:
        os.close(probe)


class RateLimiter:
    """Spaces handshake attempts: at most ``rate`` a second, and never two closer together
    than ``1 / rate``, however late the event loop runs.

    One timer serves the waiting starts in order, each ``1 / rate`` after the one before
    it began. Slots reserved ahead on a shared timeline (as this did before) came due
    together when the loop was held up: after a 140 ms stall in the test suite, seven
    handshakes of a ``--rate 50`` scan went out at once.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._last = -math.inf  # when the last start ran
        self._waiting: deque[Callable[[], None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def admit(self, start: Callable[[], None]) -> None:
        """Run ``start`` now, or when its turn comes."""
        self._waiting.append(start)
        if self._timer is None:
            self._next()

    def _next(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            self._timer = loop.call_later(wait, self._next)
            return
        self._last = time.monotonic()
        start = self._waiting.popleft()
        if self._waiting:  # before start(), which may admit another
            self._timer = loop.call_later(self.interval, self._next)
        start()

    async def wait(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def turn() -> None:
            if not future.done():  # a cancelled waiter lets its turn pass
                future.set_result(None)

        self.admit(turn)
        await future


class Gate:
    """Everything a handshake must pass before it is sent: the rate and the per-address cap.

    Callback-driven, like the probes it admits: :meth:`enter` runs ``start`` when the
    handshake may begin (at once, after its rate slot, or when another handshake to the
    same address ends) and every entered handshake calls :meth:`leave` when it is over.
    """

    def __init__(self, rate: float | None, per_address: int | None) -> None:
        self._rate = RateLimiter(rate) if rate else None
        self._per_address = per_address
        self._busy: dict[str, int] = {}  # handshakes in flight (or due) per address
        self._parked: dict[str, deque[Callable[[], None]]] = {}
        #: no limit at all: the pump skips the gate (asked twice a handshake, so computed once)
        self.open = self._rate is None and not self._per_address

    def enter(self, address: str, start: Callable[[], None]) -> None:
        if self._per_address:
            busy = self._busy.get(address, 0)
            if busy >= self._per_address:
                self._parked.setdefault(address, deque()).append(start)
                return
            self._busy[address] = busy + 1
        self._paced(start)

    def leave(self, address: str) -> None:
        if not self._per_address:
            return
        parked = self._parked.get(address)
        if parked:  # the slot passes straight to the next in line
            start = parked.popleft()
            if not parked:
                del self._parked[address]
            self._paced(start)
            return
        busy = self._busy[address] - 1
        if busy:
            self._busy[address] = busy
        else:
            del self._busy[address]

    def withdraw(self, address: str, start: Callable[[], None]) -> None:
        """Forget ``start`` whose caller gave up before its handshake began."""
        parked = self._parked.get(address)
        if parked is not None and start in parked:
            parked.remove(start)
            if not parked:
                del self._parked[address]
            return
        self.leave(address)  # it held a slot, waiting only for its rate slot

    def _paced(self, start: Callable[[], None]) -> None:
        if self._rate is not None:
            self._rate.admit(start)
        else:
            start()

    async def pace(self) -> None:
        """Only the rate: path-trace handshakes count against ``--rate`` too."""
        if self._rate is not None:
            await self._rate.wait()
