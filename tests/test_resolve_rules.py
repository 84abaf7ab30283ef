"""The resolver's pure rules as tables: resolv.conf, hosts, search list, timeouts, the wire.

Each table row is a case where glibc 2.36's behaviour was observed with ``getent ahosts``
(the lab test tests/lab/test_lab_resolver.py checks the same against real servers).
"""

from __future__ import annotations

import pytest
from dnslib import AAAA, CNAME, QTYPE, RR, A, DNSRecord

from scanner.resolve._idna import IdnaError, to_ascii
from scanner.resolve._search import SearchPlan, Status
from scanner.resolve._system import HostsFile, Nameserver, parse_resolv_conf
from scanner.resolve._transport import server_timeouts
from scanner.resolve._wire import (
    QTYPE_A,
    QTYPE_AAAA,
    Malformed,
    encode_name,
    parse_reply,
    query_body,
)

S = Status
NO_ENV: dict[str, str] = {}


# -- resolv.conf -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        pytest.param(
            None,
            NO_ENV,
            {"nameservers": ("127.0.0.1",), "ndots": 1, "timeout": 5, "attempts": 2},
            id="missing-file-glibc-defaults",
        ),
        pytest.param(
            "nameserver 198.18.53.1\nnameserver 2001:db8::53\nsearch a.test b.test\n"
            "options ndots:5 timeout:1 attempts:3 rotate\n",
            NO_ENV,
            {
                "nameservers": ("198.18.53.1", "2001:db8::53"),
                "search": ("a.test", "b.test"),
                "ndots": 5,
                "timeout": 1,
                "attempts": 3,
                "rotate": True,
            },
            id="the-usual",
        ),
        pytest.param(
            "nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n",
            NO_ENV,
            {"nameservers": ("1.1.1.1", "2.2.2.2", "3.3.3.3")},
            id="at-most-three-nameservers",
        ),
        pytest.param(
            "search lab.test\ndomain corp.test\n",
            NO_ENV,
            {"search": ("corp.test",)},
            id="domain-last-wins",
        ),
        pytest.param(
            "domain lab.test\nsearch corp.test x.test\n",
            NO_ENV,
            {"search": ("corp.test", "x.test")},
            id="search-last-wins",
        ),
        pytest.param(
            "options ndots:99 timeout:99 attempts:99\n",
            NO_ENV,
            {"ndots": 15, "timeout": 30, "attempts": 5},
            id="glibc-limits",
        ),
        pytest.param(
            "# nameserver 9.9.9.9\n; nameserver 8.8.8.8\nnameserver 198.18.0.1 # trailing\n",
            NO_ENV,
            {"nameservers": ("198.18.0.1",)},
            id="comments",
        ),
        pytest.param(
            "nameserver not-an-address\nnameserverX 1.2.3.4\nnameserver fe80::1%eth0\n",
            NO_ENV,
            {"nameservers": ("fe80::1%eth0",)},
            id="bad-lines-ignored-zone-kept",
        ),
        pytest.param(
            "search corp.test\noptions ndots:2\n",
            {"RES_OPTIONS": "ndots:3 attempts:1", "LOCALDOMAIN": "env.test other.test"},
            {"search": ("env.test", "other.test"), "ndots": 3, "attempts": 1},
            id="RES_OPTIONS-and-LOCALDOMAIN",
        ),
        pytest.param(
            "options edns0 use-vc no-tld-query no-aaaa single-request trust-ad\n",
            NO_ENV,
            {
                "edns0": True,
                "use_vc": True,
                "no_tld_query": True,
                "no_aaaa": True,
                "ignored": ("single-request", "trust-ad"),
            },
            id="flags",
        ),
        pytest.param("options attempts:0\n", NO_ENV, {"attempts": 1}, id="at-least-one-try"),
    ],
)
def test_resolv_conf(text: str | None, env: dict[str, str], expected: dict[str, object]) -> None:
    conf = parse_resolv_conf(text, environ=env)
    for key, value in expected.items():
        got = getattr(conf, key)
        if key == "nameservers":
            got = tuple(ns.address for ns in got)
        assert got == value, key


