"""The lab: client — router1 — router2 — server, dual stack, with every fault staged at once.

Why one lab with all faults staged side by side (instead of one lab per fault): building
namespaces costs about a second, probing costs a timeout; with a distinct destination address
per scenario every fault coexists, the lab is built once per test session, and a whole table of
probes runs in parallel.

::

    client ─── router1 ─── router2 ─── server (+ DNS at .53 / ::53)
    198.18.1.0/24   198.18.2.0/24   198.18.3.0/24        (IPv4)
    2001:db8:1::/64 2001:db8:2::/64 2001:db8:3::/64      (IPv6)

``SCENARIOS`` is the ground truth: for each destination, what a plain socket in the client sees
(errno, ICMP type/code and which hop sent it) and the SPEC §4 category the scanner must report.
The scanner's own lab tests use it; ``tests/lab/test_lab_topology.py`` proves it against the
kernel with plain sockets. ``DNS_NAMES`` is the same for name resolution.

Outside pytest (benchmarks, by hand)::

    with Lab() as lab:                      # ~0.6 s to build, torn down on exit
        lab.scanner("check", "inv.yaml", "--format", "json")   # runs as the client
        lab.probe([("198.18.3.13", 80, 1.5)])                   # plain-socket ground truth

``BENCH_NET`` (198.18.128.0/20, 2001:db8:80::/64) answers on ``OPEN_PORTS`` everywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import netns
from .netns import Netns

REPO_ROOT = Path(__file__).resolve().parents[2]
SOCKPROBE = Path(__file__).resolve().with_name("sockprobe.py")

# ---- addresses --------------------------------------------------------------------------------
CLIENT = {"ipv4": "198.18.1.2", "ipv6": "2001:db8:1::2"}
ROUTER1 = {"ipv4": "198.18.1.1", "ipv6": "2001:db8:1::1"}  # as the client sees it
ROUTER1_CORE = {"ipv4": "198.18.2.1", "ipv6": "2001:db8:2::1"}  # on the r1-r2 link
ROUTER2 = {"ipv4": "198.18.2.2", "ipv6": "2001:db8:2::2"}  # as router1 (and ICMP) sees it
ROUTER2_EDGE = {"ipv4": "198.18.3.1", "ipv6": "2001:db8:3::1"}  # on the server's subnet
SERVER = {"ipv4": "198.18.3.10", "ipv6": "2001:db8:3::10"}  # the plain, healthy address
DNS = {"ipv4": "198.18.3.53", "ipv6": "2001:db8:3::53"}  # scanner.testing.dns_server
DNS_DEAD = {"ipv4": "198.18.3.54", "ipv6": "2001:db8:3::54"}  # host up, nothing on udp/53
DNS_DROPPED = {"ipv4": "198.18.3.12", "ipv6": "2001:db8:3::12"}  # silently dropped at server
# A whole range the server answers on (AnyIP local route), for benchmarks: port 80/443/8080
# open on every address, any other port refused.
BENCH_NET = {"ipv4": "198.18.128.0/20", "ipv6": "2001:db8:80::/64"}
OPEN_PORTS = (80, 443, 8080)
CLOSED_PORT = 81
# Neighbour resolution tuned so ARP/NDP failure takes ~0.75 s instead of the default ~3 s.
NEIGH_RETRANS_MS = 250
NEIGH_PROBES = 3


def _v4(host: int, net: int = 3) -> str:
    return f"198.18.{net}.{host}"


def _v6(host: int, net: int = 3) -> str:
    return f"2001:db8:{net:x}::{host}"


# ---- the ground truth -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One destination in the lab and what the client must observe when connecting to it.

    ``errno`` is what a plain non-blocking connect reports (None: handshake completed,
    ``"timeout"``: nothing within ``timeout_s``). ``icmp_*`` come from the socket error queue
    (None: nothing queued). ``icmp_from_role`` says which box sent it: target / router1 /
    router2 / client. ``category`` is the SPEC §4 category the scanner must report.
    """

    name: str
    family: str  # "ipv4" | "ipv6"
    address: str
    port: int
    category: str
    errno: str | None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_from: str | None = None
    icmp_from_role: str | None = None
    where: str = ""  # which box does it
    what: str = ""  # what that box does, in one line
    max_latency_ms: int | None = None  # only for "slow"
    timeout_s: float = 1.5  # a timeout that is enough to see the outcome in this lab

    @property
    def base(self) -> str:
        return self.name.rsplit("-", 1)[0]

    @property
    def dns_name(self) -> str:
        """A name with this scenario's A and AAAA in the lab DNS (``<base>.scn.lab.test``)."""
        return f"{self.base}.scn.lab.test"

    @property
    def endpoint(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if self.family == "ipv6"
            else (f"{self.address}:{self.port}")
        )


