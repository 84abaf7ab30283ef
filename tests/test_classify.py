"""The pure tables of scanner.classify: errno, ICMP, c-ares status → category, roll-up, hints."""

from __future__ import annotations

import errno as E

import pytest

from scanner.classify import (
    ERRNO_CATEGORY,
    HINTS,
    classify_connect,
    classify_errno,
    classify_icmp,
    combine_dns,
    hint_for,
    icmp_name,
)
from scanner.models import Category, ConnectOutcome, IcmpDetail
from scanner.verdict import meets_expectation, roll_up

C = Category


def icmp4(type_: int, code: int, sender: str | None = "192.0.2.1") -> IcmpDetail:
    return IcmpDetail(type_, code, sender, "ipv4")


def icmp6(type_: int, code: int, sender: str | None = "2001:db8::1") -> IcmpDetail:
    return IcmpDetail(type_, code, sender, "ipv6")


# --- classify_errno -------------------------------------------------------------------

ERRNO_EXPECTED = {
    0: C.OPEN,
    E.ECONNREFUSED: C.REFUSED,
    E.ECONNRESET: C.OPEN,  # accepted, then reset: the handshake completed
    E.EPIPE: C.OPEN,
    E.ETIMEDOUT: C.TIMEOUT,
    E.EHOSTUNREACH: C.HOST_UNREACHABLE,
    E.EHOSTDOWN: C.HOST_UNREACHABLE,
    E.ENETUNREACH: C.NETWORK_UNREACHABLE,
    E.ENETDOWN: C.NETWORK_UNREACHABLE,
    E.EPERM: C.BLOCKED_LOCALLY,
    E.EACCES: C.BLOCKED_LOCALLY,
    E.EMFILE: C.INCONCLUSIVE,
    E.ENFILE: C.INCONCLUSIVE,
    E.EADDRNOTAVAIL: C.INCONCLUSIVE,
    E.EADDRINUSE: C.INCONCLUSIVE,
    E.ENOBUFS: C.INCONCLUSIVE,
    E.ENOMEM: C.INCONCLUSIVE,
    E.EAGAIN: C.INCONCLUSIVE,
}


def test_errno_table_is_fully_covered_below() -> None:
    assert dict(ERRNO_CATEGORY) == ERRNO_EXPECTED


@pytest.mark.parametrize(
    ("err", "category"),
    [pytest.param(err, cat, id=E.errorcode.get(err, "0")) for err, cat in ERRNO_EXPECTED.items()]
    + [
        pytest.param(E.EINVAL, C.INCONCLUSIVE, id="unknown-EINVAL"),
        pytest.param(E.EIO, C.INCONCLUSIVE, id="unknown-EIO"),
        pytest.param(E.EPROTO, C.INCONCLUSIVE, id="unknown-EPROTO"),
        pytest.param(99999, C.INCONCLUSIVE, id="unknown-99999"),
        pytest.param(-1, C.INCONCLUSIVE, id="unknown-negative"),
    ],
)
def test_classify_errno(err: int, category: Category) -> None:
    assert classify_errno(err) is category


# --- classify_icmp --------------------------------------------------------------------

ICMP4_CODES = {
    0: C.NETWORK_UNREACHABLE,
    1: C.HOST_UNREACHABLE,
    2: C.REJECTED,
    3: C.REJECTED,
    4: None,  # fragmentation needed: a PMTU signal, not a verdict
    5: C.NETWORK_UNREACHABLE,
    6: C.NETWORK_UNREACHABLE,
    7: C.HOST_UNREACHABLE,
    8: C.REJECTED,
    9: C.REJECTED,
    10: C.REJECTED,
    11: C.NETWORK_UNREACHABLE,
    12: C.HOST_UNREACHABLE,
    13: C.REJECTED,
    14: C.REJECTED,
    15: C.REJECTED,
    16: None,
    255: None,
}
ICMP6_CODES = {
    0: C.NETWORK_UNREACHABLE,
    1: C.REJECTED,
    2: C.NETWORK_UNREACHABLE,
    3: C.HOST_UNREACHABLE,
    4: C.REJECTED,
    5: C.REJECTED,
    6: C.REJECTED,
    7: None,
    8: None,
    255: None,
}


