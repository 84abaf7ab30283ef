"""The scanner resolves like glibc: name by name against ``getent ahosts``, real servers behind.

One namespace holds the whole DNS world of a client: Unbound (198.18.53.1) as the resolver
the client's resolv.conf names, recursing into BIND 9 (198.18.53.2), authoritative for
corp.test, lab.test (a wildcard), svc, and broken.test (a zone file with an error: BIND
answers SERVFAIL for it); sink.test is an Unbound sinkhole (``always_null``: 0.0.0.0 and
::). Where a server must misbehave — records for other names, an A record in the answer to
AAAA, a malformed reply, a truncated answer whose TCP retry is refused — the project's
dnslib server plays it (198.18.53.3). 198.18.53.4 has nothing listening (ICMP port
unreachable), 198.18.53.5 drops everything (silence).

The namespace has its own /etc/netns/<ns>/resolv.conf, hosts and nsswitch.conf
(``hosts: files dns``). Each row names a resolv.conf, a name and a family; the reference is
glibc in the same namespace: ``getent ahosts`` (family any), ``getent ahostsv4``, and for
IPv6 getaddrinfo(AF_INET6) without AI_V4MAPPED (``getent ahostsv6`` sets it, and then shows
IPv4 addresses as ::ffff:a.b.c.d, which the scanner never probes). The scanner runs as a
user would: ``ip netns exec NS python -m scanner check inv.yaml --format json``. A row
checks the scanner's category and that its addresses are exactly glibc's; the rows marked
``differs`` are the documented differences (the README's resolution section).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scanner.resolve._idna import to_ascii
from tests.test_report_helpers import assert_valid, schema_validator

from . import netns
from .netns import Netns
from .real_dns import Zone, start_bind, start_unbound

REPO = Path(__file__).resolve().parents[2]
UNBOUND, BIND, BAD, CLOSED, SILENT = (f"198.18.53.{i}" for i in range(1, 6))
UNBOUND6, BIND6 = "2001:db8:53::1", "2001:db8:53::2"

CORP = Zone(
    "corp.test",
    [
        "db A 198.18.60.10",
        "db AAAA 2001:db8:60::10",
        "app.svc A 198.18.60.11",
        "v6only AAAA 2001:db8:60::12",
        "www CNAME db",
        "chain1 CNAME chain2",
        "chain2 CNAME www",
        "xn--strae-oqa A 198.18.60.13",  # straße, IDNA 2008 / UTS 46
        "strasse A 198.18.60.14",  # straße, IDNA 2003: the wrong host
        "xn--bcher-kva A 198.18.60.15",  # bücher
        "h4 A 198.18.60.20",
        "h4 AAAA 2001:db8:60::20",
        "txt TXT hello",
        "dangling CNAME gone",
    ],
)
LAB = Zone("lab.test", ["* A 198.18.61.1", "api A 198.18.61.2"])
SVC = Zone("svc", ["app A 198.18.62.1"])
BROKEN = Zone("broken.test", ["x A 198.18.63.1"], broken=True)
BAD_ZONE: dict[str, Any] = {
    "foreign.bad.test": {"A": ["198.18.90.1"], "extra": ["evil.test. 60 A 198.18.99.9"]},
    "wrongtype.bad.test": {
        "A": ["198.18.90.2"],
        "AAAA": [],
        "extra": {"AAAA": ["wrongtype.bad.test. 60 A 198.18.99.8"]},
    },
    "garbled.bad.test": {"rcode": "MALFORMED"},
    "big.bad.test": {"rcode": "TC"},
    "ok.bad.test": {"A": ["198.18.90.4"]},
}
HOSTS = """\
127.0.0.1 localhost
::1 localhost ip6-localhost
198.18.70.1 h4.corp.test h4alias
198.18.70.2 h4.corp.test
0.0.0.0 tracker.corp.test
"""
RESOLV = {
    "search": f"nameserver {UNBOUND}\nsearch broken.test corp.test lab.test\n"
    "options timeout:1 attempts:1\n",
    "ndots5": f"nameserver {UNBOUND}\nsearch lab.test corp.test\n"
    "options ndots:5 timeout:1 attempts:1\n",
    "plain": f"nameserver {UNBOUND6}\nsearch corp.test\noptions timeout:1 attempts:1\n",
    "bind": f"nameserver {BIND}\nsearch corp.test\noptions timeout:1 attempts:1\n",
    "bad": f"nameserver {BAD}\noptions timeout:1 attempts:1\n",
    "closed": f"nameserver {CLOSED}\noptions timeout:1 attempts:2\n",
    "noroute": "nameserver 203.0.113.53\noptions timeout:1 attempts:1\n",  # unrouted test net
    "closed-ok": f"nameserver {CLOSED}\nnameserver {UNBOUND}\noptions timeout:1 attempts:1\n",
    "silent-silent-ok": f"nameserver {SILENT}\nnameserver {SILENT}\nnameserver {UNBOUND}\n"
    "options timeout:1 attempts:1\n",
}


@dataclass(frozen=True)
class Row:
    """One name resolved by glibc and by the scanner under one resolv.conf."""

    id: str
    conf: str
    name: str
    family: str
    category: str
    #: a documented difference: glibc's addresses here, the scanner's are ``addresses``
    differs: tuple[str, ...] | None = None
    #: (candidate, outcome): "resolved" if a family resolved, else the IPv4 (or only) outcome
    trail: tuple[tuple[str, str], ...] | None = None
    detail: str | None = None  # a phrase the dns.result detail must contain
    sources: dict[str, str] = field(default_factory=dict)


R = Row
ROWS: tuple[Row, ...] = (
    # 1. a trailing dot makes a name absolute: asked as written, and only so
    R(
        "abs-dot-as-written",
        "search",
        "app.svc.",
        "any",
        "resolved",
        trail=(("app.svc.", "resolved"),),
    ),
    R("abs-dot-nxdomain", "search", "db.", "any", "dns_nxdomain", trail=(("db.", "dns_nxdomain"),)),
    R(
        "ndots5-relative-takes-wildcard",
        "ndots5",
        "api.lab.test",
        "any",
        "resolved",
        trail=(("api.lab.test.lab.test.", "resolved"),),
    ),
    R(
        "ndots5-absolute-as-written",
        "ndots5",
        "api.lab.test.",
        "any",
        "resolved",
        trail=(("api.lab.test.", "resolved"),),
    ),
    R("ndots5-svc-dot", "ndots5", "app.svc.", "any", "resolved"),
    R("ndots5-svc-relative", "ndots5", "app.svc", "ipv4", "resolved"),
    # 2. hosts file precedence: the file alone, for both families (per family for one)
    R(
        "hosts-v4-line-alone-for-any",
        "plain",
        "h4.corp.test",
        "any",
        "resolved",
        detail="DNS is not asked",
        sources={"ipv4": "/etc/hosts", "ipv6": "/etc/hosts"},
    ),
    R(
        "hosts-v4-line-ipv4",
        "plain",
        "h4.corp.test",
        "ipv4",
        "resolved",
        sources={"ipv4": "/etc/hosts"},
    ),
    R(
        "hosts-v4-line-ipv6-asks-dns",
        "plain",
        "h4.corp.test",
        "ipv6",
        "resolved",
        sources={"ipv6": UNBOUND6},
        detail="DNS asked for ipv6",
    ),
    # 3. an alias gives its own line's addresses only
    R("hosts-alias-own-line", "plain", "h4alias", "any", "resolved"),
    R("hosts-alias-case", "plain", "H4ALIAS", "ipv4", "resolved"),
    # 4. IDNA 2008 / UTS 46, non-transitional (ß stays ß)
    R(
        "idna-sharp-s",
        "plain",
        "straße.corp.test",
        "any",
        "resolved",
        trail=(("xn--strae-oqa.corp.test.", "resolved"),),
    ),
    R("idna-upper", "plain", "Straße.corp.test", "ipv4", "resolved"),
    R("idna-umlaut-relative", "plain", "bücher", "ipv4", "resolved"),
    # 5. the search list: SERVFAIL goes on to the next candidate, NODATA too
    R(
        "search-servfail-goes-on",
        "search",
        "db",
        "any",
        "resolved",
        trail=(("db.broken.test.", "dns_servfail"), ("db.corp.test.", "resolved")),
    ),
    R(
        "search-as-is-then-wildcard",
        "search",
        "x.broken.test",
        "any",
        "resolved",
        trail=(
            ("x.broken.test.", "dns_servfail"),
            ("x.broken.test.broken.test.", "dns_servfail"),
            ("x.broken.test.corp.test.", "dns_nxdomain"),
            ("x.broken.test.lab.test.", "resolved"),
        ),
    ),
    R(
        "search-nodata-goes-on",
        "search",
        "v6only",
        "ipv4",
        "resolved",
        trail=(
            ("v6only.broken.test.", "dns_servfail"),
            ("v6only.corp.test.", "dns_no_address"),
            ("v6only.lab.test.", "resolved"),
        ),
    ),
    R("search-v6only-any", "search", "v6only", "any", "resolved"),
    R("search-wildcard", "search", "anything", "any", "resolved"),
    # 6. a nameserver with nothing listening is not a timeout
    R("closed-port", "closed", "db.corp.test", "any", "dns_error", detail="nothing listens"),
    R(
        "closed-then-working",
        "closed-ok",
        "db.corp.test",
        "any",
        "resolved",
        sources={"ipv4": UNBOUND, "ipv6": UNBOUND},
    ),
    R(
        "no-route-to-nameserver",
        "noroute",
        "db.corp.test",
        "any",
        "dns_error",
        detail="cannot send (ENETUNREACH)",
    ),
    R("truncated-tcp-refused", "bad", "big.bad.test", "ipv4", "dns_error", detail="TCP refused"),
    # 8. the deadline leaves every nameserver its share: the third one answers
    R(
        "silent-silent-working",
        "silent-silent-ok",
        "db.corp.test",
        "any",
        "resolved",
        sources={"ipv4": UNBOUND, "ipv6": UNBOUND},
    ),
    # 11. foreign records are never used
    R("foreign-owner-ignored", "bad", "foreign.bad.test", "any", "resolved", detail="evil.test"),
    R(
        "a-in-aaaa-answer-ignored",
        "bad",
        "wrongtype.bad.test",
        "ipv6",
        "dns_no_address",
        detail="an A record in the answer to AAAA",
    ),
    R("a-in-aaaa-answer-any", "bad", "wrongtype.bad.test", "any", "resolved"),
    # 10. a malformed reply fails only its own name
    R("malformed", "bad", "garbled.bad.test", "ipv4", "dns_error", detail="malformed"),
    R("healthy-beside-malformed", "bad", "ok.bad.test", "ipv4", "resolved"),
    # 12. a sinkhole's 0.0.0.0 / :: is no address (glibc returns it: documented difference)
    R(
        "sinkhole-dns",
        "plain",
        "ads.sink.test",
        "any",
        "dns_no_address",
        differs=("0.0.0.0", "::"),
        detail="sinkholed",
    ),
    R(
        "sinkhole-hosts",
        "plain",
        "tracker.corp.test",
        "ipv4",
        "dns_no_address",
        differs=("0.0.0.0",),
        detail="sinkholed",
    ),
    # the rest of the world: CNAME chains, AAAA-only names, NXDOMAIN, BIND asked directly
    R("cname", "plain", "www.corp.test", "any", "resolved"),
    R("cname-chain-3", "plain", "chain1", "any", "resolved"),
    R("cname-dangling", "plain", "dangling.corp.test", "any", "dns_nxdomain"),
    R("aaaa-only-any", "plain", "v6only.corp.test", "any", "resolved"),
    R("aaaa-only-want-a", "plain", "v6only.corp.test", "ipv4", "dns_no_address"),
    R("txt-only", "plain", "txt", "any", "dns_no_address"),
    R("nxdomain", "plain", "nope.corp.test", "any", "dns_nxdomain"),
    R("bind-direct", "bind", "db", "any", "resolved", sources={"ipv4": BIND, "ipv6": BIND}),
    R("bind-direct-cname", "bind", "chain1.corp.test", "ipv6", "resolved"),
)

# glibc in the namespace: getent for any and ipv4; getaddrinfo(AF_INET6) without V4MAPPED
_REFERENCE = r"""
import json, socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
AI_IDN = 0x0040  # <netdb.h>: what getent sets; Python does not export it

