"""Sockets: one TCP handshake to one address, and what the kernel said about it.

This is the only module that touches sockets. It reports raw facts (errno, ICMP
detail from the error queue, latency) in a :class:`ConnectOutcome`; deciding what
they mean is :mod:`scanner.classify`'s job, and retrying is the engine's.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import socket
import struct
import time
from collections.abc import Callable

from .models import AddressFamily, ConnectOutcome, IcmpDetail

# Linux constants the socket module does not export everywhere.
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends RST: no TIME_WAIT left behind


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
        sender = (
            socket.inet_ntop(socket.AF_INET6, offender[8:24]) if len(offender) >= 24 else None
        )
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


def _finish(sock: _socket.socket, err: int, timed_out: bool, started: float
            ) -> tuple[ConnectOutcome, str | None]:
    """Collect the facts of an ended attempt and close the socket (RST, no TIME_WAIT).

    The local address only matters next to an ICMP error (did this host send it to
    itself?), so it is asked for only then.
    """
    latency_ms = (time.perf_counter() - started) * 1000.0
    icmp = read_error_queue(sock) if err else None
    local: str | None = None
    if icmp is not None:
        try:
            local = sock.getsockname()[0]
        except OSError:
            local = None
    _close(sock, connected=err == 0 or timed_out)  # a late SYN-ACK may have raced the timer
    return ConnectOutcome(err, timed_out, latency_ms, icmp), local


def _noop() -> None:
    pass


def start_connect(loop: asyncio.AbstractEventLoop, address: str, port: int,
                  family: AddressFamily, *, timeout: float,
                  on_done: Callable[[ConnectOutcome, str | None], None]) -> Callable[[], None]:
    """Begin one TCP handshake; ``on_done(outcome, local_address)`` is called exactly once.

    Driven by loop callbacks (a writer on the socket, a timer for the deadline), with
    no task and no cancel scope per probe: at tens of thousands of probes a second
    those costs dominate. Returns a function that abandons the attempt (closing the
    socket, never calling ``on_done``).
    """
    try:
        sock = _open_socket(family)
    except OSError as exc:  # EMFILE, ENFILE, ENOBUFS ...: our shortage, not theirs
        loop.call_soon(on_done, ConnectOutcome(exc.errno or errno.EIO, False, 0.0), None)
        return _noop
    sockaddr: tuple[str, int] | tuple[str, int, int, int] = (
        (address, port) if family == "ipv4" else (address, port, 0, 0)
    )
    started = time.perf_counter()
    err = sock.connect_ex(sockaddr)
    if err == errno.EINPROGRESS:
        # On a near path (loopback, the same host) the kernel has often finished the
        # handshake, or received the RST, before connect() returned: ask once, and
        # skip registering with the event loop when there is nothing left to wait for.
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            try:
                sock.getpeername()
            except OSError:
                err = errno.EINPROGRESS  # still connecting: wait for the loop
    if err != errno.EINPROGRESS:  # done already, or failed at once (no route, policy)
        loop.call_soon(on_done, *_finish(sock, err, False, started))
        return _noop
    fd = sock.fileno()
    timer: asyncio.TimerHandle | None = None
    live = True

    def finished(timed_out: bool) -> None:
        nonlocal live
        if not live:
            return
        live = False
        loop.remove_writer(fd)
        if timer is not None and not timed_out:
            timer.cancel()
        code = errno.ETIMEDOUT if timed_out else sock.getsockopt(socket.SOL_SOCKET,
                                                                   socket.SO_ERROR)
        on_done(*_finish(sock, code, timed_out, started))

    def abandon() -> None:
        nonlocal live
        if live:
            live = False
            loop.remove_writer(fd)
            if timer is not None:
                timer.cancel()
            _close(sock, connected=True)  # it may have connected unnoticed

    loop.add_writer(fd, finished, False)
    timer = loop.call_later(timeout, finished, True)
    return abandon


async def connect_once(
    address: str, port: int, family: AddressFamily, timeout: float
) -> tuple[ConnectOutcome, str | None]:
    """One TCP handshake to ``address:port`` under ``timeout`` seconds.

    Returns the outcome and, when an ICMP error came back, the local (source) address
    the kernel chose, which tells an ICMP this host sent to itself (its own firewall)
    from one sent by the network; None otherwise.
    Never raises for network trouble: a failed handshake is an outcome. Cancelling the
    caller abandons the attempt and closes the socket.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[ConnectOutcome, str | None]] = loop.create_future()

    def deliver(outcome: ConnectOutcome, local: str | None) -> None:
        if not future.done():
            future.set_result((outcome, local))

    abandon = start_connect(loop, address, port, family, timeout=timeout, on_done=deliver)
    try:
        return await future
    finally:
        if not future.done():
            abandon()