# ICMP (type, code) per reject kind and family; nft's names for them.
_ICMP = {
    "port": {
        "ipv4": (3, 3, "icmp type port-unreachable"),
        "ipv6": (1, 4, "icmpv6 type port-unreachable"),
    },
    "host": {
        "ipv4": (3, 1, "icmp type host-unreachable"),
        "ipv6": (1, 3, "icmpv6 type addr-unreachable"),
    },
    "admin": {
        "ipv4": (3, 13, "icmp type admin-prohibited"),
        "ipv6": (1, 1, "icmpv6 type admin-prohibited"),
    },
    "net": {"ipv4": (3, 0, "icmp type net-unreachable"), "ipv6": (1, 0, "icmpv6 type no-route")},
}
# errno a connect() gets for each ICMP kind (Linux icmp_err_convert / icmpv6_err_convert).
_ICMP_ERRNO = {
    "port": {"ipv4": "ECONNREFUSED", "ipv6": "ECONNREFUSED"},
    "host": {"ipv4": "EHOSTUNREACH", "ipv6": "EHOSTUNREACH"},
    "admin": {"ipv4": "EHOSTUNREACH", "ipv6": "EACCES"},
    "net": {"ipv4": "ENETUNREACH", "ipv6": "ENETUNREACH"},
}
# (host number on the server subnet, fault kind) per box that stages filter faults.
_FILTER_FAULTS = {
    "server": {11: "rst", 12: "drop", 13: "port", 14: "host", 15: "admin", 16: "net"},
    "router1": {21: "drop", 22: "rst", 23: "port", 24: "host", 25: "admin", 26: "net"},
    "router2": {31: "drop", 32: "rst", 33: "port", 34: "host", 35: "admin", 36: "net"},
    "client": {41: "rst", 42: "drop", 43: "port", 44: "admin"},
}
_ROLE_ADDR = {"router1": ROUTER1, "router2": ROUTER2, "client": CLIENT}
SLOW_HOST = 50  # router2 drops the first SYN of each connection: handshake takes ~1 s (RTO)
NO_HOST = 200  # on a connected subnet, nobody answers ARP/NDP


def _filter_scenario(where: str, host: int, kind: str, family: str) -> Scenario:
    address = _v4(host) if family == "ipv4" else _v6(host)
    name = f"{where}-{kind}-{'v4' if family == 'ipv4' else 'v6'}"
    common: dict[str, Any] = {
        "name": name,
        "family": family,
        "address": address,
        "port": 80,
        "where": where,
    }
    if kind == "drop":
        return Scenario(**common, category="timeout", errno="timeout", what="nft drop (silent)")
    if kind == "rst":
        return Scenario(
            **common,
            category="refused",
            errno="ECONNREFUSED",
            what="nft reject with tcp reset (RST forged with the target's address)",
        )
    icmp_type, icmp_code, nft_name = _ICMP[kind][family]
    role = "target" if where == "server" else where
    sender = address if where == "server" else _ROLE_ADDR[where][family]
    if where == "client":
        category = "blocked_locally"  # our own OUTPUT chain: ICMP from our own address
    elif where == "server" or kind in ("port", "admin"):
        category = "rejected"  # the target itself answered, or the code only a filter sends
    else:
        category = {"host": "host_unreachable", "net": "network_unreachable"}[kind]
    return Scenario(
        **common,
        category=category,
        errno=_ICMP_ERRNO[kind][family],
        icmp_type=icmp_type,
        icmp_code=icmp_code,
        icmp_from=sender,
        icmp_from_role=role,
        what=f"nft reject with {nft_name}",
    )


