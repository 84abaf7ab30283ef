"""The pure evidence functions of scanner.explain: which listener takes a connection, and the
sentences for refused, timeout and routes, from tables built here."""

from __future__ import annotations

import pytest

from scanner.explain.evidence import (
    accepts,
    near_port,
    overflow_rise,
    owners_text,
    refused_evidence,
    route_evidence,
    timeout_evidence,
)
from scanner.explain.routes import InterfaceAddress, PolicyRule, Route
from scanner.explain.sockets import ListenCounters, ListenSocket, Process


def v4(
    address: str, port: int, *, inode: int = 0, queue: int = 0, backlog: int = 128
) -> ListenSocket:
    return ListenSocket(address, port, "ipv4", queue, backlog, inode=inode, uid=1000)


def v6(
    address: str,
    port: int,
    *,
    v6only: bool | None = False,
    inode: int = 0,
    queue: int = 0,
    backlog: int | None = 128,
) -> ListenSocket:
    return ListenSocket(address, port, "ipv6", queue, backlog, v6only, inode=inode, uid=1000)


ACCEPTS = [
    # (socket, probed address, port, accepted?)
    (v4("127.0.0.1", 80), "127.0.0.1", 80, True),
    (v4("127.0.0.1", 80), "127.0.0.1", 81, False),
    (v4("127.0.0.1", 80), "127.0.0.2", 80, False),
    (v4("127.0.0.1", 80), "::1", 80, False),
    (v4("127.0.0.1", 80), "::ffff:127.0.0.1", 80, True),  # a v4-mapped probe is IPv4
    (v4("0.0.0.0", 80), "198.18.0.5", 80, True),
    (v4("0.0.0.0", 80), "::1", 80, False),
    (v6("::1", 80), "::1", 80, True),
    (v6("::1", 80), "127.0.0.1", 80, False),
    (v6("::", 80), "::1", 80, True),
    (v6("::", 80), "127.0.0.1", 80, True),  # dual-stack wildcard
    (v6("::", 80, v6only=True), "127.0.0.1", 80, False),
    (v6("::", 80, v6only=True), "2001:db8::5", 80, True),
    (v6("::", 80, v6only=None), "127.0.0.1", 80, True),  # unknown: the kernel's default
    (v6("::ffff:127.0.0.1", 80), "127.0.0.1", 80, True),
    (v6("::ffff:127.0.0.1", 80), "127.0.0.2", 80, False),
    (v6("::ffff:127.0.0.1", 80), "::1", 80, False),
    (v6("::ffff:0.0.0.0", 80), "198.18.0.5", 80, True),
    (v6("2001:db8::5", 80), "2001:db8::5", 80, True),
    (v6("2001:db8::5", 80), "2001:db8::6", 80, False),
    (v6("fe80::1", 80), "fe80::1%lo", 80, True),
]


@pytest.mark.parametrize(("sock", "address", "port", "expected"), ACCEPTS)
def test_accepts(sock: ListenSocket, address: str, port: int, expected: bool) -> None:
    assert accepts(sock, address, port) is expected


@pytest.mark.parametrize(
    ("probed", "other", "near"),
    [
        (8081, 8080, True),
        (5423, 5432, True),  # two digits swapped
        (80, 8080, True),
        (443, 8443, True),
        (3000, 3009, True),
        (5432, 22, False),
        (8080, 9090, False),
        (6379, 5432, False),
        (22, 2222, True),
        (1, 1000, False),  # one digit inside another says nothing
        (3, 3306, False),
    ],
)
def test_near_port(probed: int, other: int, near: bool) -> None:
    assert near_port(probed, other) is near


@pytest.mark.parametrize(
    ("processes", "uid", "text"),
    [
        ((Process(4242, "python3"),), None, "python3, pid 4242"),
        ((Process(10, "nginx"), Process(11, "nginx")), None, "nginx, pids 10, 11"),
        ((Process(10, "nginx"), Process(12, "sshd")), None, "nginx, pid 10; sshd, pid 12"),
        ((), None, "unknown process"),
        ((), 1000, "unknown process, uid 1000"),
    ],
)
def test_owners_text(processes: tuple[Process, ...], uid: int | None, text: str) -> None:
    assert owners_text(processes, uid) == text


