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
from typing import Protocol

from ..models import AddressFamily, Target
from .hold import HoldProber
from .local import LocalQueues
from .tcp import Abandon, Dialer, OnDone
from .tls_prober import TlsProber


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
    """The probers of one scan, sharing one dialer; picks the one each target needs.

    A timeout to this host's own listener is checked against its accept queue (a full
    one is ``not_accepting``, :mod:`.local`); ``hold_ms`` targets hold the socket after
    the handshake (:mod:`.hold`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.dialer = Dialer(loop, queue_full=LocalQueues().full)
        self.tcp = TcpProber(self.dialer)
        self._loop = loop
        self._hold: Prober | None = None
        self._tls: Prober | None = None

    def for_target(self, target: Target) -> Prober:
        if target.tls is not None and target.expect == "open":
            if self._tls is None:
                self._tls = TlsProber(self.dialer, self._loop)
            return self._tls
        if target.hold_ms:
            if self._hold is None:
                self._hold = HoldProber(self.dialer, self._loop)
            return self._hold
        return self.tcp

    def overdue(self) -> bool:
        """Handshakes have passed their deadline and wait for the timer to end them."""
        return self.dialer.overdue()

    def close(self) -> None:
        """Abandon every check still under way."""
        self.dialer.close()


__all__ = ["Abandon", "Dialer", "OnDone", "Prober", "Probers", "TcpProber"]