@pytest.mark.parametrize(
    ("icmp", "category"),
    [
        pytest.param(icmp4(3, code), cat, id=f"v4-unreach-{code}")
        for code, cat in ICMP4_CODES.items()
    ]
    + [
        pytest.param(icmp6(1, code), cat, id=f"v6-unreach-{code}")
        for code, cat in ICMP6_CODES.items()
    ]
    + [
        pytest.param(icmp4(11, 0), C.NETWORK_UNREACHABLE, id="v4-ttl-exceeded"),
        pytest.param(icmp4(11, 1), C.NETWORK_UNREACHABLE, id="v4-reassembly-exceeded"),
        pytest.param(icmp6(3, 0), C.NETWORK_UNREACHABLE, id="v6-hop-limit-exceeded"),
        pytest.param(icmp4(0, 0), None, id="v4-echo-reply"),
        pytest.param(icmp4(4, 0), None, id="v4-source-quench"),
        pytest.param(icmp4(5, 1), None, id="v4-redirect"),
        pytest.param(icmp4(12, 0), None, id="v4-parameter-problem"),
        pytest.param(icmp4(1, 3), None, id="v4-type-1-is-not-v6-unreach"),
        pytest.param(icmp6(2, 0), None, id="v6-packet-too-big"),
        pytest.param(icmp6(4, 0), None, id="v6-parameter-problem"),
        pytest.param(icmp6(3, 3), C.NETWORK_UNREACHABLE, id="v6-type-3-is-time-exceeded"),
        pytest.param(icmp6(11, 0), None, id="v6-type-11-is-not-time-exceeded"),
        pytest.param(icmp6(128, 0), None, id="v6-echo-request"),
    ],
)
def test_classify_icmp(icmp: IcmpDetail, category: Category | None) -> None:
    assert classify_icmp(icmp) is category


# --- classify_connect -----------------------------------------------------------------


def outcome(err: int, icmp: IcmpDetail | None = None, *, timed_out: bool = False) -> ConnectOutcome:
    return ConnectOutcome(err, timed_out, 12.5, icmp)


@pytest.mark.parametrize(
    ("connect", "local", "category"),
    [
        pytest.param(outcome(0), (), C.OPEN, id="handshake-completed"),
        pytest.param(outcome(E.ECONNREFUSED), (), C.REFUSED, id="plain-rst-is-refused"),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp4(3, 3)),
            (),
            C.REJECTED,
            id="icmp-port-unreach-beats-econnrefused",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp6(1, 4)),
            (),
            C.REJECTED,
            id="icmp6-port-unreach-beats-econnrefused",
        ),
        pytest.param(
            outcome(E.EHOSTUNREACH, icmp4(3, 13)),
            (),
            C.REJECTED,
            id="admin-prohibited-beats-ehostunreach",
        ),
        pytest.param(outcome(E.EACCES, icmp6(1, 1)), (), C.REJECTED, id="icmp6-admin-prohibited"),
        pytest.param(
            outcome(E.EHOSTUNREACH, icmp4(3, 1)), (), C.HOST_UNREACHABLE, id="icmp-host-unreach"
        ),
        pytest.param(
            outcome(E.ENETUNREACH, icmp4(3, 0)), (), C.NETWORK_UNREACHABLE, id="icmp-net-unreach"
        ),
        pytest.param(
            outcome(E.EHOSTUNREACH, icmp4(11, 0)), (), C.NETWORK_UNREACHABLE, id="ttl-exceeded"
        ),
        pytest.param(
            outcome(E.ETIMEDOUT, timed_out=True), (), C.TIMEOUT, id="our-deadline-no-icmp"
        ),
        pytest.param(outcome(E.ETIMEDOUT), (), C.TIMEOUT, id="kernel-etimedout"),
        pytest.param(outcome(0, timed_out=True), (), C.TIMEOUT, id="timed-out-flag-wins"),
        pytest.param(
            outcome(E.ETIMEDOUT, icmp4(3, 1), timed_out=True),
            (),
            C.HOST_UNREACHABLE,
            id="icmp-explains-a-timeout",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp4(3, 4)),
            (),
            C.REFUSED,
            id="uninterpreted-icmp-falls-back-to-errno",
        ),
        pytest.param(
            outcome(E.ETIMEDOUT, icmp4(4, 0), timed_out=True),
            (),
            C.TIMEOUT,
            id="uninterpreted-icmp-timeout",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp4(3, 3, "10.0.0.5")),
            ("10.0.0.5",),
            C.BLOCKED_LOCALLY,
            id="reject-from-self-is-local-firewall",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp6(1, 1, "2001:db8::5")),
            ["fe80::1", "2001:db8::5"],
            C.BLOCKED_LOCALLY,
            id="v6-reject-from-self-is-local-firewall",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp6(1, 4, "2001:db8::5")),
            ("2001:DB8:0::5",),
            C.BLOCKED_LOCALLY,
            id="v6-reject-from-self-other-spelling",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp4(3, 3, "10.0.0.6")),
            ("10.0.0.5",),
            C.REJECTED,
            id="reject-from-elsewhere",
        ),
        pytest.param(
            outcome(E.EHOSTUNREACH, icmp4(3, 1, "10.0.0.5")),
            ("10.0.0.5",),
            C.HOST_UNREACHABLE,
            id="own-arp-failure-is-not-blocked-locally",
        ),
        pytest.param(
            outcome(E.ECONNREFUSED, icmp4(3, 3, None)),
            ("10.0.0.5",),
            C.REJECTED,
            id="reject-unknown-sender",
        ),
        pytest.param(outcome(E.EPERM), (), C.BLOCKED_LOCALLY, id="eperm"),
        pytest.param(outcome(E.EMFILE), (), C.INCONCLUSIVE, id="emfile"),
        pytest.param(outcome(E.EINVAL), (), C.INCONCLUSIVE, id="unknown-errno"),
    ],
)
def test_classify_connect(
    connect: ConnectOutcome, local: tuple[str, ...], category: Category
) -> None:
    assert classify_connect(connect, local) is category


