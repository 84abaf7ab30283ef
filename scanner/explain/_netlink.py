"""A minimal netlink client: one request, its replies, their attributes.

What ``ip route get``, ``ip addr`` and ``ss -lt`` ask the kernel, asked without running them:
NETLINK_ROUTE (routes, addresses, rules) and NETLINK_SOCK_DIAG (sockets) answer any user, no
privileges. About 100 lines of ``struct`` instead of pyroute2, whose import alone took about
260 ms here (this module: under 1 ms), for the four requests the evidence needs.

Only Linux has netlink; elsewhere :func:`request` raises :class:`OSError` like any socket call.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator

NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4

NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid
_ATTR = struct.Struct("=HH")  # struct rtattr / struct nlattr: len, type
_ERROR = struct.Struct("=i")  # struct nlmsgerr starts with the negative errno
_NLA_TYPE_MASK = 0x3FFF  # NLA_F_NESTED and NLA_F_NET_BYTEORDER are flags, not the type
_RECV_BYTES = 1 << 16
_MAX_REPLIES = 1 << 16  # bounded: a dump of every socket on a busy host stays far below

_seq = itertools.count(1)


def _align(length: int) -> int:
    return (length + 3) & ~3


class NetlinkError(OSError):
    """The kernel answered the request with an error (its errno, as ``ip`` would print it)."""


def pack_request(kind: int, flags: int, body: bytes, seq: int) -> bytes:
    """One netlink message: header plus body (the body's own attributes already packed)."""
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body


def pack_attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to the 4-byte boundary the next one starts on."""
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def parse_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(type, body)`` of each message in one datagram; stops at a truncated one."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq_no, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            return
        yield kind, data[offset + _HEADER.size : offset + length]
        offset += _align(length)


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from ``offset`` on, by type (a repeated type keeps its last value)."""
    attrs: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size or offset + length > len(data):
            break
        attrs[kind & _NLA_TYPE_MASK] = data[offset + _ATTR.size : offset + length]
        offset += _align(length)
    return attrs


def request(protocol: int, kind: int, body: bytes, *, dump: bool) -> list[tuple[int, bytes]]:
    """Send one request and collect the ``(type, body)`` replies until the kernel is done.

    A non-dump request is answered by one message (or an error); a dump by many, then
    NLMSG_DONE. An error reply raises :class:`NetlinkError` with the kernel's errno.
    """
    seq = next(_seq)
    replies: list[tuple[int, bytes]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol) as sock:
        sock.settimeout(2.0)  # the kernel answers at once; this only bounds a broken kernel
        sock.bind((0, 0))
        sock.send(pack_request(kind, NLM_F_DUMP if dump else 0, body, seq))
        while len(replies) < _MAX_REPLIES:
            for reply_kind, reply in parse_messages(sock.recv(_RECV_BYTES)):
                if reply_kind == NLMSG_DONE:
                    return replies
                if reply_kind == NLMSG_ERROR:
                    (code,) = _ERROR.unpack_from(reply)
                    if code == 0:  # an acknowledgement, not an error
                        return replies
                    raise NetlinkError(-code, os.strerror(-code))
                replies.append((reply_kind, reply))
            if not dump and replies:
                return replies
    raise NetlinkError(errno.EOVERFLOW, "netlink dump did not end")