@pytest.mark.parametrize(
    ("text", "address", "port", "label"),
    [
        ("192.0.2.53", "192.0.2.53", 53, "192.0.2.53"),
        ("127.0.0.1:5353", "127.0.0.1", 5353, "127.0.0.1:5353"),
        ("[::1]:5353", "::1", 5353, "[::1]:5353"),
        ("[2001:db8::53]:53", "2001:db8::53", 53, "2001:db8::53"),
        ("2001:db8::53", "2001:db8::53", 53, "2001:db8::53"),
    ],
)
def test_nameserver_forms(text: str, address: str, port: int, label: str) -> None:
    ns = Nameserver.parse(text)
    assert (ns.address, ns.port, ns.label) == (address, port, label)


# -- hosts -------------------------------------------------------------------------------------
HOSTS = """\
127.0.0.1 localhost
198.18.70.1 h4.corp.test h4alias   # a comment
198.18.70.2 h4.corp.test
2001:db8::70 v6.corp.test
198.18.70.9 dotted.test.
010.1.1.1 octal.test
not-an-address broken.test
198.18.70.3
198.18.70.4 MiXeD.Test
"""


@pytest.mark.parametrize(
    ("name", "found"),
    [
        pytest.param("h4alias", (("ipv4", "198.18.70.1"),), id="alias-gives-its-own-line"),
        pytest.param(
            "h4.corp.test",
            (("ipv4", "198.18.70.1"), ("ipv4", "198.18.70.2")),
            id="every-line-naming-it",
        ),
        pytest.param("v6.corp.test", (("ipv6", "2001:db8::70"),), id="ipv6-line"),
        pytest.param("dotted.test.", (("ipv4", "198.18.70.9"),), id="dot-as-written"),
        pytest.param("dotted.test", (), id="no-dot-no-match"),
        pytest.param("mixed.test", (("ipv4", "198.18.70.4"),), id="case-insensitive"),
        pytest.param("octal.test", (), id="inet_pton-strict"),
        pytest.param("broken.test", (), id="bad-address-line-ignored"),
        pytest.param("a-comment", (), id="comment-is-not-a-name"),
    ],
)
def test_hosts_file(name: str, found: tuple[tuple[str, str], ...]) -> None:
    assert HostsFile.parse(HOSTS).lookup(name) == found


# -- the search list ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "ndots", "search", "answers", "asked", "decisive"),
    [
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.SUCCESS},
            ["db.a.test."],
            0,
            id="first-domain",
        ),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.SERVFAIL, "db.b.test.": S.SUCCESS},
            ["db.a.test.", "db.b.test."],
            1,
            id="servfail-goes-on",
        ),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.NODATA},
            ["db.a.test.", "db.b.test.", "db."],
            0,
            id="nodata-goes-on-nodata-wins",
        ),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.TIMEOUT},
            ["db.a.test.", "db."],
            0,
            id="timeout-stops-search-then-as-is",
        ),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.REFUSED},
            ["db.a.test.", "db."],
            0,
            id="refused-stops-search-then-as-is",
        ),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.UNREACHABLE},
            ["db.a.test."],
            0,
            id="closed-port-ends-everything",
        ),
        pytest.param("db.", 1, ("a.test",), {}, ["db."], 0, id="trailing-dot-as-is-only"),
        pytest.param("a.b.", 5, ("a.test",), {}, ["a.b."], 0, id="trailing-dot-beats-ndots"),
        pytest.param(
            "api.lab.test",
            5,
            ("lab.test",),
            {"api.lab.test.lab.test.": S.SUCCESS},
            ["api.lab.test.lab.test."],
            0,
            id="ndots5-search-first",
        ),
        pytest.param(
            "x.y",
            1,
            ("a.test",),
            {},
            ["x.y.", "x.y.a.test."],
            0,
            id="enough-dots-as-is-first-and-it-decides",
        ),
        pytest.param(
            "x.y",
            1,
            ("a.test",),
            {"x.y.a.test.": S.NODATA},
            ["x.y.", "x.y.a.test."],
            0,
            id="as-is-first-outranks-nodata",
        ),
        pytest.param(
            "db",
            0,
            ("a.test",),
            {"db.": S.SERVFAIL, "db.a.test.": S.SUCCESS},
            ["db.", "db.a.test."],
            1,
            id="ndots0",
        ),
        pytest.param("db", 1, (), {}, ["db."], 0, id="no-search-list"),
        pytest.param("db", 1, (".",), {}, ["db."], 0, id="root-on-list-not-twice"),
        pytest.param(
            "db",
            1,
            ("a.test", "b.test"),
            {"db.a.test.": S.SERVFAIL, "db.b.test.": S.NOTFOUND},
            ["db.a.test.", "db.b.test.", "db."],
            0,
            id="servfail-decides-a-failed-name",
        ),
    ],
)
def test_search_plan(
    name: str,
    ndots: int,
    search: tuple[str, ...],
    answers: dict[str, Status],
    asked: list[str],
    decisive: int,
) -> None:
    plan = SearchPlan(name, ndots, search)
    seen = []
    for candidate in plan:
        seen.append(candidate)
        plan.record(answers.get(candidate, S.NOTFOUND))
    assert seen == asked
    assert plan.outcome() == decisive