# --- c-ares ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_family", "category"),
    [
        pytest.param([], C.DNS_ERROR, id="nothing-queried"),
        pytest.param([("ipv4", C.RESOLVED)], C.RESOLVED, id="v4-only-resolved"),
        pytest.param([("ipv4", C.RESOLVED), ("ipv6", C.RESOLVED)], C.RESOLVED, id="both"),
        pytest.param(
            [("ipv4", C.RESOLVED), ("ipv6", C.DNS_SERVFAIL)],
            C.RESOLVED,
            id="resolved-beats-servfail",
        ),
        pytest.param(
            [("ipv6", C.DNS_TIMEOUT), ("ipv4", C.RESOLVED)], C.RESOLVED, id="resolved-beats-timeout"
        ),
        pytest.param(
            [("ipv4", C.DNS_NXDOMAIN), ("ipv6", C.RESOLVED)],
            C.RESOLVED,
            id="resolved-beats-nxdomain",
        ),
        pytest.param([("ipv4", C.DNS_NXDOMAIN)], C.DNS_NXDOMAIN, id="nxdomain-single"),
        pytest.param(
            [("ipv4", C.DNS_NXDOMAIN), ("ipv6", C.DNS_NXDOMAIN)], C.DNS_NXDOMAIN, id="all-nxdomain"
        ),
        pytest.param(
            [("ipv4", C.DNS_NO_ADDRESS), ("ipv6", C.DNS_NXDOMAIN)],
            C.DNS_NO_ADDRESS,
            id="nodata-and-nxdomain-is-no-address",
        ),
        pytest.param(
            [("ipv4", C.DNS_NO_ADDRESS), ("ipv6", C.DNS_NO_ADDRESS)],
            C.DNS_NO_ADDRESS,
            id="all-nodata",
        ),
        pytest.param(
            [("ipv4", C.DNS_SERVFAIL), ("ipv6", C.DNS_NO_ADDRESS)],
            C.DNS_SERVFAIL,
            id="servfail-beats-nodata",
        ),
        pytest.param(
            [("ipv4", C.DNS_NXDOMAIN), ("ipv6", C.DNS_SERVFAIL)],
            C.DNS_SERVFAIL,
            id="servfail-beats-nxdomain",
        ),
        pytest.param(
            [("ipv4", C.DNS_SERVFAIL), ("ipv6", C.DNS_TIMEOUT)],
            C.DNS_TIMEOUT,
            id="timeout-beats-servfail",
        ),
        pytest.param(
            [("ipv4", C.DNS_REFUSED), ("ipv6", C.DNS_SERVFAIL)],
            C.DNS_SERVFAIL,
            id="servfail-beats-refused",
        ),
        pytest.param(
            [("ipv4", C.DNS_REFUSED), ("ipv6", C.DNS_ERROR)],
            C.DNS_REFUSED,
            id="refused-beats-error",
        ),
        pytest.param(
            [("ipv4", C.DNS_ERROR), ("ipv6", C.DNS_NO_ADDRESS)],
            C.DNS_ERROR,
            id="error-beats-nodata",
        ),
        pytest.param(
            [("ipv4", C.DNS_REFUSED), ("ipv6", C.DNS_REFUSED)], C.DNS_REFUSED, id="all-refused"
        ),
        pytest.param([("ipv6", C.DNS_TIMEOUT)], C.DNS_TIMEOUT, id="v6-timeout"),
    ],
)
def test_combine_dns(per_family: list[tuple[str, Category]], category: Category) -> None:
    assert combine_dns(per_family) is category  # type: ignore[arg-type]