def _scenarios(family: str) -> list[Scenario]:
    v = "v4" if family == "ipv4" else "v6"
    a = _v4 if family == "ipv4" else _v6
    unreach_type = 3 if family == "ipv4" else 1
    host_code = 1 if family == "ipv4" else 3
    out = [
        Scenario(
            f"open-{v}",
            family,
            SERVER[family],
            80,
            "open",
            None,
            where="server",
            what="listener on 80/443/8080",
        ),
        Scenario(
            f"closed-{v}",
            family,
            SERVER[family],
            CLOSED_PORT,
            "refused",
            "ECONNREFUSED",
            where="server",
            what="nothing listening: the server's kernel sends RST",
        ),
        Scenario(
            f"anyip-{v}",
            family,
            a(77, 128) if family == "ipv4" else _v6(77, 0x80),
            80,
            "open",
            None,
            where="server",
            what="AnyIP benchmark range (local route on lo)",
        ),
        Scenario(
            f"slow-{v}",
            family,
            a(SLOW_HOST),
            80,
            "slow",
            None,
            where="router2",
            what="first SYN of each connection dropped; retransmission 1 s later passes",
            max_latency_ms=500,
        ),
    ]
    for where, faults in _FILTER_FAULTS.items():
        out += [_filter_scenario(where, host, kind, family) for host, kind in faults.items()]
    out += [
        Scenario(
            f"nohost-{v}",
            family,
            a(NO_HOST),
            80,
            "host_unreachable",
            "EHOSTUNREACH",
            unreach_type,
            host_code,
            ROUTER2[family],
            "router2",
            where="router2",
            what="address on router2's connected subnet, no host: ARP/NDP fails",
        ),
        Scenario(
            f"nohost-local-{v}",
            family,
            a(NO_HOST, 1),
            80,
            "host_unreachable",
            "EHOSTUNREACH",
            unreach_type,
            host_code,
            CLIENT[family],
            "client",
            where="client",
            what="address on the client's own subnet: ARP/NDP fails",
        ),
        Scenario(
            f"route-unreachable-{v}",
            family,
            a(1, 8),
            80,
            "host_unreachable" if family == "ipv4" else "network_unreachable",
            "EHOSTUNREACH" if family == "ipv4" else "ENETUNREACH",
            unreach_type,
            1 if family == "ipv4" else 0,
            ROUTER2[family],
            "router2",
            where="router2",
            what="`ip route add unreachable` at router2",
        ),
        Scenario(
            f"route-prohibit-{v}",
            family,
            a(1, 9),
            80,
            "rejected",
            "EHOSTUNREACH" if family == "ipv4" else "EACCES",
            unreach_type,
            13 if family == "ipv4" else 1,
            ROUTER1[family],
            "router1",
            where="router1",
            what="`ip route add prohibit` at router1",
        ),
        Scenario(
            f"route-blackhole-{v}",
            family,
            a(1, 10),
            80,
            "timeout",
            "timeout",
            where="router2",
            what="`ip route add blackhole` at router2",
        ),
        Scenario(
            f"noroute-router1-{v}",
            family,
            "198.19.200.1" if family == "ipv4" else "2001:db8:7fff::1",
            80,
            "network_unreachable",
            "ENETUNREACH",
            unreach_type,
            0,
            ROUTER1[family],
            "router1",
            where="router1",
            what="router1 has no route (no default route)",
        ),
        Scenario(
            f"noroute-local-{v}",
            family,
            "203.0.113.1" if family == "ipv4" else "2001:db8:ff00::1",
            80,
            "network_unreachable",
            "ENETUNREACH",
            where="client",
            what="the client has no route: connect() fails at once, no packet sent",
        ),
        Scenario(
            f"prohibit-local-{v}",
            family,
            a(1, 7),
            80,
            "blocked_locally",
            "EACCES",
            where="client",
            what="`ip route add prohibit` in the client: local policy",
        ),
    ]
    return out


SCENARIOS: tuple[Scenario, ...] = tuple(_scenarios("ipv4") + _scenarios("ipv6"))
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class DnsName:
    """A name the client resolves in the lab and the expected SPEC §4 outcome per family.

    ``ipv4`` / ``ipv6``: the addresses the resolver must return for A / AAAA, or a dns_*
    category when that lookup must fail. ``source``: "dns" or "hosts" (client's /etc/hosts).
    """

    name: str
    ipv4: tuple[str, ...] | str
    ipv6: tuple[str, ...] | str
    source: str = "dns"
    what: str = ""


