"""The pure parsers of scanner.explain: /proc/net/tcp{,6}, /proc/net/netstat, netlink messages.

The texts are shaped like the kernel's (copied from a real /proc, with the addresses changed);
the netlink bodies are packed here field by field from the kernel's struct layouts.
"""

from __future__ import annotations

import socket
import struct

import pytest

from scanner.explain import _netlink
from scanner.explain.routes import (
    FRA_DST,
    FRA_PRIORITY,
    FRA_TABLE,
    PolicyRule,
    matching_route,
    matching_rule,
    parse_route_message,
    parse_rule_message,
)
from scanner.explain.sockets import (
    INET_DIAG_SKV6ONLY,
    ListenSocket,
    parse_diag_message,
    parse_netstat,
    parse_proc_net_tcp,
)

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n"
)
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)


def tcp_line(
    local: str, state: str = "0A", queues: str = "00000000:00000000", inode: int = 1
) -> str:
    remote = "0" * (len(local.split(":", maxsplit=1)[0])) + ":0000"
    return (
        f"   0: {local} {remote} {state} {queues} 00:00000000 00000000  1000        0 {inode} 1 "
        "0000000000000000 100 0 0 10 0\n"
    )


PROC_CASES = [
    # (text, byteorder, expected (address, port, family, queue) of each LISTEN socket)
    (TCP_HEADER + tcp_line("0100007F:1F90"), "little", [("127.0.0.1", 8080, "ipv4", 0)]),
    (TCP_HEADER + tcp_line("7F000001:1F90"), "big", [("127.0.0.1", 8080, "ipv4", 0)]),
    (TCP_HEADER + tcp_line("00000000:0016"), "little", [("0.0.0.0", 22, "ipv4", 0)]),
    (
        TCP_HEADER + tcp_line("050012C6:1538", queues="00000000:00000081"),
        "little",
        [("198.18.0.5", 5432, "ipv4", 129)],
    ),
    # not LISTEN (01 = ESTABLISHED, 06 = TIME_WAIT): skipped
    (TCP_HEADER + tcp_line("0100007F:1F90", state="01"), "little", []),
    (TCP_HEADER + tcp_line("0100007F:1F90", state="06"), "little", []),
    (
        TCP6_HEADER + tcp_line("00000000000000000000000001000000:0BB8"),
        "little",
        [("::1", 3000, "ipv6", 0)],
    ),
    (
        TCP6_HEADER + tcp_line("00000000000000000000000000000000:0050"),
        "little",
        [("::", 80, "ipv6", 0)],
    ),
    (  # bound to ::ffff:127.0.0.1 (a v4-mapped address)
        TCP6_HEADER + tcp_line("0000000000000000FFFF00000100007F:0BB8"),
        "little",
        [("::ffff:127.0.0.1", 3000, "ipv6", 0)],
    ),
    (
        TCP6_HEADER + tcp_line("B80D0120000005000000000005000000:1F90"),
        "little",
        [("2001:db8:5::5", 8080, "ipv6", 0)],
    ),
    # a broken line among good ones: only the good ones
    (
        TCP_HEADER + "   0: garbage\n" + tcp_line("XYZ00000:0016") + tcp_line("0100007F:0016"),
        "little",
        [("127.0.0.1", 22, "ipv4", 0)],
    ),
    ("", "little", []),
]


@pytest.mark.parametrize(("text", "byteorder", "expected"), PROC_CASES)
def test_parse_proc_net_tcp(text: str, byteorder: str, expected: list[tuple[object, ...]]) -> None:
    found = parse_proc_net_tcp(text, byteorder=byteorder)  # type: ignore[arg-type]
    assert [(s.address, s.port, s.family, s.queue) for s in found] == expected
    for sock in found:
        assert sock.backlog is None and sock.source == "proc" and sock.uid == 1000
        assert not sock.queue_full  # the backlog is unknown: never called full


def test_proc_v6only_is_what_the_caller_says_for_ipv6_only() -> None:
    text4 = TCP_HEADER + tcp_line("00000000:0016", inode=77)
    text6 = TCP6_HEADER + tcp_line("00000000000000000000000000000000:0016", inode=78)
    (v4,) = parse_proc_net_tcp(text4, v6only=True)
    (v6,) = parse_proc_net_tcp(text6, v6only=True)
    assert v4.v6only is None and v4.inode == 77
    assert v6.v6only is True and v6.inode == 78