PY = {1: (Process(4242, "python3"),), 2: (Process(77, "postgres"),), 3: (Process(9, "node"),)}

REFUSED = [
    # (address, port, sockets, expected (code, sentence) of each finding)
    (
        "127.0.0.1",
        8081,
        [v4("127.0.0.1", 8080, inode=1)],
        [("wrong_port", "nothing listens on 8081; 8080 does (python3, pid 4242): wrong port?")],
    ),
    (  # the nearest of several, wildcard listeners count as "on that address"
        "127.0.0.1",
        8081,
        [v4("127.0.0.1", 22, inode=2), v4("0.0.0.0", 8079, inode=3), v6("::", 9000, inode=1)],
        [("wrong_port", "nothing listens on 8081; 8079 does (node, pid 9): wrong port?")],
    ),
    (  # far ports only: listed, not called a wrong port
        "127.0.0.1",
        5432,
        [v4("127.0.0.1", 22, inode=9), v4("127.0.0.1", 631), v4("127.0.0.1", 9000, inode=1)],
        [
            (
                "wrong_port",
                "nothing listens on 5432; on 127.0.0.1 these ports listen: 9000 (python3, pid "
                "4242), 631 (unknown process, uid 1000), 22 (unknown process, uid 1000)",
            )
        ],
    ),
    (
        "198.18.0.5",
        5432,
        [v4("127.0.0.1", 5432, inode=2)],
        [
            (
                "other_address",
                "listens on 127.0.0.1:5432 only (postgres, pid 77); you probed 198.18.0.5: "
                "bound to localhost",
            )
        ],
    ),
    (  # another non-loopback address: not "bound to localhost"
        "198.18.0.5",
        5432,
        [v4("198.18.0.6", 5432, inode=2)],
        [
            (
                "other_address",
                "listens on 198.18.0.6:5432 only (postgres, pid 77); you probed 198.18.0.5",
            )
        ],
    ),
    (
        "::1",
        3000,
        [v4("127.0.0.1", 3000, inode=3)],
        [("other_family", "listens on 127.0.0.1:3000, not on ::1 (node, pid 9)")],
    ),
    (
        "127.0.0.1",
        3000,
        [v6("::1", 3000, inode=3)],
        [("other_family", "listens on [::1]:3000, not on 127.0.0.1 (node, pid 9)")],
    ),
    (
        "127.0.0.1",
        3000,
        [v6("::", 3000, v6only=True, inode=3)],
        [("other_family", "listens on [::]:3000 (IPv6 only), not on 127.0.0.1 (node, pid 9)")],
    ),
    (  # same port elsewhere and a near port: both said
        "::1",
        3000,
        [v4("127.0.0.1", 3000, inode=3), v6("::1", 3001, inode=1)],
        [
            ("other_family", "listens on 127.0.0.1:3000, not on ::1 (node, pid 9)"),
            ("wrong_port", "nothing listens on 3000; 3001 does (python3, pid 4242): wrong port?"),
        ],
    ),
    (  # same port elsewhere and only far ports: the far ports are left out
        "198.18.0.5",
        5432,
        [v4("127.0.0.1", 5432, inode=2), v4("0.0.0.0", 22)],
        [
            (
                "other_address",
                "listens on 127.0.0.1:5432 only (postgres, pid 77); you probed 198.18.0.5: "
                "bound to localhost",
            )
        ],
    ),
    (
        "127.0.0.2",
        80,
        [v4("127.0.0.1", 8080), v6("::1", 80)],
        [("other_family", "listens on [::1]:80, not on 127.0.0.2 (unknown process, uid 1000)")],
    ),
    (
        "127.0.0.2",
        80,
        [v4("127.0.0.1", 8080)],
        [
            (
                "nothing_listens",
                "nothing listens on 127.0.0.2 at all: the service is not running, or not on "
                "this host",
            )
        ],
    ),
    (
        "127.0.0.2",
        80,
        [],
        [
            (
                "nothing_listens",
                "nothing listens on 127.0.0.2 at all: the service is not running, or not on "
                "this host",
            )
        ],
    ),
    (  # the port listens now on that very address: the probe raced a start, or a reset rule
        "127.0.0.1",
        8080,
        [v4("0.0.0.0", 8080, inode=1)],
        [
            (
                "listening_now",
                "0.0.0.0:8080 listens now (python3, pid 4242): it started after the probe, or a "
                "local firewall rule answers with a reset (nftables rules are not readable "
                "without root)",
            )
        ],
    ),
]