_OK4, _OK6 = (SERVER["ipv4"],), (SERVER["ipv6"],)
DNS_NAMES: tuple[DnsName, ...] = (
    DnsName("ok.lab.test", _OK4, _OK6, what="A and AAAA, both open"),
    DnsName("v4only.lab.test", _OK4, "dns_no_address", what="A only (AAAA: NOERROR, no data)"),
    DnsName("v6only.lab.test", "dns_no_address", _OK6, what="AAAA only"),
    DnsName(
        "noaddr.lab.test", "dns_no_address", "dns_no_address", what="name exists, no A and no AAAA"
    ),
    DnsName("missing.lab.test", "dns_nxdomain", "dns_nxdomain", what="not in the zone"),
    DnsName("servfail.lab.test", "dns_servfail", "dns_servfail", what="SERVFAIL for every type"),
    DnsName("refused.lab.test", "dns_refused", "dns_refused", what="REFUSED for every type"),
    DnsName("silent.lab.test", "dns_timeout", "dns_timeout", what="the server never answers"),
    DnsName("half.lab.test", _OK4, "dns_servfail", what="A answers, AAAA gets SERVFAIL"),
    DnsName("alias.lab.test", _OK4, _OK6, what="CNAME -> ok.lab.test"),
    DnsName("chain.lab.test", _OK4, _OK6, what="CNAME chain of 3 -> ok.lab.test"),
    DnsName(
        "dangling.lab.test",
        "dns_nxdomain",
        "dns_nxdomain",
        what="CNAME to a name that does not exist",
    ),
    DnsName(
        "v4good.lab.test",
        _OK4,
        (DNS_DROPPED["ipv6"],),
        what="dual stack: IPv4 open, IPv6 address silently dropped (timeout)",
    ),
    DnsName(
        "v6good.lab.test",
        (_v4(11),),
        _OK6,
        what="dual stack: IPv6 open, IPv4 address answers RST (refused)",
    ),
    DnsName("hosts.lab.test", _OK4, _OK6, source="hosts", what="only in the client's /etc/hosts"),
    DnsName(
        "override.lab.test",
        _OK4,
        _OK6,
        source="hosts",
        what="in /etc/hosts (open) and in DNS (dropped address): hosts wins",
    ),
)


def zone() -> dict[str, dict[str, Any]]:
    """The lab's DNS zone in scanner.testing.dns_server's format."""
    z: dict[str, dict[str, Any]] = {}
    for entry in DNS_NAMES:
        if entry.source != "dns" or entry.ipv4 == "dns_nxdomain":
            continue
        record: dict[str, Any] = {}
        for qtype, value in (("A", entry.ipv4), ("AAAA", entry.ipv6)):
            if isinstance(value, tuple):
                record[qtype] = list(value)
            elif value in ("dns_servfail",):
                record[qtype] = "SERVFAIL"
        z[entry.name] = record
    z["servfail.lab.test"] = {"rcode": "SERVFAIL"}
    z["refused.lab.test"] = {"rcode": "REFUSED"}
    z["silent.lab.test"] = {"rcode": "DROP"}
    z["alias.lab.test"] = {"CNAME": "ok.lab.test"}
    z["chain.lab.test"] = {"CNAME": "chain2.lab.test"}
    z["chain2.lab.test"] = {"CNAME": "chain3.lab.test"}
    z["chain3.lab.test"] = {"CNAME": "ok.lab.test"}
    z["dangling.lab.test"] = {"CNAME": "gone.lab.test"}
    z["override.lab.test"] = {"A": [DNS_DROPPED["ipv4"]], "AAAA": [DNS_DROPPED["ipv6"]]}
    for base in sorted({s.base for s in SCENARIOS}):
        by_family = {s.family: s.address for s in SCENARIOS if s.base == base}
        z[f"{base}.scn.lab.test"] = {"A": [by_family["ipv4"]], "AAAA": [by_family["ipv6"]]}
    return z


HOSTS_FILE = f"""\
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
{SERVER["ipv4"]} hosts.lab.test override.lab.test
{SERVER["ipv6"]} hosts.lab.test override.lab.test
"""
RESOLV_CONF = f"""\
# lab client: only the lab's DNS server
nameserver {DNS["ipv4"]}
nameserver {DNS["ipv6"]}
options timeout:1 attempts:1
"""

# ---- nft rulesets -----------------------------------------------------------------------------
_L4 = "meta l4proto { tcp, udp }"  # never ICMP: ping and IPv6 neighbour discovery stay intact


