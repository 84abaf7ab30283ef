"""Probers: each checks one address of one target, and all have the same shape.

blackbox_exporter's ``ProbeFn`` idea: the engine (the handler) owns deadlines, retries,
limits and timing; a prober does its one job and reports what it saw. Here a prober is
callback-driven, like the event loop under it: :meth:`Prober.start` begins the check of
``address`` and calls ``on_done(outcome, local)`` exactly once, unless the returned
function abandons it first. No task or future per probe: at tens of thousands of
probes a second those were most of the time.

:class:`TcpProber` is the TCP handshake (:mod:`.tcp`); the path trace dials through the
same :class:`~.tcp.Dialer` with a socket-option hook (:mod:`.trace`). A new kind of check
is a new prober chosen in :meth:`Probers.for_target`; the pump does not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ..models import AddressFamily, Target
from .tcp import Dialer, OnDone

Abandon = Callable[[], object]


class Prober(Protocol):
    """Checks one address of one target; ``on_done`` gets the raw outcome once."""

    def start(
        self, target: Target, address: str, family: AddressFamily, on_done: OnDone
    ) -> Abandon: ...


class TcpProber:
    """A TCP handshake under the target's timeout: ``open`` when it completes."""

    __slots__ = ("_connect",)

    def __init__(self, dialer: Dialer) -> None:
        self._connect = dialer.connect

    def start(
        self, target: Target, address: str, family: AddressFamily, on_done: OnDone
    ) -> Abandon:
        return self._connect(address, target.port, family, target.timeout, on_done)


class Probers:
    """The probers of one scan, sharing one dialer; picks the one each target needs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.dialer = Dialer(loop)
        self.tcp = TcpProber(self.dialer)

    def for_target(self, target: Target) -> Prober:
        return self.tcp

    def overdue(self) -> bool:
        """Handshakes have passed their deadline and wait for the timer to end them."""
        return self.dialer.overdue()

    def close(self) -> None:
        """Abandon every check still under way."""
        self.dialer.close()


__all__ = ["Abandon", "Dialer", "OnDone", "Prober", "Probers", "TcpProber"]