def lookup(job):
    name, family = job
    if family == "ipv6":
        try:
            infos = socket.getaddrinfo(name.encode(), None, socket.AF_INET6, socket.SOCK_STREAM,
                                       0, socket.AI_ADDRCONFIG | AI_IDN)
        except socket.gaierror as exc:
            return {"rc": exc.errno, "addresses": []}
        return {"rc": 0, "addresses": list(dict.fromkeys(i[4][0] for i in infos))}
    db = "ahosts" if family == "any" else "ahostsv4"
    proc = subprocess.run(["getent", db, name], capture_output=True, text=True, timeout=60)
    addresses = list(dict.fromkeys(line.split()[0] for line in proc.stdout.splitlines()))
    return {"rc": proc.returncode, "addresses": addresses}

jobs = json.load(sys.stdin)
with ThreadPoolExecutor(16) as pool:
    print(json.dumps(list(pool.map(lookup, jobs))))
"""


def shown(name: str) -> str:
    """How the inventory shows a name: lower case, A-labels, a trailing dot kept."""
    return to_ascii(name).lower()


_CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("CARES_HOSTS", "RES_OPTIONS", "LOCALDOMAIN", "HOSTALIASES")
}


@dataclass
class World:
    ns: Netns
    workdir: Path

    def use(self, conf: str) -> None:
        self.ns.write_etc("resolv.conf", RESOLV[conf])

    def run(self, argv: list[str], stdin: str | None = None, timeout: float = 120) -> Any:
        return subprocess.run(
            self.ns.exec_argv(["env", "LC_ALL=C.UTF-8", *argv]),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_CLEAN_ENV,
            cwd=REPO,
            check=False,
        )

    def glibc(self, jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        proc = self.run([sys.executable, "-c", _REFERENCE], stdin=json.dumps(jobs))
        assert proc.returncode == 0, proc.stderr
        return list(json.loads(proc.stdout))

    def scan(self, jobs: list[tuple[str, str]], resolver: str = "") -> list[dict[str, Any]]:
        """One scanner run over ``jobs``; the dns.result event of each (name, family)."""
        lines = ["version: 1", "defaults: {timeout: 0.5, retries: 0}"]
        if resolver:
            lines.append(f"resolver: {resolver}")
        lines.append("targets:")
        lines += [
            f"  - {{name: t{i}, host: {json.dumps(name)}, port: 9, family: {family}}}"
            for i, (name, family) in enumerate(jobs)
        ]
        inventory = self.workdir / "inventory.yaml"
        inventory.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = self.run(
            [sys.executable, "-m", "scanner", "check", str(inventory), "--format", "json"]
        )
        assert proc.returncode in (0, 1, 3), proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        found = {(e["host"], e["family"]): e for e in events if e["event"] == "dns.result"}
        missing = [job for job in jobs if (shown(job[0]), job[1]) not in found]
        assert not missing, f"no dns.result for {missing}: {proc.stderr[-3000:]}"
        return [found[(shown(name), family)] for name, family in jobs]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The namespace, its servers and its /etc files; torn down at the end of the module."""
    reason = netns.netns_available()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"network lab unavailable in CI: {reason}", pytrace=False)
        pytest.skip(f"network lab unavailable: {reason}")
    workdir = tmp_path_factory.mktemp("resolver")
    ns = Netns(f"{netns.run_id()}-res")
    try:
        ns.ip(
            "link add dummy0 type veth peer name dummy1", "link set dummy0 up", "link set dummy1 up"
        )
        ns.add_addresses(
            "dummy0", *(f"198.18.53.{i}/24" for i in range(1, 6)), f"{UNBOUND6}/64", f"{BIND6}/64"
        )
        ns.sysctl(
            {
                "net.ipv4.icmp_ratelimit": 0,
                "net.ipv6.icmp.ratelimit": 0,
                "net.ipv4.icmp_msgs_per_sec": 1000000,
                "net.ipv4.icmp_msgs_burst": 1000000,
            }
        )
        ns.nft(
            "table inet lab {\n chain input {\n"
            "  type filter hook input priority 0; policy accept;\n"
            f"  ip daddr {SILENT} meta l4proto {{ tcp, udp }} drop\n }}\n}}\n"
        )
        start_bind(ns, workdir, [BIND, BIND6], [CORP, LAB, SVC, BROKEN])
        stubs = {z.origin: [BIND] for z in (CORP, LAB, SVC, BROKEN)}
        start_unbound(
            ns, workdir, [UNBOUND, UNBOUND6], stubs=stubs, local_zones={"sink.test": "always_null"}
        )
        zone_path = workdir / "bad.json"
        zone_path.write_text(json.dumps(BAD_ZONE), encoding="utf-8")
        ns.spawn(
            [
                sys.executable,
                "-m",
                "scanner.testing.dns_server",
                "--zone",
                str(zone_path),
                "--host",
                BAD,
                "--port",
                "53",
            ],
            ready_line="listening",
            cwd=REPO,
        )
        ns.write_etc("nsswitch.conf", "hosts: files dns\n")
        ns.write_etc("hosts", HOSTS)
        ns.write_etc("resolv.conf", RESOLV["plain"])
        yield World(ns, workdir)
    finally:
        ns.delete()


