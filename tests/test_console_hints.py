"""Every hint a person reads, re-checked for text that misleads (issue 19, item 6).

One table over the categories: for each situation, what the hint must say (the fact that
tells what to check next) and what it must not (a cause that the situation rules out).
A category missing from the table fails the completeness test, so a new category gets
its hints reviewed here too. The hints of targets that never got a verdict of their own
and of ``expect: closed`` come from the verdict, and are checked on real results.
"""

from __future__ import annotations

from typing import Any

import pytest

from scanner.classify import hint_for
from scanner.models import Category, IcmpDetail, ProbeResult, Target
from scanner.verdict import target_verdict

C = Category
ROUTER = IcmpDetail(3, 13, "198.18.2.2", "ipv4")

#: (category, hint_for's arguments, must say, must not say)
CASES: list[tuple[Category, dict[str, Any], list[str], list[str]]] = [
    (C.REFUSED, {"port": 5432}, ["5432", "nothing listens", "firewall rejects with a reset"], []),
    (C.REJECTED, {"port": 443, "icmp": ROUTER}, ["198.18.2.2", "admin-prohibited", "443"], []),
    (
        C.REJECTED,
        {
            "port": 443,
            "icmp": IcmpDetail(3, 3, "198.51.100.7", "ipv4"),
            "target_address": "198.51.100.7",
        },
        ["the target host itself rejects", "host firewall"],
        ["a firewall at"],
    ),
    (
        C.TIMEOUT,
        {"timeout": 2.0},
        ["2s", "silently drops", "host is down", "accept queue is full"],
        [],
    ),
    (
        C.HOST_UNREACHABLE,
        {"icmp": IcmpDetail(3, 1, "198.18.2.2", "ipv4")},
        ["ARP/NDP", "ICMP from 198.18.2.2"],
        ["route on this machine"],
    ),
    (
        C.HOST_UNREACHABLE,
        {"errno_name": "EHOSTUNREACH"},
        ["ARP/NDP", "route on this machine marks it unreachable"],
        ["ICMP from"],
    ),
    (
        C.NETWORK_UNREACHABLE,
        {"icmp": IcmpDetail(3, 0, "198.18.1.1", "ipv4")},
        ["no route", "ICMP from 198.18.1.1"],
        ["loop"],
    ),
    (
        C.NETWORK_UNREACHABLE,
        {"icmp": IcmpDetail(11, 0, "198.18.1.1", "ipv4")},
        ["routing loop", "time exceeded from 198.18.1.1", "not a missing route"],
        ["no route to that network"],
    ),
    (
        C.NETWORK_UNREACHABLE,
        {"icmp": IcmpDetail(1, 0, "2001:db8::1", "ipv6")},  # ICMPv6 no route
        ["no route", "ICMP from 2001:db8::1"],
        ["loop"],
    ),
    (
        C.NETWORK_UNREACHABLE,
        {"icmp": IcmpDetail(3, 0, None, "ipv6")},  # ICMPv6 time exceeded, sender unknown
        ["routing loop", "(ICMP time exceeded)"],
        ["from None", "no route to that network"],
    ),
    (C.NETWORK_UNREACHABLE, {"errno_name": "ENETUNREACH"}, ["no route", "routing and VPN"], []),
    (C.BLOCKED_LOCALLY, {"errno_name": "EPERM"}, ["this machine's own firewall", "EPERM"], []),
    (
        C.INCONCLUSIVE,
        {"errno_name": "EMFILE"},
        ["file descriptors (EMFILE)", "ulimit -n", "says nothing about the target"],
        [],
    ),
    (
        C.INCONCLUSIVE,
        {"errno_name": "EADDRNOTAVAIL"},
        ["ephemeral ports", "no source address of that family", "ip_local_port_range"],
        ["ran out of something"],
    ),
    (C.INCONCLUSIVE, {"errno_name": "ENOBUFS"}, ["buffer space (ENOBUFS)"], ["file descriptors"]),
    (
        C.INCONCLUSIVE,
        {"errno_name": "EPROTO"},
        ["unexpected error (EPROTO)", "report the errno"],
        ["ran out", "--concurrency"],  # an unknown errno is no known shortage
    ),
    (C.DNS_NXDOMAIN, {}, ["does not exist", "typo"], []),
    (C.DNS_NO_ADDRESS, {"family": "ipv6"}, ["no AAAA record"], ["A or AAAA"]),
    (C.DNS_NO_ADDRESS, {"family": "any"}, ["no A or AAAA record"], []),
    (C.DNS_SERVFAIL, {}, ["could not answer"], []),
    (C.DNS_REFUSED, {}, ["refuses to answer this client"], []),
    (C.DNS_TIMEOUT, {}, ["no DNS answer in time"], []),
    (C.DNS_ERROR, {"detail": "ipv4: bad label"}, ["ipv4: bad label"], ["unknown error"]),
    (C.SLOW, {"latency_ms": 812.4, "budget_ms": 250}, ["812 ms", "250 ms budget"], []),
    (
        C.SLOW,
        {"latency_ms": 0.0014, "budget_ms": 0.001},  # issue 19: "took 0 ms, over 0.001"
        ["took 0.0014 ms", "0.001 ms budget"],
        ["took 0 ms", "took 0.001 ms"],
    ),
    (
        C.SLOW,
        {"latency_ms": 10.2, "budget_ms": 10},
        ["took 10.2 ms", "10 ms budget"],
        ["took 10 ms"],
    ),
    (
        C.OUT_OF_SCOPE,
        {"literal": True},
        ["no packet sent", "scope.allow, --allow", "the inventory names this address itself"],
        ["DNS"],  # issue 19: a literal said "DNS points somewhere unexpected"
    ),
    (
        C.OUT_OF_SCOPE,
        {"literal": False},
        ["no packet sent", "resolves to it (DNS or the hosts file)", "missing from the scope"],
        ["inventory names"],
    ),
    (C.NOT_ACCEPTING, {"port": 6379}, ["listens on port 6379", "accept queue is full"], []),
    (
        C.CLOSED_BY_PEER,
        {"peer_closed": "RST", "hold_ms": 300},
        ["a reset within 300 ms", "no healthy backend"],
        ["a FIN"],
    ),
    (C.TLS_EXPIRED, {"detail": "leaf expired 2026-01-01"}, ["expired", "leaf expired"], []),
    (C.TLS_NOT_YET_VALID, {"detail": "leaf from 2030-01-01"}, ["not valid yet"], []),
    (C.TLS_EXPIRING, {"detail": "in 3 days"}, ["expires soon", "renew"], []),
    (C.TLS_HOSTNAME_MISMATCH, {"detail": "SANs: a.test"}, ["not for this name", "SANs"], []),
    (C.TLS_UNTRUSTED, {"detail": "self_signed"}, ["trusted CA", "self_signed"], []),
    (C.TLS_HANDSHAKE_FAILED, {"detail": "alert 40"}, ["handshake failed", "alert 40"], []),
    (C.TLS_NOT_TLS, {"detail": "HTTP/1.1 400"}, ["plain text, not TLS"], []),
    (C.TLS_TIMEOUT, {"detail": "5s"}, ["never completed the TLS handshake"], []),
]