NETSTAT = (
    "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPBacklogDrop\n"
    "TcpExt: 0 17 19 0\n"
    "IpExt: InNoRoutes InOctets\n"
    "IpExt: 3 4400\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            NETSTAT,
            {
                "TcpExt": {
                    "SyncookiesSent": 0,
                    "ListenOverflows": 17,
                    "ListenDrops": 19,
                    "TCPBacklogDrop": 0,
                },
                "IpExt": {"InNoRoutes": 3, "InOctets": 4400},
            },
        ),
        ("", {}),
        # names and values from different tables, or a count mismatch: that table is dropped
        ("TcpExt: A B\nIpExt: 1 2\n", {}),
        ("TcpExt: A B\nTcpExt: 1\nIpExt: C\nIpExt: 5\n", {"IpExt": {"C": 5}}),
        ("TcpExt: A\nTcpExt: x\n", {}),
    ],
)
def test_parse_netstat(text: str, expected: dict[str, dict[str, int]]) -> None:
    assert parse_netstat(text) == expected


# -- netlink -------------------------------------------------------------------------------------
def test_attrs_round_trip_with_padding_and_flags() -> None:
    packed = _netlink.pack_attr(1, b"abc") + _netlink.pack_attr(0x8000 | 2, b"\x01\x02\x03\x04")
    assert len(packed) == 8 + 8  # 4 + 3 bytes padded to 8, then 4 + 4
    assert _netlink.parse_attrs(packed) == {1: b"abc", 2: b"\x01\x02\x03\x04"}
    # a truncated attribute ends the parse instead of reading past the message
    assert _netlink.parse_attrs(packed[:-2]) == {1: b"abc"}
    assert _netlink.parse_attrs(struct.pack("=HH", 2, 1)) == {}  # length below the header


def test_messages_split_and_stop_at_truncation() -> None:
    one = _netlink.pack_request(24, 0, b"\x01\x02\x03", seq=1)
    two = _netlink.pack_request(3, 0, b"", seq=2)
    data = one + b"\0" * (-len(one) % 4) + two
    assert list(_netlink.parse_messages(data)) == [(24, b"\x01\x02\x03"), (3, b"")]
    assert list(_netlink.parse_messages(data[: len(one) - 1])) == []


def diag_body(
    family: int,
    address: str,
    port: int,
    *,
    state: int = 10,
    rqueue: int = 0,
    wqueue: int = 128,
    v6only: int | None = None,
) -> bytes:
    raw = socket.inet_pton(family, address).ljust(16, b"\0")
    head = struct.pack(
        "=BBBB2s2s16s16sI8sIIIII",
        family,
        state,
        0,
        0,
        port.to_bytes(2, "big"),
        b"\0\0",
        raw,
        b"\0" * 16,
        0,
        b"\0" * 8,
        0,
        rqueue,
        wqueue,
        1000,
        4242,
    )
    if v6only is not None:
        head += _netlink.pack_attr(INET_DIAG_SKV6ONLY, bytes([v6only]))
    return head


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            diag_body(socket.AF_INET, "127.0.0.1", 5432, rqueue=3, wqueue=7),
            ListenSocket("127.0.0.1", 5432, "ipv4", 3, 7, None, 4242, 1000),
        ),
        (
            diag_body(socket.AF_INET6, "::", 80, v6only=1),
            ListenSocket("::", 80, "ipv6", 0, 128, True, 4242, 1000),
        ),
        (
            diag_body(socket.AF_INET6, "::ffff:127.0.0.1", 3000, v6only=0),
            ListenSocket("::ffff:127.0.0.1", 3000, "ipv6", 0, 128, False, 4242, 1000),
        ),
        (diag_body(socket.AF_INET, "127.0.0.1", 1, state=1), None),  # not LISTEN
        (b"\0" * 10, None),
    ],
)
def test_parse_diag_message(body: bytes, expected: ListenSocket | None) -> None:
    assert parse_diag_message(body) == expected


