"""The TCP prober: one handshake to one address, and what the kernel said about it.

The only dial path of the scanner: the scan's handshakes, the path trace's TTL-limited
ones (through the ``setup`` hook) and one-off checks all go through :class:`Dialer`.
It reports raw facts (errno, ICMP detail from the error queue, latency) in a
:class:`ConnectOutcome`; deciding what they mean is :mod:`scanner.classify`'s job, and
timing, retrying and deadlines are the engine's.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import math
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from ..models import AddressFamily, ConnectOutcome, IcmpDetail

# Linux constants the socket module does not export everywhere.
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends RST: no TIME_WAIT left behind
_TCP_INFO = getattr(socket, "TCP_INFO", 11)
_TCP_SYN_SENT = 2  # tcp_states.h


def parse_extended_error(level: int, kind: int, data: bytes) -> IcmpDetail | None:
    """Decode one IP_RECVERR / IPV6_RECVERR control message into an :class:`IcmpDetail`.

    The message is a ``struct sock_extended_err`` followed by the sockaddr of the
    offender (SO_EE_OFFENDER): the node that sent the ICMP. Errors of local origin
    (no ICMP involved) give None.
    """
    if len(data) < _EXTENDED_ERR.size:
        return None
    _errno, origin, icmp_type, icmp_code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
    offender = data[_EXTENDED_ERR.size :]
    if origin == SO_EE_ORIGIN_ICMP and level == socket.IPPROTO_IP and kind == IP_RECVERR:
        sender = socket.inet_ntop(socket.AF_INET, offender[4:8]) if len(offender) >= 8 else None
        return IcmpDetail(icmp_type, icmp_code, _unspecified_to_none(sender), "ipv4")
    if origin == SO_EE_ORIGIN_ICMP6 and level == socket.IPPROTO_IPV6 and kind == IPV6_RECVERR:
        sender = socket.inet_ntop(socket.AF_INET6, offender[8:24]) if len(offender) >= 24 else None
        return IcmpDetail(icmp_type, icmp_code, _unspecified_to_none(sender), "ipv6")
    return None


def _unspecified_to_none(address: str | None) -> str | None:
    return None if address in (None, "0.0.0.0", "::") else address


def read_error_queue(sock: socket.socket | _socket.socket) -> IcmpDetail | None:
    """Drain the socket's error queue; the last ICMP error in it, if any."""
    found: IcmpDetail | None = None
    for _ in range(16):  # bounded: the queue holds a handful of entries at most
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(512, 1024, MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        for level, kind, cdata in ancdata:
            detail = parse_extended_error(level, kind, cdata)
            if detail is not None:
                found = detail
    return found


def _open_socket(family: AddressFamily) -> _socket.socket:
    # The C socket type itself: socket.socket's Python layer (__init__, close
    # bookkeeping) cost more than the system calls at tens of thousands a second.
    if family == "ipv4":
        sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    else:
        sock = _socket.socket(socket.AF_INET6, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    return sock


def _close(sock: _socket.socket, connected: bool) -> None:
    """Close; a connected socket with linger 0, so it sends RST and leaves no TIME_WAIT.

    Linger only matters at close and only once connected: setting it just then spares
    the system call for the refused, rejected and silent majority of a big scan.
    """
    if connected:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def close_reset(sock: _socket.socket) -> None:
    """Close a connected socket with a RST (linger 0): no TIME_WAIT left behind."""
    _close(sock, connected=True)


def _finish(
    sock: _socket.socket,
    err: int,
    timed_out: bool,
    started: float,
    *,
    keep: bool = False,
    queue_full: bool = False,
) -> tuple[ConnectOutcome, str | None]:
    """Collect the facts of an ended attempt and close the socket (RST, no TIME_WAIT),
    unless it connected and is to be ``keep``-t for a prober's next phase.

    The local address only matters next to an ICMP error (did this host send it to
    itself?), so it is asked for only then.
    """
    latency_ms = (time.perf_counter() - started) * 1000.0
    if keep and err == 0:
        return ConnectOutcome(0, False, latency_ms), None
    icmp = read_error_queue(sock) if err else None
    local: str | None = None
    if icmp is not None:
        try:
            local = sock.getsockname()[0]
        except OSError:
            local = None
    # a timed-out socket was just seen still in SYN_SENT (see Dialer._on_timer): no linger.
    # Should a SYN-ACK slip in between, closing sends a FIN instead of a RST: harmless.
    _close(sock, connected=err == 0)
    return ConnectOutcome(err, timed_out, latency_ms, icmp, queue_full), local


def _noop() -> None:
    pass


OnDone = Callable[[ConnectOutcome, "str | None"], None]
#: stops a probe under way (it reports nothing after)
Abandon = Callable[[], object]
#: called with a connected socket (now the callee's to close) and its handshake's outcome
OnKept = Callable[[_socket.socket, ConnectOutcome], None]
#: called with a new socket before it connects (socket options)
SocketSetup = Callable[[_socket.socket], None]


class _Handshake:
    """A socket whose handshake the :class:`Dialer` is waiting for."""

    __slots__ = (
        "address",
        "deadline",
        "dialer",
        "fd",
        "live",
        "on_done",
        "on_kept",
        "port",
        "sock",
        "started",
    )

    def __init__(
        self,
        dialer: Dialer,
        sock: _socket.socket,
        *,
        started: float,
        deadline: float,
        on_done: OnDone,
        on_kept: OnKept | None,
        address: str,
        port: int,
    ) -> None:
        self.address = address
        self.port = port
        self.dialer = dialer
        self.sock = sock
        self.fd = sock.fileno()
        self.started = started
        self.deadline = deadline
        self.on_done = on_done
        self.on_kept = on_kept
        self.live = True

    def abandon(self) -> None:
        """Stop waiting: close the socket, never call ``on_done``."""
        if self.live:
            self.live = False
            del self.dialer.waiting[self.fd]
            _close(self.sock, connected=True)  # it may have connected unnoticed


class Dialer:
    """Starts TCP handshakes on one event loop; ``on_done`` is called once for each.

    Sockets still connecting sit in an epoll set of the dialer's own, which the loop
    watches as one reader; their deadlines sit in first-in-first-out queues, one per
    timeout value (deadlines in a queue come in order), under a single loop timer.
    Handing every socket to the loop instead (``add_writer`` plus ``call_later``) cost
    about 30 µs a handshake under uvloop: more than all the system calls of it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        queue_full: Callable[[str, int], bool] | None = None,
    ) -> None:
        """``queue_full(address, port)`` is asked after a timeout: was it this host's own
        listener with a full accept queue (:mod:`.local`)?"""
        self._loop = loop
        self._queue_full = queue_full
        self._epoll: select.epoll | None = None  # made for the first socket that waits
        self.waiting: dict[int, _Handshake] = {}
        self._deadlines: dict[float, deque[_Handshake]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def connect(
        self,
        address: str,
        port: int,
        family: AddressFamily,
        timeout: float,
        on_done: OnDone,
        *,
        setup: SocketSetup | None = None,
        keep: OnKept | None = None,
    ) -> Callable[[], None]:
        """Begin one handshake; returns a function that abandons it.

        ``setup`` is called with the new socket before it connects (the path trace sets
        its hop limit there). With ``keep``, a socket that connects is not closed but
        handed to ``keep`` with its outcome (a prober with a phase after the handshake);
        ``on_done`` then hears nothing of it.
        """
        loop = self._loop
        try:
            sock = _open_socket(family)
        except OSError as exc:  # EMFILE, ENFILE, ENOBUFS ...: our shortage, not theirs
            loop.call_soon(on_done, ConnectOutcome(exc.errno or errno.EIO, False, 0.0), None)
            return _noop
        if setup is not None:
            try:
                setup(sock)
            except OSError as exc:
                sock.close()
                loop.call_soon(on_done, ConnectOutcome(exc.errno or errno.EIO, False, 0.0), None)
                return _noop
        started = time.perf_counter()
        try:
            sockaddr = (address, port) if family == "ipv4" else _sockaddr6(address, port)
        except OSError as exc:  # the zone's interface is gone: nothing was sent
            sock.close()
            loop.call_soon(on_done, ConnectOutcome(exc.errno or errno.ENODEV, False, 0.0), None)
            return _noop
        err = sock.connect_ex(sockaddr)
        if err == errno.EINPROGRESS:
            # On a near path (loopback, the same host) the kernel has often finished the
            # handshake, or received the RST, before connect() returned: ask once, and
            # skip waiting when there is nothing left to wait for.
            err = _connect_error(sock)
        if err != errno.EINPROGRESS:  # done already, or failed at once (no route, policy)
            # call_soon, not a direct call: ``on_done`` may start the next handshake
            outcome, local = _finish(sock, err, False, started, keep=keep is not None)
            if keep is not None and err == 0:
                loop.call_soon(keep, sock, outcome)
            else:
                loop.call_soon(on_done, outcome, local)
            return _noop
        try:
            epoll = self._epoll or self._open_epoll()
        except OSError as exc:  # out of descriptors for the epoll set: our shortage too
            _close(sock, connected=True)
            loop.call_soon(on_done, ConnectOutcome(exc.errno or errno.EIO, False, 0.0), None)
            return _noop
        handshake = _Handshake(
            self,
            sock,
            started=started,
            deadline=loop.time() + timeout,
            on_done=on_done,
            on_kept=keep,
            address=address,
            port=port,
        )
        epoll.register(handshake.fd, select.EPOLLOUT)
        self.waiting[handshake.fd] = handshake
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = deque()
        queue.append(handshake)
        if handshake.deadline < self._timer_at:
            self._arm(handshake.deadline)
        return handshake.abandon

    async def dial(
        self,
        address: str,
        port: int,
        family: AddressFamily,
        timeout: float,
        *,
        setup: SocketSetup | None = None,
    ) -> tuple[ConnectOutcome, str | None]:
        """:meth:`connect` as a coroutine: the outcome and, after an ICMP error, our source.

        Cancelling the caller abandons the attempt and closes the socket.
        """
        future: asyncio.Future[tuple[ConnectOutcome, str | None]] = self._loop.create_future()

        def deliver(outcome: ConnectOutcome, local: str | None) -> None:
            if not future.done():
                future.set_result((outcome, local))

        abandon = self.connect(address, port, family, timeout, deliver, setup=setup)
        try:
            return await future
        finally:
            abandon()

    def close(self) -> None:
        """Abandon every handshake still waiting and release the epoll set."""
        for handshake in list(self.waiting.values()):
            handshake.abandon()
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf
        if self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None

    def overdue(self) -> bool:
        """Handshakes have passed their deadline and wait for the timer to end them."""
        return self._timer_at <= self._loop.time()

    def _open_epoll(self) -> select.epoll:
        self._epoll = select.epoll()
        self._loop.add_reader(self._epoll.fileno(), self._on_ready)
        return self._epoll

    def _on_ready(self) -> None:
        if self._epoll is None:
            return
        waiting = self.waiting
        for fd, _events in self._epoll.poll(0):
            handshake = waiting.get(fd)
            if handshake is None:
                continue
            err = _connect_error(handshake.sock)
            if err == errno.EINPROGRESS:
                # a stale event: its socket was abandoned and the number reused
                continue
            self._end(handshake, err, timed_out=False)

    def _end(self, handshake: _Handshake, err: int, *, timed_out: bool) -> None:
        handshake.live = False
        del self.waiting[handshake.fd]
        if err == 0 and handshake.on_kept is not None:
            if self._epoll is not None:
                self._epoll.unregister(handshake.fd)  # the keeper watches it from now on
            outcome, _ = _finish(handshake.sock, 0, False, handshake.started, keep=True)
            handshake.on_kept(handshake.sock, outcome)
            return
        full = (
            timed_out
            and self._queue_full is not None
            and self._queue_full(handshake.address, handshake.port)
        )
        # closing also takes the socket out of the epoll set
        handshake.on_done(
            *_finish(handshake.sock, err, timed_out, handshake.started, queue_full=full)
        )

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        for queue in list(self._deadlines.values()):  # on_done may add a timeout value
            while queue:
                handshake = queue[0]
                if handshake.live and handshake.deadline > now:
                    break
                queue.popleft()
                if handshake.live:
                    # The answer may have come in time, unseen by a busy loop (libuv, so
                    # uvloop, runs due timers before it polls): the socket knows.
                    err = _connect_error(handshake.sock)
                    if err == errno.EINPROGRESS:
                        self._end(handshake, errno.ETIMEDOUT, timed_out=True)
                    else:
                        self._end(handshake, err, timed_out=False)
        soonest = min(
            (queue[0].deadline for queue in self._deadlines.values() if queue), default=math.inf
        )
        if soonest < self._timer_at:
            self._arm(soonest)


def _sockaddr6(address: str, port: int) -> tuple[str, int, int, int]:
    """An IPv6 socket address; a zone (``fe80::1%eth0``) becomes its scope id, which a
    plain 4-tuple with 0 would drop (the connect then fails or leaves the wrong interface)."""
    host, sep, zone = address.partition("%")
    if not sep:
        return (address, port, 0, 0)
    scope = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
    return (host, port, 0, scope)


def _connect_error(sock: _socket.socket) -> int:
    """The socket's pending error; EINPROGRESS while its handshake is still under way.

    No error yet means connected or still connecting; the first byte of TCP_INFO (the
    TCP state) tells which without the exception getpeername() would raise.
    """
    err: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err == 0 and sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0] == _TCP_SYN_SENT:
        return errno.EINPROGRESS
    return err


async def connect_once(
    address: str, port: int, family: AddressFamily, timeout: float
) -> tuple[ConnectOutcome, str | None]:
    """One TCP handshake to ``address:port`` under ``timeout`` seconds, on a dialer of its own.

    Returns the outcome and, when an ICMP error came back, the local (source) address
    the kernel chose, which tells an ICMP this host sent to itself (its own firewall)
    from one sent by the network; None otherwise. Never raises for network trouble.
    """
    dialer = Dialer(asyncio.get_running_loop())
    try:
        return await dialer.dial(address, port, family, timeout)
    finally:
        dialer.close()
