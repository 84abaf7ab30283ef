"""aiodns against a real DNS server process: every dns_* outcome, per family, hosts file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from scanner.inventory.targets import literal_family
from scanner.models import Category, ResolverConfig
from scanner.resolve import Resolver, backoff_delay, hosts_file_names

from .conftest import DnsServer

C = Category


@pytest.fixture
async def resolver(
    dns_server: DnsServer, hosts_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Resolver:
    monkeypatch.setenv("CARES_HOSTS", str(hosts_file))
    res = Resolver(ResolverConfig((dns_server.nameserver,), timeout=0.3, tries=1))
    yield res  # type: ignore[misc]
    await res.aclose()


@pytest.mark.parametrize(
    ("host", "family", "category", "addresses", "families"),
    [
        pytest.param(
            "ok.test",
            "any",
            C.RESOLVED,
            ("::1", "127.0.0.1"),
            {"ipv6": C.RESOLVED, "ipv4": C.RESOLVED},
            id="dual-stack",
        ),
        pytest.param(
            "ok.test",
            "ipv4",
            C.RESOLVED,
            ("127.0.0.1",),
            {"ipv4": C.RESOLVED},
            id="dual-stack-v4-only",
        ),
        pytest.param(
            "ok.test", "ipv6", C.RESOLVED, ("::1",), {"ipv6": C.RESOLVED}, id="dual-stack-v6-only"
        ),
        pytest.param(
            "multi.test", "ipv4", C.RESOLVED, ("127.0.0.1", "127.0.0.2"), None, id="two-a-records"
        ),
        pytest.param(
            "v6only.test",
            "any",
            C.RESOLVED,
            ("::1",),
            {"ipv6": C.RESOLVED, "ipv4": C.DNS_NO_ADDRESS},
            id="aaaa-only-any",
        ),
        pytest.param("v6only.test", "ipv4", C.DNS_NO_ADDRESS, (), None, id="aaaa-only-want-a"),
        pytest.param("v4only.test", "ipv6", C.DNS_NO_ADDRESS, (), None, id="a-only-want-aaaa"),
        pytest.param(
            "alias.test", "any", C.RESOLVED, ("::1", "127.0.0.1"), None, id="cname-chain-3"
        ),
        pytest.param("dangling.test", "any", C.DNS_NXDOMAIN, (), None, id="cname-to-nothing"),
        pytest.param(
            "nope.test",
            "any",
            C.DNS_NXDOMAIN,
            (),
            {"ipv6": C.DNS_NXDOMAIN, "ipv4": C.DNS_NXDOMAIN},
            id="nxdomain",
        ),
        pytest.param("txtonly.test", "any", C.DNS_NO_ADDRESS, (), None, id="txt-only"),
        pytest.param("broken.test", "any", C.DNS_SERVFAIL, (), None, id="servfail"),
        pytest.param("refused.test", "ipv4", C.DNS_REFUSED, (), None, id="refused"),
        pytest.param("silent.test", "ipv4", C.DNS_TIMEOUT, (), None, id="silent"),
        pytest.param(
            "half.test",
            "any",
            C.RESOLVED,
            ("127.0.0.1",),
            {"ipv6": C.DNS_SERVFAIL, "ipv4": C.RESOLVED},
            id="a-ok-aaaa-servfail",
        ),
        pytest.param("half.test", "ipv6", C.DNS_SERVFAIL, (), None, id="aaaa-servfail"),
        pytest.param(
            "halfnx.test",
            "any",
            C.DNS_SERVFAIL,
            (),
            {"ipv6": C.DNS_NO_ADDRESS, "ipv4": C.DNS_SERVFAIL},
            id="a-servfail-aaaa-nodata",
        ),
        pytest.param(
            "hostsonly.test",
            "ipv4",
            C.RESOLVED,
            ("127.0.0.9",),
            None,
            id="hosts-file-wins-over-dns",
        ),
        pytest.param("v6hosts.test", "ipv6", C.RESOLVED, ("::1",), None, id="hosts-file-v6"),
    ],
)
async def test_resolution_outcomes(
    resolver: Resolver,
    host: str,
    family: str,
    category: Category,
    addresses: tuple[str, ...],
    families: dict[str, Category] | None,
) -> None:
    result = await resolver.resolve(host, family)  # type: ignore[arg-type]
    assert result.category is category, result
    assert result.addresses == addresses
    if families is not None:
        assert dict(result.per_family) == families
    assert result.latency_ms >= 0


async def test_answer_source_names_the_hosts_file(
    resolver: Resolver, hosts_file: Path, dns_server: DnsServer
) -> None:
    from_hosts = await resolver.resolve("hostsonly.test", "ipv4")
    from_dns = await resolver.resolve("ok.test", "ipv4")
    assert from_hosts.nameserver == str(hosts_file)
    assert from_dns.nameserver == dns_server.nameserver


async def test_transient_failures_are_retried(resolver: Resolver, dns_server: DnsServer) -> None:
    before = [q for q in dns_server.queries() if q == "broken.test A"]
    result = await resolver.resolve("broken.test", "ipv4", retries=2)
    after = [q for q in dns_server.queries() if q == "broken.test A"]
    assert result.category is C.DNS_SERVFAIL
    assert result.attempts == 3
    assert len(after) - len(before) >= 3  # c-ares may also retry on its own


async def test_definitive_answers_are_not_retried(resolver: Resolver) -> None:
    result = await resolver.resolve("nope.test", "ipv4", retries=3)
    assert result.category is C.DNS_NXDOMAIN
    assert result.attempts == 1


async def test_silent_server_ends_at_our_deadline(dns_server: DnsServer) -> None:
    """c-ares retries on its own schedule; our deadline still bounds every lookup."""
    import time

    res = Resolver(ResolverConfig((dns_server.nameserver,), timeout=0.2, tries=2))
    try:
        started = time.monotonic()
        result = await res.resolve("silent.test", "any")
        elapsed = time.monotonic() - started
    finally:
        await res.aclose()
    assert result.category is C.DNS_TIMEOUT
    assert elapsed < 0.2 * 2 + 0.5 + 0.5


@pytest.mark.parametrize(
    ("host", "family"),
    [
        ("127.0.0.1", "ipv4"),
        ("::1", "ipv6"),
        ("2001:db8::10", "ipv6"),
        ("db.example", None),
        ("1.2.3", None),
    ],
)
def test_literal_family(host: str, family: str | None) -> None:
    assert literal_family(host) == family


def test_hosts_file_names(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# comment\n127.0.0.1 a.test B.test # c.test\n\n::1 d.test\n")
    assert hosts_file_names(str(path)) == {"a.test", "b.test", "d.test"}
    assert hosts_file_names(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_backoff_grows_and_is_jittered(attempt: int) -> None:
    base = min(5.0, 0.2 * 2 ** (attempt - 1))
    delays = {backoff_delay(attempt) for _ in range(20)}
    assert all(base / 2 <= d <= base for d in delays)
    assert len(delays) > 1


async def test_slow_answers_behind_a_burst_of_fast_ones(dns_server: DnsServer) -> None:
    """Issue 12 item 9: c-ares' adaptive timeout (5x the average) failed these; 2 s is 2 s."""
    res = Resolver(
        ResolverConfig((dns_server.nameserver,), timeout=2.0, tries=1),
        resolv_conf=os.devnull,
        hosts=os.devnull,
    )
    try:
        fast = await asyncio.gather(*(res.resolve(f"fast{i}.test", "ipv4") for i in range(1000)))
        slow = await asyncio.gather(*(res.resolve(f"slow{i}.test", "ipv4") for i in range(5)))
        sockets = sum(len(server.sockets) for server in res._transport.servers)
    finally:
        await res.aclose()
    assert {r.category for r in fast} == {C.RESOLVED}
    assert [r.category for r in slow] == [C.RESOLVED] * 5
    assert all(r.latency_ms >= 550 for r in slow)
    assert sockets <= 4, "a few sockets for a thousand queries, not one per query"


