"""aiodns against a real DNS server process: every dns_* outcome, per family, hosts file."""

from __future__ import annotations

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
