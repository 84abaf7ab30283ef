"""The TLS prober: the TCP handshake through the scan's Dialer, then the TLS phase on the
same socket (:func:`.tls.start_handshake`), under what is left of the target's timeout.

Chosen for targets with ``tls`` that must be open: a port that must stay closed has no TLS
to check. The socket stays the scanner's own (its error queue, its linger-0 close); the
outcome carries the TCP phase's facts with the TLS phase's in ``tls``.
"""

from __future__ import annotations

import _socket
import asyncio
import time

from msgspec.structs import replace

from ..models import AddressFamily, ConnectOutcome, Target, TlsOutcome
from .tcp import Abandon, Dialer, OnDone, close_reset


class TlsProber:
    """A TCP handshake, then TLS with SNI and certificate checks on the same socket."""

    def __init__(self, dialer: Dialer, loop: asyncio.AbstractEventLoop) -> None:
        self._dialer = dialer
        self._loop = loop

    def start(
        self, target: Target, address: str, family: AddressFamily, on_done: OnDone
    ) -> Abandon:
        check = _Check(target, on_done, time.monotonic() + target.timeout)
        check.abandon_connect = self._dialer.connect(
            address, target.port, family, target.timeout, on_done, keep=check.connected
        )
        return check.abandon


def _server_name(target: Target) -> str | None:
    """The name to send and verify: the setting, else the target's host (a name only: an
    IP literal is checked against the IP SAN and sends no SNI, as RFC 6066 says)."""
    settings = target.tls
    if settings is not None and settings.server_name:
        return settings.server_name
    return target.host.rstrip(".")


class _Check:
    __slots__ = ("abandon_connect", "abandon_tls", "deadline", "on_done", "sock", "target")

    def __init__(self, target: Target, on_done: OnDone, deadline: float) -> None:
        self.target = target
        self.on_done = on_done
        self.deadline = deadline
        self.abandon_connect: Abandon = _nothing
        self.abandon_tls: Abandon = _nothing
        self.sock: _socket.socket | None = None

    def connected(self, sock: _socket.socket, outcome: ConnectOutcome) -> None:
        from .tls import start_handshake

        self.sock = sock
        settings = self.target.tls
        assert settings is not None
        left = max(0.001, self.deadline - time.monotonic())

        def finished(tls: TlsOutcome) -> None:
            self._close()
            self.on_done(replace(outcome, tls=tls), None)

        self.abandon_tls = start_handshake(
            sock, settings, _server_name(self.target), left, finished
        )

    def _close(self) -> None:
        if self.sock is not None:
            close_reset(self.sock)
            self.sock = None

    def abandon(self) -> None:
        self.abandon_connect()
        self.abandon_tls()
        self._close()


def _nothing() -> object:
    return None