@pytest.fixture(scope="module")
def observed(world: World) -> dict[str, tuple[dict[str, Any], dict[str, Any], float]]:
    """Every row resolved by glibc and by the scanner, one batch per resolv.conf."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {}
    for conf in RESOLV:
        rows = [r for r in ROWS if r.conf == conf]
        if not rows:
            continue
        world.use(conf)
        jobs = [(r.name, r.family) for r in rows]
        started = time.monotonic()
        scanned = world.scan(jobs)
        elapsed = time.monotonic() - started
        for row, ref, dns in zip(rows, world.glibc(jobs), scanned, strict=True):
            out[row.id] = (ref, dns, elapsed)
    return out


def _step_outcome(families: dict[str, str]) -> str:
    if "resolved" in families.values():
        return "resolved"
    return families.get("ipv4") or next(iter(families.values()))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_resolves_like_getent(
    observed: dict[str, tuple[dict[str, Any], dict[str, Any], float]], row: Row
) -> None:
    glibc, dns, _ = observed[row.id]
    assert dns["host"] == shown(row.name), "the name is shown as written (a dot stays)"
    assert dns["category"] == row.category, dns
    if row.differs is None:
        assert set(dns["addresses"]) == set(glibc["addresses"]), (glibc, dns)
        assert (glibc["rc"] == 0) is (row.category == "resolved"), glibc
    else:
        assert set(glibc["addresses"]) == set(row.differs), glibc
        assert dns["addresses"] == [], dns
    if row.trail is not None:
        got = [(step["name"], _step_outcome(step["families"])) for step in dns["trail"]]
        assert got == list(row.trail), dns["trail"]
    if row.detail is not None:
        assert row.detail in (dns["detail"] or ""), dns
    for family, source in row.sources.items():
        assert dns["sources"][family] == source, dns


def test_rows_cover_both_sides(
    observed: dict[str, tuple[dict[str, Any], dict[str, Any], float]],
) -> None:
    """The table is not vacuous: glibc resolves most rows, and fails some."""
    outcomes = [ref["rc"] == 0 for ref, _dns, _ in observed.values()]
    assert sum(outcomes) >= 20 and outcomes.count(False) >= 6


def test_every_dns_result_matches_the_events_schema(
    observed: dict[str, tuple[dict[str, Any], dict[str, Any], float]],
) -> None:
    validator = schema_validator("events")
    for _glibc, dns, _ in observed.values():
        assert_valid(validator, dns)
        assert dns["trail"] and dns["sources"], dns


def test_nameservers_share_the_deadline(
    observed: dict[str, tuple[dict[str, Any], dict[str, Any], float]],
) -> None:
    """[silent, silent, working], timeout:1 from resolv.conf: ~1 s each for the silent ones."""
    _glibc, dns, _ = observed["silent-silent-working"]
    assert 1900 <= dns["latency_ms"] < 3500, dns


def test_closed_port_is_told_at_once(
    observed: dict[str, tuple[dict[str, Any], dict[str, Any], float]],
) -> None:
    """ICMP port unreachable is an answer of sorts: no waiting for the timeout (2 tries of 1 s)."""
    _glibc, dns, _ = observed["closed-port"]
    assert dns["latency_ms"] < 500, dns
    _glibc, dns, _ = observed["closed-then-working"]  # and the next nameserver is asked at once
    assert dns["latency_ms"] < 500, dns


def test_resolv_conf_options_apply_unless_the_inventory_sets_its_own(world: World) -> None:
    """timeout:1 attempts:1 from resolv.conf; the inventory's timeout replaces it."""
    world.use("silent-silent-ok")
    jobs = [("db.corp.test", "ipv4")]
    from_conf = world.scan(jobs)[0]
    from_inventory = world.scan(jobs, resolver="{timeout: 0.3, tries: 1}")[0]
    assert from_conf["category"] == from_inventory["category"] == "resolved"
    assert 1900 <= from_conf["latency_ms"] < 3500, from_conf  # 1 s + 1 s, then the answer
    assert from_inventory["latency_ms"] < 1500, from_inventory  # 0.3 s + 0.3 s


