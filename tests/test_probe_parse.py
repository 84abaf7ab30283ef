"""scanner.probe: decoding IP_RECVERR / IPV6_RECVERR messages, and real loopback handshakes."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator

import pytest

from scanner.models import IcmpDetail
from scanner.probers.tcp import (
    IP_RECVERR,
    IPV6_RECVERR,
    SO_EE_ORIGIN_ICMP,
    SO_EE_ORIGIN_ICMP6,
    connect_once,
    parse_extended_error,
)

SO_EE_ORIGIN_NONE = 0
SO_EE_ORIGIN_LOCAL = 1
IP = socket.IPPROTO_IP
IP6 = socket.IPPROTO_IPV6


def extended_err(
    origin: int, icmp_type: int, icmp_code: int, err: int = errno.EHOSTUNREACH
) -> bytes:
    """A ``struct sock_extended_err`` as the kernel lays it out."""
    return struct.pack("=IBBBBII", err, origin, icmp_type, icmp_code, 0, 0, 0)


def sockaddr_in(address: str) -> bytes:
    """``struct sockaddr_in`` (16 bytes): family, port, address, zero padding."""
    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_pton(socket.AF_INET, address))


def sockaddr_in6(address: str) -> bytes:
    """``struct sockaddr_in6`` (28 bytes): family, port, flowinfo, address, scope id."""
    return struct.pack(
        "=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, address), 0
    )


def v4(icmp_type: int, code: int, sender: str) -> bytes:
    return extended_err(SO_EE_ORIGIN_ICMP, icmp_type, code) + sockaddr_in(sender)


def v6(icmp_type: int, code: int, sender: str) -> bytes:
    return extended_err(SO_EE_ORIGIN_ICMP6, icmp_type, code) + sockaddr_in6(sender)


def test_struct_sizes_match_the_kernel() -> None:
    assert len(extended_err(0, 0, 0)) == 16
    assert len(sockaddr_in("192.0.2.1")) == 16
    assert len(sockaddr_in6("2001:db8::1")) == 28


@pytest.mark.parametrize(
    ("level", "kind", "data", "expected"),
    [
        pytest.param(
            IP,
            IP_RECVERR,
            v4(3, 3, "192.0.2.1"),
            IcmpDetail(3, 3, "192.0.2.1", "ipv4"),
            id="v4-port-unreachable",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            v4(3, 13, "198.51.100.254"),
            IcmpDetail(3, 13, "198.51.100.254", "ipv4"),
            id="v4-admin-prohibited",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            v4(3, 1, "203.0.113.1"),
            IcmpDetail(3, 1, "203.0.113.1", "ipv4"),
            id="v4-host-unreachable",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            v4(11, 0, "10.255.255.254"),
            IcmpDetail(11, 0, "10.255.255.254", "ipv4"),
            id="v4-time-exceeded",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            v4(3, 3, "127.0.0.1"),
            IcmpDetail(3, 3, "127.0.0.1", "ipv4"),
            id="v4-loopback-sender",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            v4(3, 3, "0.0.0.0"),
            IcmpDetail(3, 3, None, "ipv4"),
            id="v4-unspecified-sender-is-none",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            extended_err(SO_EE_ORIGIN_ICMP, 3, 3),
            IcmpDetail(3, 3, None, "ipv4"),
            id="v4-no-offender",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            extended_err(SO_EE_ORIGIN_ICMP, 3, 3) + b"\x02\x00\x00",
            IcmpDetail(3, 3, None, "ipv4"),
            id="v4-truncated-offender",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 4, "2001:db8::1"),
            IcmpDetail(1, 4, "2001:db8::1", "ipv6"),
            id="v6-port-unreachable",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 1, "2001:db8:42::fe"),
            IcmpDetail(1, 1, "2001:db8:42::fe", "ipv6"),
            id="v6-admin-prohibited",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 3, "fe80::1"),
            IcmpDetail(1, 3, "fe80::1", "ipv6"),
            id="v6-address-unreachable",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(3, 0, "2001:db8::ff"),
            IcmpDetail(3, 0, "2001:db8::ff", "ipv6"),
            id="v6-time-exceeded",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 4, "::1"),
            IcmpDetail(1, 4, "::1", "ipv6"),
            id="v6-loopback-sender",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 4, "::"),
            IcmpDetail(1, 4, None, "ipv6"),
            id="v6-unspecified-sender-is-none",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            v6(1, 0, "2001:db8::1")[: 16 + 20],
            IcmpDetail(1, 0, None, "ipv6"),
            id="v6-truncated-offender",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            extended_err(SO_EE_ORIGIN_LOCAL, 0, 0, errno.EMSGSIZE) + sockaddr_in("0.0.0.0"),
            None,
            id="local-origin",
        ),
        pytest.param(
            IP6,
            IPV6_RECVERR,
            extended_err(SO_EE_ORIGIN_LOCAL, 0, 0) + sockaddr_in6("::"),
            None,
            id="v6-local-origin",
        ),
        pytest.param(
            IP,
            IP_RECVERR,
            extended_err(SO_EE_ORIGIN_NONE, 0, 0) + sockaddr_in("192.0.2.1"),
            None,
            id="no-origin",
        ),
        pytest.param(IP, IP_RECVERR, b"", None, id="empty"),
        pytest.param(IP, IP_RECVERR, v4(3, 3, "192.0.2.1")[:15], None, id="short-v4"),
        pytest.param(IP6, IPV6_RECVERR, v6(1, 4, "2001:db8::1")[:8], None, id="short-v6"),
        pytest.param(IP, IP_RECVERR, v6(1, 4, "2001:db8::1"), None, id="icmp6-origin-on-ip-level"),
        pytest.param(
            IP6, IPV6_RECVERR, v4(3, 3, "192.0.2.1"), None, id="icmp-origin-on-ipv6-level"
        ),
        pytest.param(IP, 99, v4(3, 3, "192.0.2.1"), None, id="other-cmsg-type"),
        pytest.param(
            socket.SOL_SOCKET, IP_RECVERR, v4(3, 3, "192.0.2.1"), None, id="other-cmsg-level"
        ),
    ],
)
def test_parse_extended_error(
    level: int, kind: int, data: bytes, expected: IcmpDetail | None
) -> None:
    assert parse_extended_error(level, kind, data) == expected


# --- real sockets, loopback only ------------------------------------------------------


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


LOOPBACKS = [
    pytest.param("127.0.0.1", socket.AF_INET, "ipv4", id="ipv4"),
    pytest.param(
        "::1",
        socket.AF_INET6,
        "ipv6",
        id="ipv6",
        marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1"),
    ),
]


@pytest.fixture
def closed_loopback_port() -> Iterator[int]:
    """A port bound (not listening) on both loopbacks: nothing can accept on it meanwhile."""
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.bind(("127.0.0.1", 0))
    port = int(v4.getsockname()[1])
    v6: socket.socket | None = None
    if _has_ipv6_loopback():
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            v6.bind(("::1", port))
        except OSError:
            v6.close()
            v6 = None
    try:
        yield port
    finally:
        v4.close()
        if v6 is not None:
            v6.close()


@pytest.mark.parametrize(("address", "af", "family"), LOOPBACKS)
async def test_connect_to_closed_loopback_port_is_refused(
    address: str, af: int, family: str, closed_loopback_port: int
) -> None:
    outcome, local = await connect_once(
        address,
        closed_loopback_port,
        family,  # type: ignore[arg-type]
        timeout=2.0,
    )
    assert outcome.errno == errno.ECONNREFUSED
    assert outcome.timed_out is False
    assert outcome.icmp is None  # a TCP reset, no ICMP involved
    assert outcome.latency_ms >= 0
    assert local is None  # the source address is only looked up next to an ICMP error


@pytest.mark.parametrize(("address", "af", "family"), LOOPBACKS)
async def test_connect_to_open_loopback_listener(address: str, af: int, family: str) -> None:
    with socket.socket(af, socket.SOCK_STREAM) as server:
        server.bind((address, 0))
        server.listen(8)
        port = server.getsockname()[1]
        outcome, local = await connect_once(
            address,
            port,
            family,  # type: ignore[arg-type]
            timeout=2.0,
        )
    assert outcome.errno == 0
    assert outcome.timed_out is False
    assert outcome.icmp is None
    assert outcome.latency_ms >= 0
    assert local is None  # the source address is only looked up next to an ICMP error