@pytest.mark.parametrize(("address", "port", "sockets", "expected"), REFUSED)
def test_refused_evidence(
    address: str, port: int, sockets: list[ListenSocket], expected: list[tuple[str, str]]
) -> None:
    findings = refused_evidence(address, port, sockets, PY)
    assert [(f.code, f.sentence) for f in findings] == expected
    assert all(f.suggests is None for f in findings)


def test_wrong_port_lists_every_port_and_names_the_shown_listeners() -> None:
    sockets = [v4("127.0.0.1", p, inode=1) for p in (22, 80, 443, 8080, 8443)]
    (finding,) = refused_evidence("127.0.0.1", 8081, sockets, PY)
    assert finding.ports == (22, 80, 443, 8080, 8443)
    assert [listener.socket.port for listener in finding.listeners] == [8080, 8443, 443]
    assert finding.listeners[0].processes == PY[1]


def test_refused_by_a_full_queue_with_abort_on_overflow() -> None:
    full = v4("127.0.0.1", 8080, inode=1, queue=129, backlog=128)
    (finding,) = refused_evidence("127.0.0.1", 8080, [full], PY, abort_on_overflow=True)
    assert finding.code == "accept_queue_full" and finding.suggests == "not_accepting"
    assert "tcp_abort_on_overflow=1" in finding.sentence
    assert "129 waiting to be accepted, backlog 128" in finding.sentence
    (plain,) = refused_evidence("127.0.0.1", 8080, [full], PY)  # without it: a full queue drops
    assert plain.code == "listening_now"


BEFORE = ListenCounters(overflows=10, drops=12)
ROSE = ListenCounters(overflows=13, drops=15)

TIMEOUT = [
    # (sockets, before, after, code, suggests, words in the sentence)
    (
        [v4("127.0.0.1", 7000, inode=1, queue=1, backlog=0)],
        BEFORE,
        ROSE,
        "accept_queue_full",
        "not_accepting",
        [
            "the service listens but does not accept: hung, deadlocked or overloaded",
            "python3, pid 4242 on 127.0.0.1:7000",
            "accept queue full: 1 waiting to be accepted, backlog 0",
            "ListenOverflows rose by 3 during the probe",
        ],
    ),
    (  # full, counters not given: still not_accepting, nothing said about the counters
        [v6("::", 7000, queue=5, backlog=4)],
        None,
        None,
        "accept_queue_full",
        "not_accepting",
        ["[::]:7000", "unknown process, uid 1000", "5 waiting to be accepted, backlog 4"],
    ),
    (  # /proc only (backlog unknown): waiting connections and a rise of the counter
        [ListenSocket("127.0.0.1", 7000, "ipv4", 3, None, uid=1000, source="proc")],
        BEFORE,
        ROSE,
        "accept_queue_full",
        "not_accepting",
        ["3 waiting to be accepted, backlog unknown", "rose by 3"],
    ),
    (  # the counter rose, the queue has room now
        [v4("127.0.0.1", 7000, queue=2, backlog=128)],
        BEFORE,
        ROSE,
        "listen_overflows",
        None,
        ["ListenOverflows rose by 3", "has room now (2 waiting to be accepted, backlog 128)"],
    ),
    (  # room and no rise: not the listener
        [v4("127.0.0.1", 7000, inode=1)],
        BEFORE,
        BEFORE,
        "queue_has_room",
        None,
        ["with room in its accept queue", "a local firewall rule drops the SYN"],
    ),
    (  # a local address with nothing listening answers RST; a timeout means a drop rule
        [v4("127.0.0.1", 7001)],
        BEFORE,
        BEFORE,
        "nothing_listens",
        None,
        ["nothing listens on 127.0.0.1:7000, yet no reset came", "firewall"],
    ),
]