def test_names_of_several_targets_in_two_workers_resolve_like_glibc(world: World) -> None:
    """Names each the host of several targets, scanned by two workers (the split that keeps
    each name in one process): every name asked once, each with glibc's addresses, from
    Unbound recursing into BIND, and every target once."""
    world.use("plain")
    names = ["db.corp.test", "h4.corp.test", "www.corp.test", "api.lab.test"]
    names += [f"w{i}.lab.test" for i in range(60)]  # the wildcard
    lines = ["version: 1", "defaults: {timeout: 0.5, retries: 0, family: ipv4}", "targets:"]
    lines += [f"  - {{host: {name}, ports: [9, 10]}}" for name in names]
    lines += [f"  - {name}:11" for name in names[:4]]  # and in another entry of their own
    inventory = world.workdir / "workers.yaml"
    inventory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["check", str(inventory), "--format", "json", "--workers", "2"]
    proc = world.run([sys.executable, "-m", "scanner", *argv])
    assert proc.returncode in (0, 1), proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    asked = [e["host"] for e in events if e["event"] == "dns.result"]
    assert sorted(asked) == sorted(names)  # each name once, in one of the two processes
    addresses = {e["host"]: e["addresses"] for e in events if e["event"] == "dns.result"}
    reference = world.glibc([(name, "ipv4") for name in names])
    assert all(ref["rc"] == 0 and ref["addresses"] for ref in reference), reference
    assert [addresses[name] for name in names] == [ref["addresses"] for ref in reference]
    results = [e["target"] for e in events if e["event"] == "target.result"]
    assert len(results) == len(set(results)) == 2 * len(names) + 4