async def test_malformed_reply_fails_only_its_own_name(dns_server: DnsServer) -> None:
    """Issue 12 item 10: one malformed reply among 30 healthy ones in flight on one socket."""
    res = Resolver(
        ResolverConfig((dns_server.nameserver,), timeout=1.0, tries=1),
        resolv_conf=os.devnull,
        hosts=os.devnull,
    )
    try:
        names = [f"healthy{i}.test" for i in range(15)] + ["garbled.test"]
        names += [f"healthy{i}.test" for i in range(15, 30)]
        results = await asyncio.gather(*(res.resolve(name, "ipv4") for name in names))
    finally:
        await res.aclose()
    by_name = {r.host: r for r in results}
    bad = by_name.pop("garbled.test")
    assert bad.category is C.DNS_ERROR and "malformed reply" in (bad.detail or ""), bad
    assert {r.category for r in by_name.values()} == {C.RESOLVED}
    assert {r.addresses for r in by_name.values()} == {("127.0.0.4",)}


async def test_foreign_records_and_sinkholes_are_never_addresses(resolver: Resolver) -> None:
    """Issue 12 items 11 and 12: only the asked name's records; 0.0.0.0 / :: are no address."""
    foreign = await resolver.resolve("foreign.test", "ipv4")
    sink = await resolver.resolve("sink.test", "any")
    assert foreign.addresses == ("127.0.0.5",)
    assert "evil.test" in (foreign.detail or "")
    assert sink.category is C.DNS_NO_ADDRESS and sink.addresses == ()
    assert "sinkholed" in (sink.detail or "")