def _rule(family: str, address: str, kind: str) -> str:
    match = f"{'ip' if family == 'ipv4' else 'ip6'} daddr {address}"
    if kind == "drop":
        return f"{match} {_L4} drop"
    if kind == "rst":
        return f"{match} meta l4proto tcp reject with tcp reset"
    return f"{match} {_L4} reject with {_ICMP[kind][family][2]}"


def ruleset(where: str) -> str:
    """The nft ruleset for one box: table ``inet lab`` with the faults staged there."""
    hook = {"server": "input", "client": "output"}.get(where, "forward")
    rules = [
        _rule(family, _v4(host) if family == "ipv4" else _v6(host), kind)
        for host, kind in _FILTER_FAULTS.get(where, {}).items()
        for family in ("ipv4", "ipv6")
    ]
    sets = ""
    if where == "router2":  # "slow": drop the first SYN of every connection to SLOW_HOST
        sets = (
            "  set synseen4 { type ipv4_addr . inet_service; flags dynamic,timeout; "
            "timeout 60s; }\n"
            "  set synseen6 { type ipv6_addr . inet_service; flags dynamic,timeout; "
            "timeout 60s; }\n"
        )
        rules += [
            f"ip daddr {_v4(SLOW_HOST)} tcp flags & (syn | ack) == syn "
            "ip saddr . tcp sport != @synseen4 add @synseen4 { ip saddr . tcp sport } drop",
            f"ip6 daddr {_v6(SLOW_HOST)} tcp flags & (syn | ack) == syn "
            "ip6 saddr . tcp sport != @synseen6 add @synseen6 { ip6 saddr . tcp sport } drop",
        ]
    body = "".join(f"    {r}\n" for r in rules)
    return (
        f"table inet lab {{\n{sets}"
        f"  chain {hook} {{\n    type filter hook {hook} priority 0; policy accept;\n"
        f"{body}  }}\n}}\n"
    )


# ---- the listener -----------------------------------------------------------------------------
LISTENER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True,
                             backlog=4096, reuse_port=True)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("listening", *sys.argv[1:], flush=True)
while True:
    for key, _ in sel.select():
        try:
            conn, _ = key.fileobj.accept()
        except OSError:
            continue
        conn.close()
