"""scanner.explain inside a network namespace this test makes: an address of a real interface
(198.18.0.5), services bound to it, to localhost only or to one family, a listener that never
accepts, a local drop rule, and routes of every kind in the way.

Everything runs inside the namespace (``ip netns exec``): the listeners in one process, the
probes and the evidence in another, so the owners are found across processes. The probes go
to the namespace's own addresses only; the route lookups send nothing.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import ROOT
from .lab.netns import Netns, netns_available, run_id, veth

pytestmark = pytest.mark.lab

SERVER = textwrap.dedent("""
    import os, socket, time

    def listen(family, address, port, backlog=16, v6only=None):
        sock = socket.socket(family, socket.SOCK_STREAM)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        sock.bind((address, port))
        sock.listen(backlog)
        return sock

    keep = [
        listen(socket.AF_INET, "127.0.0.1", 5432),
        listen(socket.AF_INET, "127.0.0.1", 3000),
        listen(socket.AF_INET, "198.18.0.5", 8080),
        listen(socket.AF_INET6, "::", 9000, v6only=1),
        listen(socket.AF_INET6, "::", 7200, v6only=0),
        listen(socket.AF_INET, "0.0.0.0", 7100),
        listen(socket.AF_INET, "198.18.0.5", 6000, backlog=0),
    ]
    keep.append(socket.create_connection(("198.18.0.5", 6000)))  # fills that queue
    comm = open(f"/proc/{os.getpid()}/comm").read().strip()
    print("listening", os.getpid(), comm, flush=True)
    time.sleep(600)
""")

CHECK = textwrap.dedent("""
    import json, socket, sys, threading
    import msgspec
    from scanner.explain import (
        interface_addresses, listen_counters, listeners, local_findings, route_evidence,
        route_to,
    )
    from scanner.explain.sockets import diag_listeners, read_proc_listeners

    def probe(address, port, timeout=1.2):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "timeout"
            return "open"

    out = {"probes": {}}
    def explain(name, address, port):
        before = listen_counters()
        outcome = probe(address, port)
        found = local_findings(address, port, outcome, before=before)
        out["probes"][name] = {
            "outcome": outcome,
            "before": msgspec.to_builtins(before),
            "after": msgspec.to_builtins(listen_counters()),
            "findings": msgspec.to_builtins(found),
        }

    out["counters_at_start"] = msgspec.to_builtins(listen_counters())
    for name, address, port in [
        ("localhost_only", "198.18.0.5", 5432),
        ("ipv4_only", "::1", 3000),
        ("wrong_port", "198.18.0.5", 8081),
        ("ipv6_only", "127.0.0.1", 9000),
        ("dual_stack_wildcard", "198.18.0.5", 7201),
        ("anyip_nothing", "198.18.130.1", 7999),
        ("open", "198.18.0.5", 8080),
    ]:
        explain(name, address, port)
    # the two drop-rule cases together (no listener overflows there), then the full queue
    dropped = [("dropped_with_room", "127.0.0.1", 7100), ("dropped_nothing", "198.18.0.5", 7300)]
    threads = [threading.Thread(target=explain, args=args) for args in dropped]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    explain("never_accepts", "198.18.0.5", 6000)

    out["routes"] = {}
    addresses = interface_addresses()
    for address in sys.argv[1:]:
        route = route_to(address)
        out["routes"][address] = {
            "route": msgspec.to_builtins(route),
            "findings": msgspec.to_builtins(route_evidence(route, addresses)),
        }
    out["addresses"] = msgspec.to_builtins(addresses)
    key = lambda s: (s.address, s.port, s.inode, s.queue)
    out["diag"] = sorted(map(key, diag_listeners()))
    out["proc"] = sorted(map(key, read_proc_listeners()))
    print(json.dumps(out))
