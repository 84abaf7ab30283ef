"""Sockets: one TCP handshake to one address, and what the kernel said about it.

This is the only module that touches sockets. It reports raw facts (errno, ICMP
detail from the error queue, latency) in a :class:`ConnectOutcome`; deciding what
they mean is :mod:`scanner.classify`'s job, and retrying is the engine's.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import time

import anyio

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


def read_error_queue(sock: socket.socket) -> IcmpDetail | None:
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


def _open_socket(family: AddressFamily) -> socket.socket:
    af = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    sock = socket.socket(af, socket.SOCK_STREAM)
    sock.setblocking(False)
    if family == "ipv4":
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    return sock


async def connect_once(
    address: str, port: int, family: AddressFamily, timeout: float
) -> tuple[ConnectOutcome, str | None]:
    """One TCP handshake to ``address:port`` under ``timeout`` seconds.

    Returns the outcome and the local (source) address the kernel chose, which tells
    an ICMP this host sent to itself (its own firewall) from one sent by the network.
    Never raises for network trouble: a failed handshake is an outcome.
    """
    try:
        sock = _open_socket(family)
    except OSError as exc:  # EMFILE, ENFILE, ENOBUFS ...: our shortage, not theirs
        return ConnectOutcome(exc.errno or errno.EIO, False, 0.0), None
    loop = asyncio.get_running_loop()
    sockaddr: tuple[str, int] | tuple[str, int, int, int] = (
        (address, port) if family == "ipv4" else (address, port, 0, 0)
    )
    err = 0
    timed_out = False
    started = time.perf_counter()
    try:
        with anyio.move_on_after(timeout) as scope:
            try:
                await loop.sock_connect(sock, sockaddr)
            except OSError as exc:
                err = exc.errno or errno.EIO
        latency_ms = (time.perf_counter() - started) * 1000.0
        if scope.cancelled_caught:
            timed_out = True
            err = errno.ETIMEDOUT
        icmp = read_error_queue(sock) if err else None
        try:
            local = sock.getsockname()[0]
        except OSError:
            local = None
        return ConnectOutcome(err, timed_out, latency_ms, icmp), local
    finally:
        sock.close()