async def test_hosts_file_is_read_once(dns_server: DnsServer, tmp_path: Path) -> None:
    """Issue 18: the hosts file was read once per query; now once per resolver (per scan)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.7 once.test\n")
    res = Resolver(
        ResolverConfig((dns_server.nameserver,), timeout=0.5, tries=1),
        resolv_conf=os.devnull,
        hosts=str(hosts),
    )
    try:
        hosts.write_text("127.0.0.8 once.test\n")  # a change during the scan is not seen
        result = await res.resolve("once.test", "ipv4")
    finally:
        await res.aclose()
    assert result.addresses == ("127.0.0.7",) and result.nameserver == str(hosts)


async def test_trail_and_sources(dns_server: DnsServer, tmp_path: Path) -> None:
    """The search list is recorded: why ``ok`` became ``ok.test``."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("search nowhere.invalid test\noptions ndots:1\n")
    res = Resolver(
        ResolverConfig((dns_server.nameserver,), timeout=0.5, tries=1),
        resolv_conf=str(conf),
        hosts=os.devnull,
    )
    try:
        result = await res.resolve("ok", "ipv4")
    finally:
        await res.aclose()
    assert result.category is C.RESOLVED and result.addresses == ("127.0.0.1",)
    assert result.query_name == "ok.test."
    assert [(s.name, dict(s.per_family)["ipv4"]) for s in result.trail] == [
        ("ok.nowhere.invalid.", C.DNS_NXDOMAIN),
        ("ok.test.", C.RESOLVED),
    ]
    assert dict(result.sources) == {"ipv4": dns_server.nameserver}


def _closed_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns


@pytest.mark.parametrize("family", ["any", "ipv4"])
async def test_closed_nameserver_port_is_not_a_timeout(dns_server: DnsServer, family: str) -> None:
    """Issue 12 item 6: ICMP port unreachable (on loopback: within send()) is told at once."""
    closed = f"127.0.0.1:{_closed_udp_port()}"
    alone = Resolver(
        ResolverConfig((closed,), timeout=2.0, tries=2), resolv_conf=os.devnull, hosts=os.devnull
    )
    first = Resolver(
        ResolverConfig((closed, dns_server.nameserver), timeout=2.0, tries=1),
        resolv_conf=os.devnull,
        hosts=os.devnull,
    )
    try:
        dead = await alone.resolve("ok.test", family)  # type: ignore[arg-type]
        moved_on = await first.resolve("ok.test", family)  # type: ignore[arg-type]
    finally:
        await alone.aclose()
        await first.aclose()
    assert dead.category is C.DNS_ERROR, dead
    assert "nothing listens" in (dead.detail or "")
    assert dead.latency_ms < 500  # not the 2 s x 2 tries of a timeout
    assert moved_on.category is C.RESOLVED and moved_on.latency_ms < 500, moved_on
    assert dict(moved_on.sources) == dict.fromkeys(dict(moved_on.per_family), dns_server.nameserver)