def test_no_tld_query_skips_the_bare_dotless_name() -> None:
    plan = SearchPlan("db", 1, ("a.test",), no_tld_query=True)
    seen = []
    for candidate in plan:
        seen.append(candidate)
        plan.record(S.NOTFOUND)
    assert seen == ["db.a.test."]


# -- timeouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("timeout", "count", "shares"),
    [
        pytest.param(1, 3, [1, 1, 1], id="t1-3ns-observed-2s-to-the-third"),
        pytest.param(2, 3, [2, 1, 2], id="t2-3ns-observed-5s-a-round"),
        pytest.param(5, 3, [5, 3, 6], id="glibc-default-observed-14s"),
        pytest.param(3, 2, [3, 3], id="t3-2ns-observed-6s"),
        pytest.param(0, 2, [1, 1], id="t0-is-one-second"),
        pytest.param(0.3, 3, [0.3, 0.3, 0.4], id="fractional-never-below-itself"),
        pytest.param(1.5, 2, [1.5, 1.5], id="fractional-share"),
    ],
)
def test_server_timeouts(timeout: float, count: int, shares: list[float]) -> None:
    assert server_timeouts(timeout, count) == pytest.approx(shares)


# -- IDNA --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "ascii"),
    [
        ("straße.corp.test", "xn--strae-oqa.corp.test"),  # IDNA 2003 said "strasse"
        ("Straße.CORP.test.", "xn--strae-oqa.corp.test."),
        ("bücher", "xn--bcher-kva"),
        ("DB.Corp.Test", "DB.Corp.Test"),  # ASCII stays as written, like glibc
        ("xn--strae-oqa.test", "xn--strae-oqa.test"),
    ],
)
def test_idna(name: str, ascii: str) -> None:
    assert to_ascii(name) == ascii


@pytest.mark.parametrize("name", ["a\u200db.test", "ü\\.test"])
def test_idna_refuses(name: str) -> None:
    with pytest.raises(IdnaError):
        to_ascii(name)


# -- the wire ----------------------------------------------------------------------------------
def _reply(name: str, qtype: str, *records: RR, rcode: int = 0, tc: bool = False) -> bytes:
    query = DNSRecord.question(name, qtype)
    reply = query.reply()
    reply.header.rcode = rcode
    reply.header.tc = int(tc)
    for record in records:
        reply.add_answer(record)
    return bytes(reply.pack())


def _question(name: str, qtype: int) -> bytes:
    return encode_name(name).lower() + qtype.to_bytes(2, "big") + b"\x00\x01"