@pytest.mark.parametrize(("sockets", "before", "after", "code", "suggests", "words"), TIMEOUT)
def test_timeout_evidence(
    sockets: list[ListenSocket],
    before: ListenCounters | None,
    after: ListenCounters | None,
    code: str,
    suggests: str | None,
    words: list[str],
) -> None:
    (finding,) = timeout_evidence("127.0.0.1", 7000, sockets, PY, before=before, after=after)
    assert finding.code == code and finding.suggests == suggests
    for word in words:
        assert word in finding.sentence, (word, finding.sentence)


@pytest.mark.parametrize(
    ("before", "after", "rise"),
    [(BEFORE, ROSE, 3), (ROSE, BEFORE, 0), (None, ROSE, None), (BEFORE, None, None)],
)
def test_overflow_rise(
    before: ListenCounters | None, after: ListenCounters | None, rise: int | None
) -> None:
    assert overflow_rise(before, after) == rise


ADDRESSES = [InterfaceAddress("198.18.0.5", 24, "eth1", "ipv4")]

ROUTES = [
    (Route("127.0.0.1", "local", table=255), "own_address", "127.0.0.1 is this host's own address"),
    (
        Route("198.18.0.5", "local", table=255),
        "own_address",
        "198.18.0.5 is this host's own address (on eth1)",
    ),
    (
        Route("8.8.8.8", "unicast", 254, "eth1", "198.18.0.1", source="198.18.0.5"),
        "route",
        "8.8.8.8 is routed via 198.18.0.1 dev eth1 from 198.18.0.5",
    ),
    (
        Route("198.18.0.9", "unicast", 254, "eth1", source="198.18.0.5"),
        "route",
        "198.18.0.9 is routed (directly connected) dev eth1 from 198.18.0.5",
    ),
    (
        Route(
            "198.19.3.1",
            "unicast",
            100,
            "eth1",
            "198.18.0.7",
            source="198.18.0.5",
            rule=PolicyRule(100, 100, "lookup", to="198.19.3.0/24"),
        ),
        "policy_route",
        "198.19.3.1 is routed by policy: rule 100 (to 198.19.3.0/24 lookup 100) chose table 100, "
        "via 198.18.0.7 dev eth1 from 198.18.0.5",
    ),
    (
        Route("203.0.113.1", "no_route", error="ENETUNREACH"),
        "stopped_by_route",
        "this host has no route to 203.0.113.1 (ENETUNREACH): no packet leaves",
    ),
    (
        Route("203.0.113.1", "blackhole", error="EINVAL", prefix="203.0.113.0/24"),
        "stopped_by_route",
        "a blackhole route 203.0.113.0/24 stops packets to 203.0.113.1 on this host (EINVAL)",
    ),
    (
        Route(
            "198.19.5.1",
            "unreachable",
            error="EHOSTUNREACH",
            prefix="198.19.5.0/24",
            rule=PolicyRule(102, 100, "lookup", to="198.19.5.0/24"),
        ),
        "stopped_by_route",
        "an unreachable route 198.19.5.0/24 stops packets to 198.19.5.1 on this host "
        "(EHOSTUNREACH, table chosen by rule 102 (to 198.19.5.0/24 lookup 100))",
    ),
    (
        Route(
            "198.19.4.1",
            "prohibit",
            error="EACCES",
            rule=PolicyRule(101, None, "prohibit", to="198.19.4.0/24"),
        ),
        "stopped_by_route",
        "policy rule 101 (to 198.19.4.0/24 prohibit) stops packets to 198.19.4.1 on this host "
        "(EACCES)",
    ),
]


@pytest.mark.parametrize(("route", "code", "sentence"), ROUTES)
def test_route_evidence(route: Route, code: str, sentence: str) -> None:
    (finding,) = route_evidence(route, ADDRESSES)
    assert (finding.code, finding.sentence) == (code, sentence)