"""

_SYSCTL_ALL = {
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.all.accept_ra": 0,
    "net.ipv6.conf.default.accept_ra": 0,
    "net.ipv4.conf.all.rp_filter": 0,
    "net.ipv4.conf.default.rp_filter": 0,
    # Rejects must always be sent: no per-destination or global ICMP rate limit.
    "net.ipv4.icmp_ratelimit": 0,
    "net.ipv4.icmp_ratemask": 0,
    "net.ipv4.icmp_msgs_per_sec": 1000000,
    "net.ipv4.icmp_msgs_burst": 1000000,
    "net.ipv6.icmp.ratelimit": 0,
}
_SYSCTL_ROUTER = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}


class Lab:
    """Four namespaces wired and configured; ``close()`` (or the context manager) tears down.

    Attributes: ``client``, ``router1``, ``router2``, ``server`` (``Netns``), ``build_s``.
    """

    def __init__(self) -> None:
        netns.cleanup_stale()
        self.prefix = netns.run_id()
        self.namespaces: list[Netns] = []
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        started = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_s = time.monotonic() - started

    # -- construction ---------------------------------------------------------------------------
    def _ns(self, role: str, sysctls: dict[str, Any]) -> Netns:
        ns = Netns(f"{self.prefix}-{role}")
        self.namespaces.append(ns)
        ns.sysctl(sysctls)  # before the veths exist, so "default" applies to them
        return ns

    def _build(self) -> None:
        self.client = self._ns("client", _SYSCTL_ALL)
        self.router1 = self._ns("router1", {**_SYSCTL_ALL, **_SYSCTL_ROUTER})
        self.router2 = self._ns("router2", {**_SYSCTL_ALL, **_SYSCTL_ROUTER})
        self.server = self._ns("server", _SYSCTL_ALL)
        netns.veth(self.client, "eth0", self.router1, "west")
        netns.veth(self.router1, "east", self.router2, "west")
        netns.veth(self.router2, "east", self.server, "eth0")

        def addrs(dev: str, v4: Sequence[str], v6: Sequence[str]) -> list[str]:
            return [f"addr add {a}/24 dev {dev}" for a in v4] + [
                f"addr add {a}/64 dev {dev} nodad" for a in v6
            ]

        self.client.ip(
            *addrs("eth0", [CLIENT["ipv4"]], [CLIENT["ipv6"]]),
            f"route add 198.18.0.0/15 via {ROUTER1['ipv4']}",
            f"route add 2001:db8::/33 via {ROUTER1['ipv6']}",
            "route add prohibit 198.18.7.0/24",
            "route add prohibit 2001:db8:7::/64",
        )
        self.router1.ip(
            *addrs("west", [ROUTER1["ipv4"]], [ROUTER1["ipv6"]]),
            *addrs("east", [ROUTER1_CORE["ipv4"]], [ROUTER1_CORE["ipv6"]]),
            *[
                f"route add {net} via {ROUTER2['ipv4']}"
                for net in ("198.18.3.0/24", "198.18.8.0/24", "198.18.10.0/24", BENCH_NET["ipv4"])
            ],
            *[
                f"route add {net} via {ROUTER2['ipv6']}"
                for net in (
                    "2001:db8:3::/64",
                    "2001:db8:8::/64",
                    "2001:db8:a::/64",
                    BENCH_NET["ipv6"],
                )
            ],
            "route add prohibit 198.18.9.0/24",
            "route add prohibit 2001:db8:9::/64",
        )
        self.router2.ip(
            *addrs("west", [ROUTER2["ipv4"]], [ROUTER2["ipv6"]]),
            *addrs("east", [ROUTER2_EDGE["ipv4"]], [ROUTER2_EDGE["ipv6"]]),
            f"route add 198.18.1.0/24 via {ROUTER1_CORE['ipv4']}",
            f"route add 2001:db8:1::/64 via {ROUTER1_CORE['ipv6']}",
            "route add unreachable 198.18.8.0/24",
            "route add unreachable 2001:db8:8::/64",
            "route add blackhole 198.18.10.0/24",
            "route add blackhole 2001:db8:a::/64",
            f"route add {BENCH_NET['ipv4']} via {SERVER['ipv4']}",
            f"route add {BENCH_NET['ipv6']} via {SERVER['ipv6']}",
        )
        hosts = sorted(
            {10, 53, 54, SLOW_HOST} | {h for faults in _FILTER_FAULTS.values() for h in faults}
        )
        self.server.ip(
            *addrs("eth0", [_v4(h) for h in hosts], [_v6(h) for h in hosts]),
            f"route add default via {ROUTER2_EDGE['ipv4']}",
            f"route add default via {ROUTER2_EDGE['ipv6']}",
            f"route add local {BENCH_NET['ipv4']} dev lo",
            f"route add local {BENCH_NET['ipv6']} dev lo",
        )
        # ARP/NDP failure in well under a second (default: 3 probes x 1 s).
        for ns, dev in ((self.client, "eth0"), (self.router2, "east")):
            ns.sysctl(
                {
                    f"net.{fam}.neigh.{dev}.{key}": value
                    for fam in ("ipv4", "ipv6")
                    for key, value in (
                        ("retrans_time_ms", NEIGH_RETRANS_MS),
                        ("mcast_solicit", NEIGH_PROBES),
                        ("ucast_solicit", NEIGH_PROBES),
                    )
                }
            )
        self.server.sysctl({"net.core.somaxconn": 65535, "net.ipv4.tcp_max_syn_backlog": 65535})
        for ns, where in (
            (self.client, "client"),
            (self.router1, "router1"),
            (self.router2, "router2"),
            (self.server, "server"),
        ):
            ns.nft(ruleset(where))

        self.server.spawn(
            [sys.executable, "-c", LISTENER, *map(str, OPEN_PORTS)], ready_line="listening"
        )
        zone_path = self.workdir / "zone.json"
        zone_path.write_text(json.dumps(zone(), indent=1), encoding="utf-8")
        for address in DNS.values():
            self.server.spawn(
                [
                    sys.executable,
                    "-m",
                    "scanner.testing.dns_server",
                    "--zone",
                    str(zone_path),
                    "--host",
                    address,
                    "--port",
                    "53",
                ],
                ready_line="listening",
                cwd=REPO_ROOT,
            )
        self.client.write_etc("resolv.conf", RESOLV_CONF)
        self.client.write_etc("hosts", HOSTS_FILE)

    # -- use ------------------------------------------------------------------------------------
    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """``ip netns exec <client> argv``: run something as the lab's client."""
        return self.client.exec_argv(argv)

    def run_in_client(self, argv: Sequence[str], **kwargs: Any) -> Any:
        return self.client.run(argv, **kwargs)

    def scanner(self, *args: str, timeout: float = 120.0) -> Any:
        """``python -m scanner ARGS`` as the lab's client (its resolv.conf, hosts, routes).

        Never raises on a non-zero exit: the exit code is part of what tests check.
        """
        return self.client.run(
            [sys.executable, "-m", "scanner", *args], check=False, timeout=timeout, cwd=REPO_ROOT
        )

    def probe(
        self, jobs: Sequence[tuple[str, int, float] | tuple[str, int, float, int | None]]
    ) -> list[dict[str, Any]]:
        """Plain-socket connects from the client, all in parallel (see sockprobe.py).

        Each job is (address, port, timeout_s) or (address, port, timeout_s, ttl).
        """
        payload = json.dumps(
            [
                {
                    "address": j[0],
                    "port": j[1],
                    "timeout": j[2],
                    "ttl": j[3] if len(j) > 3 else None,
                }
                for j in jobs
            ]
        )
        longest = max((j[2] for j in jobs), default=1.0)
        proc = self.client.run(
            [sys.executable, str(SOCKPROBE)], input=payload, timeout=longest + 15
        )
        return list(json.loads(proc.stdout))

    @contextmanager
    def rule(self, where: str, rule: str) -> Iterator[None]:
        """Add one nft rule to a box's lab chain for the duration of a ``with`` block."""
        ns = {
            "client": self.client,
            "router1": self.router1,
            "router2": self.router2,
            "server": self.server,
        }[where]
        hook = {"server": "input", "client": "output"}.get(where, "forward")
        out = ns.run(
            ["nft", "--echo", "--handle", "insert", "rule", "inet", "lab", hook, *rule.split()]
        ).stdout
        handle = re.search(r"# handle (\d+)", out)
        try:
            yield
        finally:
            if handle is not None:
                ns.run(
                    ["nft", "delete", "rule", "inet", "lab", hook, "handle", handle.group(1)],
                    check=False,
                )

    def close(self) -> None:
        netns.delete_all(reversed(self.namespaces))
        self.namespaces.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- by hand ----------------------------------------------------------------------------------