@pytest.mark.parametrize(
    ("qtype", "records", "addresses", "rejected", "sinkholed"),
    [
        pytest.param(
            QTYPE_A, [RR("db.test.", QTYPE.A, rdata=A("198.18.0.1"))], ["198.18.0.1"], 0, 0, id="a"
        ),
        pytest.param(
            QTYPE_AAAA,
            [RR("db.test.", QTYPE.AAAA, rdata=AAAA("2001:db8::1"))],
            ["2001:db8::1"],
            0,
            0,
            id="aaaa",
        ),
        pytest.param(
            QTYPE_A,
            [
                RR("db.test.", QTYPE.CNAME, rdata=CNAME("x.test.")),
                RR("x.test.", QTYPE.CNAME, rdata=CNAME("y.test.")),
                RR("y.test.", QTYPE.A, rdata=A("198.18.0.2")),
            ],
            ["198.18.0.2"],
            0,
            0,
            id="cname-chain",
        ),
        pytest.param(
            QTYPE_A,
            [
                RR("db.test.", QTYPE.A, rdata=A("198.18.0.1")),
                RR("evil.test.", QTYPE.A, rdata=A("198.18.99.9")),
            ],
            ["198.18.0.1"],
            1,
            0,
            id="foreign-owner",
        ),
        pytest.param(
            QTYPE_AAAA, [RR("db.test.", QTYPE.A, rdata=A("198.18.99.8"))], [], 1, 0, id="a-in-aaaa"
        ),
        pytest.param(
            QTYPE_A,
            [
                RR("evil.test.", QTYPE.CNAME, rdata=CNAME("x.test.")),
                RR("x.test.", QTYPE.A, rdata=A("198.18.99.7")),
            ],
            [],
            2,
            0,
            id="foreign-cname-not-followed",
        ),
        pytest.param(
            QTYPE_A, [RR("db.test.", QTYPE.A, rdata=A("0.0.0.0"))], [], 0, 1, id="sinkhole-v4"
        ),
        pytest.param(
            QTYPE_AAAA, [RR("db.test.", QTYPE.AAAA, rdata=AAAA("::"))], [], 0, 1, id="sinkhole-v6"
        ),
        pytest.param(
            QTYPE_A,
            [RR("DB.Test.", QTYPE.A, rdata=A("198.18.0.3"))],
            ["198.18.0.3"],
            0,
            0,
            id="owner-case-insensitive",
        ),
    ],
)
def test_answer_checks(
    qtype: int, records: list[RR], addresses: list[str], rejected: int, sinkholed: int
) -> None:
    data = _reply("db.test", {QTYPE_A: "A", QTYPE_AAAA: "AAAA"}[qtype], *records)
    reply = parse_reply(data, _question("db.test", qtype), qtype)
    assert reply is not None
    assert reply.addresses == addresses
    assert len(reply.rejected) == rejected, reply.rejected
    assert reply.sinkholed == sinkholed


def test_reply_to_another_question_is_not_ours() -> None:
    data = _reply("other.test", "A", RR("other.test.", QTYPE.A, rdata=A("198.18.0.1")))
    assert parse_reply(data, _question("db.test", QTYPE_A), QTYPE_A) is None
    assert parse_reply(data, _question("other.test", QTYPE_AAAA), QTYPE_AAAA) is None
    assert parse_reply(b"\x00" * 11, _question("db.test", QTYPE_A), QTYPE_A) is None


def test_question_case_does_not_matter() -> None:
    data = _reply("DB.TEST", "A", RR("DB.TEST.", QTYPE.A, rdata=A("198.18.0.1")))
    reply = parse_reply(data, _question("db.test", QTYPE_A), QTYPE_A)
    assert reply is not None and reply.addresses == ["198.18.0.1"]


@pytest.mark.parametrize("cut", [1, 3, 8, 12])
def test_cut_reply_is_malformed(cut: int) -> None:
    data = _reply("db.test", "A", RR("db.test.", QTYPE.A, rdata=A("198.18.0.1")))
    with pytest.raises(Malformed):
        parse_reply(data[:-cut], _question("db.test", QTYPE_A), QTYPE_A)


def test_pointer_loop_is_malformed() -> None:
    data = bytearray(_reply("db.test", "A", RR("db.test.", QTYPE.A, rdata=A("198.18.0.1"))))
    answer = len(_reply("db.test", "A"))  # where the answer section starts
    data[answer : answer + 2] = b"\xc0" + bytes([answer])  # the owner points at itself
    with pytest.raises(Malformed):
        parse_reply(bytes(data), _question("db.test", QTYPE_A), QTYPE_A)


def test_flags_and_counts() -> None:
    reply = parse_reply(_reply("db.test", "A", rcode=3, tc=True), _question("db.test", 1), 1)
    assert reply is not None and (reply.rcode, reply.tc, reply.ancount) == (3, True, 0)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("db.corp.test.", b"\x02db\x04corp\x04test\x00"),
        ("db.corp.test", b"\x02db\x04corp\x04test\x00"),
        (".", b"\x00"),
    ],
)
def test_encode_name(name: str, wire: bytes) -> None:
    assert encode_name(name) == wire


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".test", ".".join(["abcdefgh"] * 30)])
def test_encode_name_refuses(name: str) -> None:
    with pytest.raises(ValueError, match=r"label|longer"):
        encode_name(name)


def test_query_is_what_dnslib_reads() -> None:
    body = query_body(encode_name("db.corp.test."), QTYPE_AAAA, edns=True)
    query = DNSRecord.parse(b"\x12\x34" + body)
    assert (query.header.id, query.header.rd, str(query.q.qname)) == (0x1234, 1, "db.corp.test.")
    assert QTYPE[query.q.qtype] == "AAAA" and query.ar[0].rtype == QTYPE.OPT
