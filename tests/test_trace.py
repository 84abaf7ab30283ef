"""Path trace: the pure hop and verdict logic as tables, the socket layer on loopback.

Hop tables are shaped like what the lab observes (tests/lab/test_lab_trace.py sees the real
thing): client — router1 (198.18.1.1) — router2 (198.18.2.2) — server subnet 198.18.3.0/24.
"""

from __future__ import annotations

import errno
import socket

import pytest
from msgspec.structs import replace

from scanner.models import (
    Category,
    ConnectOutcome,
    Hop,
    IcmpDetail,
    ProbeResult,
    Target,
    TargetResult,
)
from scanner.probers.trace import (
    PathTracer,
    TraceConfig,
    build_path,
    hop_limit,
    hop_of,
    is_terminal,
    needs_next_wave,
    trace_path,
    traced_probes,
    tracer_slots,
)

from .conftest import Listener

R1, R2, TARGET, CLIENT = "198.18.1.1", "198.18.2.2", "198.18.3.31", "198.18.1.2"
R1_6, R2_6, TARGET_6 = "2001:db8:1::1", "2001:db8:2::2", "2001:db8:3::31"


def te(ttl: int, sender: str, v6: bool = False) -> Hop:
    """Time exceeded from ``sender``."""
    return Hop(ttl, sender, 0.1, 3 if v6 else 11, 0, False, "EHOSTUNREACH")


def silent(ttl: int) -> Hop:
    return Hop(ttl, None, None, None, None, False, "ETIMEDOUT")


def unreach(
    ttl: int,
    sender: str,
    code: int,
    v6: bool = False,
    reached: bool = False,
    err: str = "ECONNREFUSED",
) -> Hop:
    return Hop(ttl, sender, 0.1, 1 if v6 else 3, code, reached, err)


def answer(ttl: int, err: str | None = None) -> Hop:
    """The target itself: handshake (err None) or reset (ECONNREFUSED)."""
    return Hop(ttl, TARGET, 0.1, None, None, True, err)


def local_error(ttl: int, err: str) -> Hop:
    return Hop(ttl, None, 0.0, None, None, False, err)


# --- hop_of: one outcome → one hop ------------------------------------------------------------

ICMP_TE = IcmpDetail(11, 0, R1, "ipv4")

HOP_ROWS = [
    # (id, outcome, expected hop)
    (
        "time exceeded from router1",
        ConnectOutcome(errno.EHOSTUNREACH, False, 0.25, ICMP_TE),
        Hop(1, R1, 0.25, 11, 0, False, "EHOSTUNREACH"),
    ),
    (
        "silence",
        ConnectOutcome(errno.ETIMEDOUT, True, 2000.0),
        Hop(1, None, None, None, None, False, "ETIMEDOUT"),
    ),
    (
        "handshake completed",
        ConnectOutcome(0, False, 0.5),
        Hop(1, TARGET, 0.5, None, None, True, None),
    ),
    (
        "reset from the target",
        ConnectOutcome(errno.ECONNREFUSED, False, 0.5),
        Hop(1, TARGET, 0.5, None, None, True, "ECONNREFUSED"),
    ),
    (
        "port unreachable from the target itself",
        ConnectOutcome(errno.ECONNREFUSED, False, 0.5, IcmpDetail(3, 3, TARGET, "ipv4")),
        Hop(1, TARGET, 0.5, 3, 3, True, "ECONNREFUSED"),
    ),
    (
        "admin prohibited from router2",
        ConnectOutcome(errno.EHOSTUNREACH, False, 0.5, IcmpDetail(3, 13, R2, "ipv4")),
        Hop(1, R2, 0.5, 3, 13, False, "EHOSTUNREACH"),
    ),
    (
        "no local route, nothing sent",
        ConnectOutcome(errno.ENETUNREACH, False, 0.01),
        Hop(1, None, 0.01, None, None, False, "ENETUNREACH"),
    ),
    (
        "IPv6 spelling of the target differs",
        ConnectOutcome(errno.ECONNREFUSED, False, 0.5, IcmpDetail(1, 4, "2001:DB8:3::31", "ipv6")),
        Hop(1, "2001:DB8:3::31", 0.5, 1, 4, True, "ECONNREFUSED"),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "expected"), [r[1:] for r in HOP_ROWS], ids=[r[0] for r in HOP_ROWS]
)
def test_hop_of(outcome: ConnectOutcome, expected: Hop) -> None:
    target = TARGET_6 if outcome.icmp and outcome.icmp.family == "ipv6" else TARGET
    assert hop_of(1, outcome, target) == expected


