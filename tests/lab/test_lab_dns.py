"""The lab's DNS: a real server process, and a client configured like a real machine.

Two views: the raw DNS answer (rcode, addresses) queried over UDP from the client namespace,
which is what the scanner's resolver sees; and getaddrinfo() in the client, which proves that
/etc/netns/<client>/resolv.conf and hosts are in effect like on a real client.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import pytest

from .topology import DNS, DNS_DEAD, DNS_DROPPED, DNS_NAMES, SCENARIOS, DnsName, Lab

_RAW_QUERY = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
from dnslib import DNSRecord, QTYPE, RCODE

def ask(job):
    server, name, qtype = job
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.connect((server, 53))
        sock.send(DNSRecord.question(name, qtype).pack())
        try:
            reply = DNSRecord.parse(sock.recv(4096))
        except socket.timeout:
            return {"rcode": "timeout", "addresses": []}
        except ConnectionRefusedError:
            return {"rcode": "ECONNREFUSED", "addresses": []}
    wanted = getattr(QTYPE, qtype)
    return {"rcode": RCODE[reply.header.rcode],
            "addresses": sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == wanted)}

jobs = json.load(sys.stdin)
with ThreadPoolExecutor(len(jobs)) as pool:
    print(json.dumps(list(pool.map(ask, jobs))))
"""

_GETADDRINFO = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def lookup(job):
    name, family = job
    fam = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, 80, fam, socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        return exc.errno

jobs = json.load(sys.stdin)
with ThreadPoolExecutor(len(jobs)) as pool:
    print(json.dumps(list(pool.map(lookup, jobs))))
"""

# What the wire says for each category, and what glibc's getaddrinfo makes of it.
_RCODE = {
    "dns_nxdomain": "NXDOMAIN",
    "dns_no_address": "NOERROR",
    "dns_servfail": "SERVFAIL",
    "dns_refused": "REFUSED",
    "dns_timeout": "timeout",
}
_EAI = {
    "dns_nxdomain": socket.EAI_NONAME,
    "dns_no_address": socket.EAI_NODATA,
    "dns_servfail": socket.EAI_AGAIN,
    "dns_refused": socket.EAI_AGAIN,
    "dns_timeout": socket.EAI_AGAIN,
}
_QTYPE = {"ipv4": "A", "ipv6": "AAAA"}
_CASES = [(entry, family) for entry in DNS_NAMES for family in ("ipv4", "ipv6")]
_IDS = [f"{entry.name}-{family}" for entry, family in _CASES]


def _in_client(lab: Lab, script: str, payload: Any) -> Any:
    proc = lab.client.run([sys.executable, "-c", script], input=json.dumps(payload), timeout=30)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def raw_answers(lab: Lab) -> list[dict[str, Any]]:
    jobs = [
        [server, entry.name, _QTYPE[family]]
        for entry, family in _CASES
        for server in (DNS["ipv4"], DNS["ipv6"])
    ]
    answers = _in_client(lab, _RAW_QUERY, jobs)
    return [answers[i : i + 2] for i in range(0, len(answers), 2)]


@pytest.fixture(scope="module")
def resolved(lab: Lab) -> list[Any]:
    return list(_in_client(lab, _GETADDRINFO, [[e.name, f] for e, f in _CASES]))


@pytest.mark.parametrize(("index", "case"), list(enumerate(_CASES)), ids=_IDS)
def test_dns_server_answers_each_name_as_designed(
    raw_answers: list[list[dict[str, Any]]], index: int, case: tuple[DnsName, str]
) -> None:
    entry, family = case
    expected = getattr(entry, family)
    for answer in raw_answers[index]:  # the same over IPv4 and IPv6 transport
        if entry.source == "hosts":
            assert answer["rcode"] in ("NXDOMAIN", "NOERROR")  # DNS is not where it comes from
        elif isinstance(expected, tuple):
            assert answer == {"rcode": "NOERROR", "addresses": sorted(expected)}
        else:
            assert answer == {"rcode": _RCODE[expected], "addresses": []}


@pytest.mark.parametrize(("index", "case"), list(enumerate(_CASES)), ids=_IDS)
def test_client_resolves_like_a_real_machine(
    resolved: list[Any], index: int, case: tuple[DnsName, str]
) -> None:
    entry, family = case
    expected = getattr(entry, family)
    if isinstance(expected, tuple):
        assert resolved[index] == sorted(expected)
    else:
        assert resolved[index] == _EAI[expected]


def test_every_scenario_has_a_name(lab: Lab) -> None:
    jobs = [[s.dns_name, s.family] for s in SCENARIOS]
    assert _in_client(lab, _GETADDRINFO, jobs) == [[s.address] for s in SCENARIOS]


def test_dead_nameservers(lab: Lab) -> None:
    """DNS_DEAD: host up, nothing on udp/53 (ICMP port unreachable); DNS_DROPPED: silence."""
    jobs = [
        [dead[f], "ok.lab.test", "A"] for dead in (DNS_DEAD, DNS_DROPPED) for f in ("ipv4", "ipv6")
    ]
    assert [a["rcode"] for a in _in_client(lab, _RAW_QUERY, jobs)] == (
        ["ECONNREFUSED"] * 2 + ["timeout"] * 2
    )
