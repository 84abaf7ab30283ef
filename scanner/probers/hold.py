"""The hold prober (``hold_ms``): after the handshake, does the peer close it at once?

A proxy or load balancer with no healthy backend, TCP wrappers or a connection limit all
complete the handshake — the kernel does that — and then close (FIN) or reset (RST)
before a byte is exchanged. A plain handshake calls that ``open``; with ``hold_ms`` the
socket stays open that long, and a close or reset from the peer within it is
``closed_by_peer``. Data from the peer (a banner) or silence until the end is ``open``.

Opt-in, per target: a hold costs its ``hold_ms`` per address, and a socket meanwhile.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import socket

from msgspec.structs import replace

from ..models import AddressFamily, ConnectOutcome, Target
from .tcp import Abandon, Dialer, OnDone, close_reset


class HoldProber:
    """A TCP handshake, then ``target.hold_ms`` of listening for the peer to close."""

    def __init__(self, dialer: Dialer, loop: asyncio.AbstractEventLoop) -> None:
        self._dialer = dialer
        self._loop = loop

    def start(
        self, target: Target, address: str, family: AddressFamily, on_done: OnDone
    ) -> Abandon:
        hold = _Hold(self._loop, (target.hold_ms or 0.0) / 1000.0, on_done)
        hold.abandon_connect = self._dialer.connect(
            address, target.port, family, target.timeout, hold.unkept, keep=hold.connected
        )
        return hold.abandon


class _Hold:
    """One socket being held: its deadline, and how to give it up."""

    __slots__ = ("abandon_connect", "hold_s", "loop", "on_done", "outcome", "sock", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, hold_s: float, on_done: OnDone) -> None:
        self.loop = loop
        self.hold_s = hold_s
        self.on_done = on_done
        self.abandon_connect: Abandon = _nothing
        self.sock: _socket.socket | None = None
        self.outcome: ConnectOutcome | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connected(self, sock: _socket.socket, outcome: ConnectOutcome) -> None:
        self.sock, self.outcome = sock, outcome
        self.loop.add_reader(sock.fileno(), self._readable)
        self.timer = self.loop.call_later(self.hold_s, self._end, None)

    def unkept(self, outcome: ConnectOutcome, local: str | None) -> None:
        """The handshake's outcome when it was not kept for the hold.

        A peer that accepts and resets at once can beat the first look at the socket:
        SO_ERROR then already says ECONNRESET (EPIPE after a FIN), which a plain handshake
        calls ``open``. Under a hold it is the very thing the hold looks for (a full suite
        run on a loaded machine once got ``open`` here for a server that resets at once).
        """
        closed = {errno.ECONNRESET: "RST", errno.EPIPE: "FIN"}.get(outcome.errno or 0)
        if closed is not None and outcome.icmp is None:
            outcome = replace(outcome, peer_closed=closed)
        self.on_done(outcome, local)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET: it reset what it had accepted
            self._end("RST")
            return
        self._end(None if data else "FIN")  # data: the service spoke, it is open

    def _end(self, closed: str | None) -> None:
        outcome = self.outcome
        self._release()
        if outcome is not None:
            self.on_done(replace(outcome, peer_closed=closed), None)

    def _release(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            close_reset(self.sock)
            self.sock = None
        self.outcome = None

    def abandon(self) -> None:
        """Stop: during the handshake, or during the hold; nothing is reported after."""
        self.abandon_connect()
        self._release()


def _nothing() -> object:
    return None