# --- build_path: hops → verdict ------------------------------------------------------------

VERDICT_ROWS = [
    # (id, family, hops, probed, verdict, last_hop, shown TTLs)
    (
        "drop at the server: router2 is the last hop",
        "ipv4",
        [te(1, R1), te(2, R2), *map(silent, range(3, 9))],
        8,
        f"dropped after hop 2 ({R2})",
        R2,
        [1, 2, 3],
    ),
    (
        "drop in router2's forward path: router2 still answers its own hop",
        "ipv4",
        [te(1, R1), te(2, R2), silent(3), silent(4)],
        8,
        f"dropped after hop 2 ({R2})",
        R2,
        [1, 2, 3],
    ),
    (
        "drop at router1 (or a blackhole route at router2)",
        "ipv4",
        [te(1, R1), *map(silent, range(2, 9))],
        8,
        f"dropped after hop 1 ({R1})",
        R1,
        [1, 2],
    ),
    (
        "reject at router2 shows at the hop after it",
        "ipv4",
        [te(1, R1), te(2, R2), unreach(3, R2, 3), unreach(4, R2, 3)],
        8,
        f"rejected by hop 3 ({R2})",
        R2,
        [1, 2, 3],
    ),
    (
        "admin-prohibited at router2",
        "ipv4",
        [te(1, R1), te(2, R2), unreach(3, R2, 13, err="EHOSTUNREACH")],
        8,
        f"rejected by hop 3 ({R2})",
        R2,
        [1, 2, 3],
    ),
    (
        "reject at router2, IPv6",
        "ipv6",
        [te(1, R1_6, True), te(2, R2_6, True), unreach(3, R2_6, 4, True)],
        8,
        f"rejected by hop 3 ({R2_6})",
        R2_6,
        [1, 2, 3],
    ),
    (
        "drop at the server, IPv6",
        "ipv6",
        [te(1, R1_6, True), te(2, R2_6, True), silent(3)],
        8,
        f"dropped after hop 2 ({R2_6})",
        R2_6,
        [1, 2, 3],
    ),
    (
        "host unreachable (ARP failed at router2)",
        "ipv4",
        [te(1, R1), te(2, R2), unreach(3, R2, 1, err="EHOSTUNREACH")],
        8,
        f"host unreachable, reported by hop 3 ({R2})",
        R2,
        [1, 2, 3],
    ),
    (
        "no route at router1",
        "ipv4",
        [unreach(1, R1, 0, err="ENETUNREACH")],
        8,
        f"no route, reported by hop 1 ({R1})",
        R1,
        [1],
    ),
    (
        "reached: port open",
        "ipv4",
        [te(1, R1), te(2, R2), answer(3), answer(4)],
        8,
        "reached host at hop 3, port open",
        TARGET,
        [1, 2, 3],
    ),
    (
        "reached: reset",
        "ipv4",
        [te(1, R1), te(2, R2), answer(3, "ECONNREFUSED")],
        8,
        "reached host at hop 3, port refused there (TCP reset)",
        TARGET,
        [1, 2, 3],
    ),
    (
        "reached: the host's own firewall rejects",
        "ipv4",
        [te(1, R1), te(2, R2), unreach(3, TARGET, 3, reached=True)],
        8,
        "reached host at hop 3, which rejects the port (ICMP port-unreachable 3/3)",
        TARGET,
        [1, 2, 3],
    ),
    (
        "a silent router in the middle does not end the path",
        "ipv4",
        [te(1, R1), silent(2), answer(3)],
        8,
        "reached host at hop 3, port open",
        TARGET,
        [1, 2, 3],
    ),
    (
        "silent router, then drop",
        "ipv4",
        [te(1, R1), silent(2), te(3, R2), silent(4)],
        8,
        f"dropped after hop 3 ({R2})",
        R2,
        [1, 2, 3, 4],
    ),
    (
        "nothing answers",
        "ipv4",
        list(map(silent, range(1, 9))),
        8,
        "no hop answered (hop limits 1–8): dropped on this machine or at the first hop, "
        "or ICMP is filtered or rate-limited",
        None,
        [1],
    ),
    (
        "every hop answered time exceeded: path longer than max hops",
        "ipv4",
        [te(1, R1), te(2, R2), te(3, "198.18.4.1")],
        3,
        "target not reached within 3 hops (last: hop 3, 198.18.4.1)",
        "198.18.4.1",
        [1, 2, 3],
    ),
    (
        "this machine's firewall rejects",
        "ipv4",
        [unreach(1, CLIENT, 3)],
        8,
        f"blocked by this machine's own firewall ({CLIENT})",
        CLIENT,
        [1],
    ),
    (
        "prohibit route on this machine",
        "ipv4",
        [local_error(1, "EACCES")],
        8,
        "blocked on this machine (EACCES): nothing was sent",
        None,
        [1],
    ),
    (
        "no route on this machine",
        "ipv4",
        [local_error(1, "ENETUNREACH")],
        8,
        "no route on this machine (ENETUNREACH): nothing was sent",
        None,
        [1],
    ),
    (
        "out of descriptors",
        "ipv4",
        [te(1, R1), local_error(2, "EMFILE")],
        8,
        "trace failed on this machine (EMFILE)",
        R1,
        [1, 2],
    ),
    (
        "the first terminal hop wins, in any arrival order",
        "ipv4",
        [answer(4), unreach(3, R2, 3), te(1, R1), te(2, R2)],
        8,
        f"rejected by hop 3 ({R2})",
        R2,
        [1, 2, 3],
    ),
]