def observed_table(lab: Lab) -> str:
    """Probe every scenario and render expected vs observed as a Markdown table."""
    results = lab.probe([(s.address, s.port, s.timeout_s) for s in SCENARIOS])
    lines = [
        "| scenario | destination | category | errno | ICMP type/code | ICMP from | "
        "seconds | matches |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, r in zip(SCENARIOS, results, strict=True):
        icmp = next((e for e in r["errqueue"] if e["origin"] in ("icmp", "icmp6")), None)
        seen = (
            r["errno"],
            *((icmp["icmp_type"], icmp["icmp_code"], icmp["from"]) if icmp else (None, None, None)),
        )
        match = seen == (s.errno, s.icmp_type, s.icmp_code, s.icmp_from)
        code = f"{seen[1]}/{seen[2]}" if icmp else "—"
        sender = f"{seen[3]} ({s.icmp_from_role})" if icmp else "—"
        lines.append(
            f"| {s.name} | {s.endpoint} | {s.category} | {r['errno'] or '—'} | {code} "
            f"| {sender} | {r['elapsed_s']:.3f} | {'yes' if match else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.lab.topology [--hold]``: build, print the observed table, tear down.

    With ``--hold`` the lab stays up until Ctrl-C, for poking at it by hand
    (``ip netns exec <client> ...``, ``ip netns exec <router1> nft list ruleset``).
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--hold", action="store_true", help="keep the lab up until Ctrl-C")
    args = parser.parse_args(argv)
    with Lab() as lab:
        print(f"built in {lab.build_s:.2f}s: " + " ".join(ns.name for ns in lab.namespaces))
        started = time.monotonic()
        print(observed_table(lab))
        print(f"probed {len(SCENARIOS)} scenarios in {time.monotonic() - started:.2f}s")
        if args.hold:
            print("lab is up; Ctrl-C to tear down", flush=True)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            with suppress(KeyboardInterrupt):
                signal.pause()


if __name__ == "__main__":
    main()