# --- expectations and roll-up ---------------------------------------------------------

HANDSHAKE_FAILURES = (
    C.REFUSED,
    C.REJECTED,
    C.TIMEOUT,
    C.HOST_UNREACHABLE,
    C.NETWORK_UNREACHABLE,
    C.BLOCKED_LOCALLY,
)
DNS_FAILURES = (
    C.DNS_NXDOMAIN,
    C.DNS_NO_ADDRESS,
    C.DNS_SERVFAIL,
    C.DNS_REFUSED,
    C.DNS_TIMEOUT,
    C.DNS_ERROR,
)


@pytest.mark.parametrize(
    ("expect", "category", "met"),
    [pytest.param("open", C.OPEN, True, id="open-open")]
    + [pytest.param("open", c, False, id=f"open-{c}") for c in HANDSHAKE_FAILURES]
    + [pytest.param("open", c, False, id=f"open-{c}") for c in DNS_FAILURES]
    + [
        pytest.param("open", c, False, id=f"open-{c}")
        for c in (C.SLOW, C.INCONCLUSIVE, C.OUT_OF_SCOPE)
    ]
    + [pytest.param("closed", c, True, id=f"closed-{c}") for c in HANDSHAKE_FAILURES]
    + [pytest.param("closed", c, False, id=f"closed-{c}") for c in DNS_FAILURES]
    + [
        pytest.param("closed", c, False, id=f"closed-{c}")
        for c in (C.OPEN, C.SLOW, C.INCONCLUSIVE, C.OUT_OF_SCOPE, C.RESOLVED)
    ],
)
def test_meets_expectation(expect: str, category: Category, met: bool) -> None:
    assert meets_expectation(expect, category) is met  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expect", "categories", "ok", "category"),
    [
        pytest.param("open", [C.OPEN], True, C.OPEN, id="open-single"),
        pytest.param("open", [C.OPEN, C.OPEN], True, C.OPEN, id="open-all-addresses"),
        pytest.param("open", [C.OPEN, C.REFUSED], False, C.REFUSED, id="open-second-refused"),
        pytest.param(
            "open", [C.TIMEOUT, C.REFUSED], False, C.TIMEOUT, id="open-first-breaker-decides"
        ),
        pytest.param(
            "open",
            [C.OPEN, C.REJECTED, C.TIMEOUT],
            False,
            C.REJECTED,
            id="open-first-breaker-after-open",
        ),
        pytest.param("open", [C.INCONCLUSIVE], False, C.INCONCLUSIVE, id="open-only-inconclusive"),
        pytest.param(
            "open",
            [C.OPEN, C.INCONCLUSIVE],
            False,
            C.INCONCLUSIVE,
            id="open-inconclusive-never-blames-target",
        ),
        pytest.param(
            "open",
            [C.INCONCLUSIVE, C.REFUSED],
            False,
            C.REFUSED,
            id="open-real-failure-beats-earlier-inconclusive",
        ),
        pytest.param(
            "open",
            [C.INCONCLUSIVE, C.OPEN, C.INCONCLUSIVE],
            False,
            C.INCONCLUSIVE,
            id="open-several-inconclusive",
        ),
        pytest.param("open", [C.SLOW, C.OPEN], False, C.SLOW, id="open-slow-breaks"),
        pytest.param("open", [], False, C.DNS_NO_ADDRESS, id="open-no-addresses"),
        pytest.param("closed", [C.REFUSED], True, C.REFUSED, id="closed-refused"),
        pytest.param(
            "closed", [C.TIMEOUT, C.REJECTED], True, C.TIMEOUT, id="closed-met-by-any-failure"
        ),
        pytest.param("closed", [C.REFUSED, C.OPEN], False, C.OPEN, id="closed-second-open"),
        pytest.param(
            "closed", [C.OPEN, C.INCONCLUSIVE], False, C.OPEN, id="closed-open-beats-inconclusive"
        ),
        pytest.param(
            "closed", [C.INCONCLUSIVE, C.OPEN], False, C.OPEN, id="closed-inconclusive-then-open"
        ),
        pytest.param(
            "closed",
            [C.REFUSED, C.INCONCLUSIVE],
            False,
            C.INCONCLUSIVE,
            id="closed-inconclusive-not-a-pass",
        ),
        pytest.param(
            "closed",
            [C.DNS_NXDOMAIN],
            False,
            C.DNS_NXDOMAIN,
            id="closed-dns-failure-never-satisfies",
        ),
        pytest.param(
            "closed",
            [C.OUT_OF_SCOPE],
            False,
            C.OUT_OF_SCOPE,
            id="closed-out-of-scope-is-not-a-pass",
        ),
        pytest.param("closed", [], False, C.DNS_NO_ADDRESS, id="closed-no-addresses"),
    ],
)
def test_roll_up(expect: str, categories: list[Category], ok: bool, category: Category) -> None:
    assert roll_up(expect, categories) == (ok, category)  # type: ignore[arg-type]