""")

ROUTE_PROBES = [
    "198.18.0.5",
    "198.18.0.9",
    "198.51.100.7",
    "203.0.113.1",
    "198.19.1.1",
    "198.19.2.1",
    "198.19.3.1",
    "198.19.4.1",
    "198.19.5.1",
    "198.18.130.1",
    "2001:db8:5::5",
    "2001:db8:6::6",
    "2001:db8:b::1",
    "2001:db8:99::1",
]


@pytest.fixture(scope="module")
def observed() -> Iterator[dict[str, Any]]:
    reason = netns_available()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"network lab unavailable in CI: {reason}", pytrace=False)
        pytest.skip(f"network lab unavailable: {reason}")
    prefix = run_id()
    host, peer = Netns(f"{prefix}-xh"), Netns(f"{prefix}-xp")
    try:
        veth(host, "eth1", peer, "eth1")
        veth(host, "eth2", peer, "eth2")
        # duplicate address detection on eth2 waits a minute per probe: 2001:db8:6::6 stays
        # tentative for the whole test
        host.sysctl({"net.ipv6.neigh.eth2.retrans_time_ms": 60_000})
        host.add_addresses("eth1", "198.18.0.5/24", "2001:db8:5::5/64")
        host.ip(
            "addr add 2001:db8:6::6/64 dev eth2",  # without nodad: DAD runs
            "route add default via 198.18.0.1",
            "route add blackhole 203.0.113.0/24",
            "route add blackhole 2001:db8:b::/48",
            "route add unreachable 198.19.1.0/24",
            "route add prohibit 198.19.2.0/24",
            "route add 198.19.3.0/24 via 198.18.0.7 table 100",
            "route add unreachable 198.19.5.0/24 table 100",
            "rule add to 198.19.3.0/24 lookup 100 pref 100",
            "rule add to 198.19.4.0/24 prohibit pref 101",
            "rule add to 198.19.5.0/24 lookup 100 pref 102",
            "route add local 198.18.128.0/20 dev lo",  # AnyIP: the whole /20 is this host's
        )
        host.nft(
            "table inet explain {\n  chain input {\n    type filter hook input priority 0;\n"
            "    tcp dport { 7100, 7300 } drop\n  }\n}\n"
        )
        server = host.spawn([sys.executable, "-c", SERVER], ready_line="listening")
        check = host.run([sys.executable, "-c", CHECK, *ROUTE_PROBES], cwd=ROOT, timeout=60)
        result: dict[str, Any] = json.loads(check.stdout)
        result["server_pid"] = server.pid
        yield result
    finally:
        host.delete()
        peer.delete()


def _server(observed: dict[str, Any]) -> str:
    return f"pid {observed['server_pid']}"


def _only(observed: dict[str, Any], name: str) -> dict[str, Any]:
    (finding,) = observed["probes"][name]["findings"]
    return finding  # type: ignore[no-any-return]


def test_bound_to_localhost(observed: dict[str, Any]) -> None:
    assert observed["probes"]["localhost_only"]["outcome"] == "refused"
    finding = _only(observed, "localhost_only")
    assert finding["code"] == "other_address"
    assert finding["sentence"].startswith("listens on 127.0.0.1:5432 only (")
    assert finding["sentence"].endswith(
        f"{_server(observed)}); you probed 198.18.0.5: bound to localhost"
    )
    (listener,) = finding["listeners"]
    assert listener["processes"][0]["pid"] == observed["server_pid"]


def test_listens_on_ipv4_not_on_ipv6_loopback(observed: dict[str, Any]) -> None:
    assert observed["probes"]["ipv4_only"]["outcome"] == "refused"
    finding = _only(observed, "ipv4_only")
    assert finding["code"] == "other_family"
    assert finding["sentence"].startswith("listens on 127.0.0.1:3000, not on ::1 (")


def test_listens_on_ipv6_only(observed: dict[str, Any]) -> None:
    assert observed["probes"]["ipv6_only"]["outcome"] == "refused"
    finding = _only(observed, "ipv6_only")
    assert finding["code"] == "other_family"
    assert finding["sentence"].startswith("listens on [::]:9000 (IPv6 only), not on 127.0.0.1 (")


def test_wrong_port_on_an_interface_address(observed: dict[str, Any]) -> None:
    assert observed["probes"]["wrong_port"]["outcome"] == "refused"
    finding = _only(observed, "wrong_port")
    assert finding["code"] == "wrong_port"
    assert finding["sentence"].startswith("nothing listens on 8081; 8080 does (")
    assert finding["sentence"].endswith(f"{_server(observed)}): wrong port?")
    # 0.0.0.0:7100 and the dual-stack [::]:7200 take 198.18.0.5 too; 127.0.0.1 ones do not
    assert finding["ports"] == [6000, 7100, 7200, 8080]


def test_a_dual_stack_wildcard_takes_ipv4(observed: dict[str, Any]) -> None:
    finding = _only(observed, "dual_stack_wildcard")
    assert finding["sentence"].startswith("nothing listens on 7201; 7200 does (")


def test_an_anyip_address_with_nothing_near(observed: dict[str, Any]) -> None:
    """198.18.130.1 is this host's by an AnyIP route; wildcard listeners take it, far away."""
    probe = observed["probes"]["anyip_nothing"]
    assert probe["outcome"] == "refused"
    (finding,) = probe["findings"]
    assert finding["code"] == "wrong_port"
    assert finding["sentence"].startswith(
        "nothing listens on 7999; on 198.18.130.1 these ports listen: 7200 ("
    )
    assert finding["ports"] == [7100, 7200]


def test_open_gets_no_local_findings(observed: dict[str, Any]) -> None:
    probe = observed["probes"]["open"]
    assert (probe["outcome"], probe["findings"]) == ("open", [])


def test_a_listener_that_never_accepts(observed: dict[str, Any]) -> None:
    """Backlog 0, one connection waiting: the kernel drops the SYNs and counts them."""
    assert observed["counters_at_start"] == {"overflows": 0, "drops": 0}  # a fresh namespace
    probe = observed["probes"]["never_accepts"]
    assert probe["outcome"] == "timeout"
    assert probe["after"]["overflows"] > probe["before"]["overflows"]
    rise = probe["after"]["overflows"] - probe["before"]["overflows"]
    (finding,) = probe["findings"]
    assert finding["code"] == "accept_queue_full" and finding["suggests"] == "not_accepting"
    assert finding["sentence"] == (
        "the service listens but does not accept: hung, deadlocked or overloaded "
        f"({finding['listeners'][0]['processes'][0]['name']}, {_server(observed)} on "
        "198.18.0.5:6000: accept queue full: 1 waiting to be accepted, backlog 0); "
        f"ListenOverflows rose by {rise} during the probe"
    )