def test_queue_full_is_the_kernels_test() -> None:
    """sk_acceptq_is_full: queue > backlog (listen(0) still holds one connection)."""
    base = ListenSocket("127.0.0.1", 1, "ipv4", 0, 0)
    assert not base.queue_full
    assert ListenSocket("127.0.0.1", 1, "ipv4", 1, 0).queue_full
    assert not ListenSocket("127.0.0.1", 1, "ipv4", 128, 128).queue_full
    assert ListenSocket("127.0.0.1", 1, "ipv4", 129, 128).queue_full


def route_body(kind: int, table: int, dst: str | None, dst_len: int, attrs: bytes = b"") -> bytes:
    family = socket.AF_INET6 if dst and ":" in dst else socket.AF_INET
    body = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, 0, 0, kind, 0)
    if dst is not None:
        body += _netlink.pack_attr(1, socket.inet_pton(family, dst))
    return body + attrs


def test_parse_route_message_prefers_rta_table() -> None:
    kind, table, attrs, family, dst_len = parse_route_message(
        route_body(6, 252, "203.0.113.0", 24, _netlink.pack_attr(15, struct.pack("=I", 1000)))
    )
    assert (kind, table, family, dst_len) == ("blackhole", 1000, socket.AF_INET, 24)
    assert attrs[1] == socket.inet_pton(socket.AF_INET, "203.0.113.0")
    assert parse_route_message(route_body(2, 255, "127.0.0.1", 32))[:2] == ("local", 255)
    assert parse_route_message(route_body(99, 254, None, 0))[0] == "unknown"


def test_parse_rule_message() -> None:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, 0, 0, 0, 1, 0)
    body += _netlink.pack_attr(FRA_DST, socket.inet_pton(socket.AF_INET, "198.19.3.0"))
    body += _netlink.pack_attr(FRA_PRIORITY, struct.pack("=I", 100))
    body += _netlink.pack_attr(FRA_TABLE, struct.pack("=I", 100))
    assert parse_rule_message(body) == PolicyRule(100, 100, "lookup", to="198.19.3.0/24")
    prohibit = struct.pack("=BBBBBBBBI", socket.AF_INET6, 0, 0, 0, 0, 0, 0, 8, 0)
    prohibit += _netlink.pack_attr(FRA_PRIORITY, struct.pack("=I", 5))
    assert parse_rule_message(prohibit) == PolicyRule(5, None, "prohibit")
    assert parse_rule_message(b"\0") is None


def test_matching_route_is_the_longest_prefix_of_that_kind() -> None:
    import ipaddress

    routes = [
        ("blackhole", 254, "203.0.0.0/8", None),
        ("blackhole", 100, "203.0.113.0/24", None),
        ("unicast", 254, "203.0.113.0/25", "eth0"),
        ("blackhole", 254, "2001:db8::/32", None),
    ]
    address = ipaddress.ip_address("203.0.113.1")
    assert matching_route(routes, address, "blackhole") == ("203.0.113.0/24", 100)
    assert matching_route(routes, ipaddress.ip_address("203.9.9.9"), "blackhole") == (
        "203.0.0.0/8",
        254,
    )
    assert matching_route(routes, address, "prohibit") is None
    assert matching_route(routes, ipaddress.ip_address("2001:db8::1"), "blackhole") == (
        "2001:db8::/32",
        254,
    )


def test_matching_rule_by_destination_and_purpose() -> None:
    import ipaddress

    rules = [
        PolicyRule(10, 100, "lookup", to="10.0.0.0/8"),
        PolicyRule(20, None, "prohibit", to="198.19.4.0/24"),
        PolicyRule(30, 200, "lookup"),  # no destination selector: covers everything
    ]
    assert matching_rule(rules, ipaddress.ip_address("198.19.4.1"), action="prohibit") == rules[1]
    assert matching_rule(rules, ipaddress.ip_address("198.19.5.1"), action="prohibit") is None
    assert matching_rule(rules, ipaddress.ip_address("10.1.1.1"), table=100) == rules[0]
    assert matching_rule(rules, ipaddress.ip_address("198.19.5.1"), table=200) == rules[2]
    assert matching_rule(rules, ipaddress.ip_address("2001:db8::1"), table=100) is None