# --- hints ----------------------------------------------------------------------------

FIREWALL = icmp4(3, 13, "192.0.2.254")


@pytest.mark.parametrize(
    ("category", "kwargs", "must_mention"),
    [
        pytest.param(C.REFUSED, {"port": 5432}, ["5432", "reset"], id="refused-port"),
        pytest.param(
            C.REJECTED,
            {"port": 443, "icmp": FIREWALL, "target_address": "198.51.100.7"},
            ["192.0.2.254", "firewall", "admin-prohibited", "443"],
            id="rejected-names-firewall",
        ),
        pytest.param(
            C.REJECTED,
            {"port": 22, "icmp": icmp6(1, 4, "2001:db8::9"), "target_address": "2001:db8::10"},
            ["2001:db8::9", "port-unreachable"],
            id="rejected-v6-firewall",
        ),
        pytest.param(
            C.REJECTED, {"port": 22}, ["unknown address", "22"], id="rejected-without-icmp"
        ),
        pytest.param(C.TIMEOUT, {"timeout": 1.5}, ["1.5s", "drops"], id="timeout-seconds"),
        pytest.param(C.TIMEOUT, {"timeout": 3.0}, ["3s"], id="timeout-whole-seconds"),
        pytest.param(
            C.HOST_UNREACHABLE,
            {"icmp": icmp4(3, 1, "192.0.2.1")},
            ["down", "ICMP from 192.0.2.1"],
            id="host-unreachable-router",
        ),
        pytest.param(C.HOST_UNREACHABLE, {}, ["ARP/NDP"], id="host-unreachable-local"),
        pytest.param(
            C.NETWORK_UNREACHABLE,
            {"icmp": icmp4(3, 0, "192.0.2.1")},
            ["no route", "192.0.2.1"],
            id="network-unreachable-router",
        ),
        pytest.param(C.NETWORK_UNREACHABLE, {}, ["no route"], id="network-unreachable-local"),
        pytest.param(
            C.BLOCKED_LOCALLY,
            {"errno_name": "EPERM"},
            ["EPERM", "local"],
            id="blocked-locally-errno",
        ),
        pytest.param(
            C.INCONCLUSIVE,
            {"errno_name": "EMFILE"},
            ["EMFILE", "says nothing about the target"],
            id="inconclusive-errno",
        ),
        pytest.param(C.DNS_NXDOMAIN, {}, ["does not exist"], id="nxdomain"),
        pytest.param(C.DNS_NO_ADDRESS, {"family": "ipv6"}, ["AAAA record"], id="no-address-v6"),
        pytest.param(C.DNS_NO_ADDRESS, {"family": "ipv4"}, ["no A record"], id="no-address-v4"),
        pytest.param(C.DNS_NO_ADDRESS, {}, ["A or AAAA"], id="no-address-any"),
        pytest.param(
            C.DNS_NO_ADDRESS,
            {"detail": "ipv4: sinkholed: 198.18.53.1 answered A with 0.0.0.0 (never probed)"},
            ["sinkholed", "0.0.0.0", "never probed"],
            id="no-address-sinkholed",
        ),
        pytest.param(
            C.DNS_ERROR,
            {
                "detail": "ipv4: 198.18.53.4: nothing listens on its DNS port "
                "(ICMP port unreachable)"
            },
            ["nothing listens", "198.18.53.4"],
            id="dns-error-closed-nameserver-port",
        ),
        pytest.param(C.DNS_SERVFAIL, {}, ["could not answer"], id="servfail"),
        pytest.param(C.DNS_REFUSED, {}, ["refuses"], id="dns-refused"),
        pytest.param(C.DNS_TIMEOUT, {}, ["no DNS answer"], id="dns-timeout"),
        pytest.param(
            C.DNS_ERROR, {"detail": "ipv4: bad name"}, ["ipv4: bad name"], id="dns-error-detail"
        ),
        pytest.param(
            C.SLOW,
            {"latency_ms": 812.4, "budget_ms": 250},
            ["812 ms", "250 ms"],
            id="slow-latency-and-budget",
        ),
        pytest.param(C.OUT_OF_SCOPE, {}, ["scope.allow"], id="out-of-scope"),
    ],
)
def test_hint_mentions_the_key_fact(
    category: Category, kwargs: dict[str, object], must_mention: list[str]
) -> None:
    hint = hint_for(category, **kwargs)  # type: ignore[arg-type]
    assert hint
    for fact in must_mention:
        assert fact in hint