def test_a_local_drop_rule_in_front_of_a_listener_with_room(observed: dict[str, Any]) -> None:
    probe = observed["probes"]["dropped_with_room"]
    assert probe["outcome"] == "timeout"
    assert probe["after"]["overflows"] == probe["before"]["overflows"]
    finding = _only(observed, "dropped_with_room")
    assert finding["code"] == "queue_has_room" and finding["suggests"] is None
    assert finding["sentence"].startswith("0.0.0.0:7100 listens (")
    assert "0 waiting to be accepted, backlog 16" in finding["sentence"]


def test_a_local_drop_rule_where_nothing_listens(observed: dict[str, Any]) -> None:
    assert observed["probes"]["dropped_nothing"]["outcome"] == "timeout"
    finding = _only(observed, "dropped_nothing")
    assert finding["code"] == "nothing_listens"
    assert finding["sentence"].startswith(
        "nothing listens on 198.18.0.5:7300, yet no reset came: a local firewall rule drops"
    )


ROUTES = {
    "198.18.0.5": ("local", "own_address", "198.18.0.5 is this host's own address (on eth1)"),
    "198.18.130.1": ("local", "own_address", "198.18.130.1 is this host's own address"),
    "2001:db8:5::5": ("local", "own_address", "2001:db8:5::5 is this host's own address (on eth1)"),
    "198.18.0.9": (
        "unicast",
        "route",
        "198.18.0.9 is routed (directly connected) dev eth1 from 198.18.0.5",
    ),
    "198.51.100.7": (
        "unicast",
        "route",
        "198.51.100.7 is routed via 198.18.0.1 dev eth1 from 198.18.0.5",
    ),
    "203.0.113.1": (
        "blackhole",
        "stopped_by_route",
        "a blackhole route 203.0.113.0/24 stops packets to 203.0.113.1 on this host (EINVAL)",
    ),
    "198.19.1.1": (
        "unreachable",
        "stopped_by_route",
        "an unreachable route 198.19.1.0/24 stops packets to 198.19.1.1 on this host "
        "(EHOSTUNREACH)",
    ),
    "198.19.2.1": (
        "prohibit",
        "stopped_by_route",
        "a prohibit route 198.19.2.0/24 stops packets to 198.19.2.1 on this host (EACCES)",
    ),
    "198.19.3.1": (
        "unicast",
        "policy_route",
        "198.19.3.1 is routed by policy: rule 100 (to 198.19.3.0/24 lookup 100) chose table "
        "100, via 198.18.0.7 dev eth1 from 198.18.0.5",
    ),
    "198.19.4.1": (
        "prohibit",
        "stopped_by_route",
        "policy rule 101 (to 198.19.4.0/24 prohibit) stops packets to 198.19.4.1 on this host "
        "(EACCES)",
    ),
    "198.19.5.1": (
        "unreachable",
        "stopped_by_route",
        "an unreachable route 198.19.5.0/24 stops packets to 198.19.5.1 on this host "
        "(EHOSTUNREACH, table chosen by rule 102 (to 198.19.5.0/24 lookup 100))",
    ),
    "2001:db8:b::1": (
        "blackhole",
        "stopped_by_route",
        "a blackhole route 2001:db8:b::/48 stops packets to 2001:db8:b::1 on this host (EINVAL)",
    ),
    "2001:db8:99::1": (
        "no_route",
        "stopped_by_route",
        "this host has no route to 2001:db8:99::1 (ENETUNREACH): no packet leaves",
    ),
}


@pytest.mark.parametrize("address", sorted(ROUTES))
def test_routes(observed: dict[str, Any], address: str) -> None:
    kind, code, sentence = ROUTES[address]
    seen = observed["routes"][address]
    assert seen["route"]["kind"] == kind
    assert [(f["code"], f["sentence"]) for f in seen["findings"]] == [(code, sentence)]


def test_a_tentative_address_is_not_yet_this_hosts(observed: dict[str, Any]) -> None:
    tentative = [a for a in observed["addresses"] if a["address"] == "2001:db8:6::6"]
    assert tentative == [
        {
            "address": "2001:db8:6::6",
            "prefixlen": 64,
            "interface": "eth2",
            "family": "ipv6",
            "tentative": True,
        }
    ]
    assert observed["routes"]["2001:db8:6::6"]["route"]["kind"] != "local"
    usable = {a["address"]: a["tentative"] for a in observed["addresses"]}
    assert usable["198.18.0.5"] is False and usable["2001:db8:5::5"] is False


def test_sock_diag_and_proc_agree(observed: dict[str, Any]) -> None:
    assert observed["diag"] == observed["proc"]
    assert len(observed["diag"]) == 7