@pytest.mark.parametrize(
    ("family", "hops", "probed", "verdict", "last_hop", "shown"),
    [r[1:] for r in VERDICT_ROWS],
    ids=[r[0] for r in VERDICT_ROWS],
)
def test_build_path(
    family: str, hops: list[Hop], probed: int, verdict: str, last_hop: str | None, shown: list[int]
) -> None:
    target = TARGET_6 if family == "ipv6" else TARGET
    path = build_path(
        target,
        80,
        family,
        hops,
        probed=probed,  # type: ignore[arg-type]
        local_addresses=(CLIENT,),
    )
    assert path.verdict == verdict
    assert path.last_hop == last_hop
    assert [h.ttl for h in path.hops] == shown
    assert path.address == target and path.port == 80


def test_probed_stops_at_the_terminal_hop() -> None:
    path = build_path(TARGET, 80, "ipv4", [te(1, R1), answer(2)], probed=8)
    assert path.probed == 2
    path = build_path(TARGET, 80, "ipv4", [te(1, R1), silent(2)], probed=8)
    assert path.probed == 8


WAVE_ROWS = [
    ("the path goes on past the wave", [te(6, R1), te(7, R1), te(8, R2)], True),
    ("one silent router at the end of the wave", [te(6, R1), te(7, R2), silent(8)], True),
    (
        "silent tail: the drop is inside the wave",
        [te(5, R2), silent(6), silent(7), silent(8)],
        False,
    ),
    ("terminal hop", [te(7, R1), answer(8)], False),
    ("nothing at all", [silent(8)], False),
]


@pytest.mark.parametrize(
    ("hops", "expected"), [r[1:] for r in WAVE_ROWS], ids=[r[0] for r in WAVE_ROWS]
)
def test_needs_next_wave(hops: list[Hop], expected: bool) -> None:
    assert needs_next_wave(hops, "ipv4", last_ttl=8) is expected


def test_terminal_hops() -> None:
    assert not is_terminal(te(1, R1), "ipv4")
    assert not is_terminal(te(1, R1_6, v6=True), "ipv6")
    assert not is_terminal(silent(1), "ipv4")
    assert is_terminal(unreach(1, R1, 13), "ipv4")
    assert is_terminal(answer(1), "ipv4")
    assert is_terminal(local_error(1, "EACCES"), "ipv4")


# --- which results get traced ----------------------------------------------------------------

T = Target(name="t", host="t.example", port=80)


def probe(address: str, category: Category) -> ProbeResult:
    return ProbeResult(
        target=T,
        address=address,
        family="ipv4",
        category=category,
        latency_ms=1.0,
        attempts=1,
        errno=None,
        icmp=None,
        hint=None,
    )