def test_every_failure_category_has_a_hint() -> None:
    for category in Category:
        if category in (C.OPEN, C.RESOLVED):
            continue
        assert HINTS[category], category
        hint = hint_for(
            category,
            port=80,
            timeout=1.0,
            icmp=FIREWALL,
            errno_name="EPERM",
            detail="x",
            latency_ms=5.0,
            budget_ms=1,
        )
        assert hint and "{" not in hint and "None" not in hint, (category, hint)


@pytest.mark.parametrize(
    "category", [pytest.param(C.OPEN, id="open"), pytest.param(C.RESOLVED, id="resolved")]
)
def test_no_hint_for_success(category: Category) -> None:
    assert hint_for(category, port=80) is None


@pytest.mark.parametrize(
    ("icmp", "target_address", "itself"),
    [
        pytest.param(icmp4(3, 3, "198.51.100.7"), "198.51.100.7", True, id="v4-target-itself"),
        pytest.param(icmp6(1, 4, "2001:db8::10"), "2001:db8::10", True, id="v6-target-itself"),
        pytest.param(
            icmp6(1, 4, "2001:db8::10"),
            "2001:DB8:0::10",
            True,
            id="v6-target-itself-other-spelling",
        ),
        pytest.param(icmp4(3, 3, "192.0.2.254"), "198.51.100.7", False, id="v4-firewall"),
        pytest.param(icmp4(3, 3, None), "198.51.100.7", False, id="unknown-sender"),
        pytest.param(icmp4(3, 3, "198.51.100.7"), None, False, id="no-target-address"),
    ],
)
def test_reject_from_target_itself_is_told_apart(
    icmp: IcmpDetail, target_address: str | None, itself: bool
) -> None:
    hint = hint_for(C.REJECTED, port=8443, icmp=icmp, target_address=target_address)
    assert hint is not None and "8443" in hint
    assert ("the target host itself rejects" in hint) is itself
    if not itself:
        assert "a firewall at" in hint