#: not failures: no hint at all
NO_HINT = {C.OPEN, C.RESOLVED}


def test_every_category_is_in_the_table() -> None:
    assert {case[0] for case in CASES} | NO_HINT == set(Category)


@pytest.mark.parametrize(
    ("category", "kwargs", "must", "must_not"),
    [pytest.param(*case, id=f"{case[0].value}-{n}") for n, case in enumerate(CASES)],
)
def test_hint_says_what_to_check_and_nothing_ruled_out(
    category: Category, kwargs: dict[str, Any], must: list[str], must_not: list[str]
) -> None:
    hint = hint_for(category, **kwargs)
    assert hint, category
    for fact in must:
        assert fact in hint, (fact, hint)
    for wrong in must_not:
        assert wrong not in hint, (wrong, hint)
    assert "{" not in hint and "None" not in hint


@pytest.mark.parametrize("category", sorted(NO_HINT))
def test_success_has_no_hint(category: Category) -> None:
    assert hint_for(category, port=80) is None


def _probe(target: Target, category: Category) -> ProbeResult:
    return ProbeResult(target, "127.0.0.1", "ipv4", category, 1.0, 1, None, None, "probe hint")


@pytest.mark.parametrize(
    ("category", "what"),
    [
        (C.OPEN, "accepts connections"),
        (C.SLOW, "accepts connections"),
        (C.CLOSED_BY_PEER, "accepts connections"),
        (C.NOT_ACCEPTING, "has a listener (its accept queue is full)"),
        (C.TLS_UNTRUSTED, "accepts connections"),
    ],
)
def test_expect_closed_on_a_listener_says_a_service_listens(category: Category, what: str) -> None:
    """A port that must be closed but has a listener: the verdict's hint says so (the probe's
    own hint — "does not accept", "no healthy backend" — would send a person the wrong way)."""
    target = Target("admin", "127.0.0.1", 8080, expect="closed")
    result = target_verdict(target, None, ("127.0.0.1",), [_probe(target, category)])
    assert not result.ok and result.hint is not None
    assert result.hint.startswith(f"port 8080 {what} but must be closed")
    assert "a service listens there that should not" in result.hint
    assert "firewall rule" in result.hint


@pytest.mark.parametrize("category", [C.REFUSED, C.TIMEOUT, C.REJECTED])
def test_expect_closed_met_has_no_hint(category: Category) -> None:
    target = Target("admin", "127.0.0.1", 8080, expect="closed")
    result = target_verdict(target, None, ("127.0.0.1",), [_probe(target, category)])
    assert result.ok and result.hint is None


def test_the_probe_hint_stays_for_other_expectations() -> None:
    target = Target("web", "127.0.0.1", 8080)
    result = target_verdict(target, None, ("127.0.0.1",), [_probe(target, C.NOT_ACCEPTING)])
    assert result.hint == "probe hint"