def test_traced_probes_decisive_first_and_only_traceable() -> None:
    probes = (
        probe("198.18.3.1", Category.OPEN),
        probe("198.18.3.2", Category.TIMEOUT),
        probe("198.18.3.3", Category.REJECTED),
        probe("198.18.3.4", Category.REFUSED),
    )
    result = TargetResult(
        target=T,
        ok=False,
        category=Category.REJECTED,
        addresses=tuple(p.address for p in probes),
        hint=None,
        probes=probes,
    )
    assert [p.address for p in traced_probes(result)] == ["198.18.3.3", "198.18.3.2"]
    assert [p.address for p in traced_probes(result, include_ok=True)] == [
        "198.18.3.3",
        "198.18.3.1",
        "198.18.3.2",
        "198.18.3.4",
    ]
    assert traced_probes(replace(result, ok=True, category=Category.OPEN)) == []
    scoped = replace(result, probes=(probe("198.18.3.9", Category.OUT_OF_SCOPE),))
    assert traced_probes(scoped, include_ok=True) == []
    assert PathTracer().wants(result)
    assert not PathTracer().wants(replace(result, probes=probes[:1]))


def test_untraced_result_has_null_path_fields() -> None:
    result = TargetResult(target=T, ok=False, category=Category.TIMEOUT, addresses=(), hint=None)
    assert result.last_hop is None and result.path_verdict is None


def test_tracer_slots_bounded() -> None:
    assert tracer_slots(1024, TraceConfig()) == 64
    assert tracer_slots(48, TraceConfig()) == 6
    assert tracer_slots(1, TraceConfig()) == 1


# --- sockets, on loopback: the target is hop 1 ---------------------------------------------------


@pytest.mark.parametrize(
    ("address", "family", "option"),
    [
        ("127.0.0.1", "ipv4", (socket.IPPROTO_IP, socket.IP_TTL)),
        ("::1", "ipv6", (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)),
    ],
)
async def test_a_hop_limited_handshake_goes_through_the_dialer(
    listener: Listener, address: str, family: str, option: tuple[int, int]
) -> None:
    """The trace's handshakes are the Dialer's, with the hop limit set by its hook."""
    import asyncio

    from scanner.probers.tcp import Dialer

    seen: list[int] = []
    setup = hop_limit(family, 1)  # type: ignore[arg-type]

    def hook(sock) -> None:  # type: ignore[no-untyped-def]
        setup(sock)
        seen.append(sock.getsockopt(*option))

    dialer = Dialer(asyncio.get_running_loop())
    try:
        outcome, _local = await dialer.dial(address, listener.port, family, 2.0, setup=hook)  # type: ignore[arg-type]
    finally:
        dialer.close()
    assert seen == [1]
    assert outcome.errno == 0
    assert hop_of(1, outcome, address).reached


async def test_trace_to_a_closed_loopback_port(closed_port: int) -> None:
    path = await trace_path("127.0.0.1", closed_port, "ipv4", TraceConfig(hop_timeout=1.0))
    assert path.verdict == "reached host at hop 1, port refused there (TCP reset)"
    assert [h.ttl for h in path.hops] == [1] and path.last_hop == "127.0.0.1"


async def test_trace_ipv6_loopback(listener: Listener) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    path = await trace_path("::1", listener.port, "ipv6", TraceConfig(hop_timeout=1.0))
    assert path.verdict == "reached host at hop 1, port open"


async def test_tracer_emits_hops_in_order(closed_port: int) -> None:
    target = Target(name="lo", host="127.0.0.1", port=closed_port)
    result = TargetResult(
        target=target,
        ok=False,
        category=Category.REFUSED,
        addresses=("127.0.0.1",),
        hint=None,
        probes=(replace(probe("127.0.0.1", Category.REFUSED), target=target),),
    )
    seen: list[tuple[str, int]] = []
    tracer = PathTracer(TraceConfig(hop_timeout=1.0, include_ok=True), slots=2)
    traced = await tracer.trace(result, lambda t, p, h: seen.append((t.name, h.ttl)))
    assert seen == [("lo", 1)]
    assert traced.last_hop == "127.0.0.1"
    assert traced.path_verdict == "reached host at hop 1, port refused there (TCP reset)"