@pytest.mark.parametrize(
    ("icmp", "name"),
    [
        pytest.param(icmp4(3, 3), "port-unreachable 3/3", id="v4-port"),
        pytest.param(icmp4(3, 13), "admin-prohibited 3/13", id="v4-admin"),
        pytest.param(icmp4(3, 10), "host-prohibited 3/10", id="v4-host-prohibited"),
        pytest.param(icmp4(3, 14), "unreachable 3/14", id="v4-unnamed-code"),
        pytest.param(icmp4(11, 0), "time-exceeded 11/0", id="v4-time-exceeded"),
        pytest.param(icmp6(1, 4), "port-unreachable 1/4", id="v6-port"),
        pytest.param(icmp6(1, 1), "admin-prohibited 1/1", id="v6-admin"),
        pytest.param(icmp6(3, 0), "time-exceeded 3/0", id="v6-time-exceeded"),
        pytest.param(icmp4(12, 0), "icmp 12/0", id="v4-other-type"),
        pytest.param(icmp6(2, 0), "icmp 2/0", id="v6-other-type"),
    ],
)
def test_icmp_name(icmp: IcmpDetail, name: str) -> None:
    assert icmp_name(icmp) == name


# --- who sent the ICMP, and latency budgets -------------------------------------------

_T4, _R4 = "198.18.3.13", "198.18.2.2"
_T6, _R6 = "2001:db8:3::13", "2001:db8:2::2"


@pytest.mark.parametrize(
    ("icmp", "target", "category"),
    [
        pytest.param(
            IcmpDetail(3, 1, _T4, "ipv4"), _T4, C.REJECTED, id="v4-host-unreach-from-target"
        ),
        pytest.param(
            IcmpDetail(3, 0, _T4, "ipv4"), _T4, C.REJECTED, id="v4-net-unreach-from-target"
        ),
        pytest.param(
            IcmpDetail(3, 1, _R4, "ipv4"), _T4, C.HOST_UNREACHABLE, id="v4-host-unreach-from-router"
        ),
        pytest.param(
            IcmpDetail(3, 0, _R4, "ipv4"),
            _T4,
            C.NETWORK_UNREACHABLE,
            id="v4-net-unreach-from-router",
        ),
        pytest.param(
            IcmpDetail(1, 3, _T6, "ipv6"), _T6, C.REJECTED, id="v6-addr-unreach-from-target"
        ),
        pytest.param(
            IcmpDetail(1, 0, "2001:DB8:3::13", "ipv6"),
            _T6,
            C.REJECTED,
            id="v6-no-route-from-target-other-spelling",
        ),
        pytest.param(
            IcmpDetail(1, 3, _R6, "ipv6"), _T6, C.HOST_UNREACHABLE, id="v6-addr-unreach-from-router"
        ),
        pytest.param(IcmpDetail(1, 4, _T6, "ipv6"), _T6, C.REJECTED, id="v6-port-unreach-target"),
        pytest.param(IcmpDetail(3, 1, _R4, "ipv4"), None, C.HOST_UNREACHABLE, id="target-unknown"),
    ],
)
def test_unreachable_sent_by_the_target_itself_is_a_reject(
    icmp: IcmpDetail, target: str | None, category: Category
) -> None:
    outcome = ConnectOutcome(113, False, 1.0, icmp)
    assert classify_connect(outcome, ("198.18.1.2",), target) is category


@pytest.mark.parametrize(
    ("category", "latency", "budget", "expected"),
    [
        (C.OPEN, 300.0, 250.0, C.SLOW),
        (C.OPEN, 250.0, 250.0, C.OPEN),
        (C.OPEN, 10.0, 250.0, C.OPEN),
        (C.OPEN, 900.0, None, C.OPEN),
        (C.REFUSED, 900.0, 250.0, C.REFUSED),
        (C.TIMEOUT, 3000.0, 250.0, C.TIMEOUT),
        (C.OPEN, None, 250.0, C.OPEN),
    ],
)
def test_classify_latency(
    category: Category, latency: float | None, budget: float | None, expected: Category
) -> None:
    from scanner.classify import classify_latency

    assert classify_latency(category, latency, budget) is expected


def test_slow_hint_names_latency_and_budget() -> None:
    hint = hint_for(C.SLOW, latency_ms=1012.4, budget_ms=500.0)
    assert hint is not None and "1012 ms" in hint and "500 ms budget" in hint


def test_blocked_locally_hint_names_the_icmp_from_this_host() -> None:
    icmp = IcmpDetail(3, 13, "198.18.1.2", "ipv4")
    hint = hint_for(C.BLOCKED_LOCALLY, icmp=icmp, errno_name="EHOSTUNREACH")
    assert hint is not None and "198.18.1.2" in hint and "admin-prohibited" in hint
    assert "EACCES" in str(hint_for(C.BLOCKED_LOCALLY, errno_name="EACCES"))
