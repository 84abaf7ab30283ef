"""The lab proves itself with plain sockets run inside the client namespace.

The scenario table in ``topology.SCENARIOS`` is the ground truth the scanner's lab tests rely
on; here every row is checked against what the kernel actually reports: connect() errno, and
the ICMP type/code and sender read from the socket error queue (IP_RECVERR / IPV6_RECVERR).
"""

from __future__ import annotations

from typing import Any

import pytest

from .topology import (
    CLIENT,
    OPEN_PORTS,
    ROUTER1,
    ROUTER2,
    SCENARIOS,
    SCENARIOS_BY_NAME,
    SERVER,
    Lab,
    Scenario,
)

FAMILIES = ("ipv4", "ipv6")


@pytest.mark.parametrize("family", FAMILIES)
def test_server_answers_on_every_open_port(lab: Lab, family: str) -> None:
    results = lab.probe([(SERVER[family], port, 1.5) for port in OPEN_PORTS])
    assert [r["errno"] for r in results] == [None] * len(OPEN_PORTS)


@pytest.mark.parametrize("family", FAMILIES)
def test_path_goes_through_router1_then_router2(lab: Lab, family: str) -> None:
    """TTL/hop limit 1 expires at router1, 2 at router2, 3 reaches the server."""
    ttl1, ttl2, ttl3 = lab.probe([(SERVER[family], 80, 1.5, ttl) for ttl in (1, 2, 3)])
    exceeded = (11, 0) if family == "ipv4" else (3, 0)
    for result, hop in ((ttl1, ROUTER1[family]), (ttl2, ROUTER2[family])):
        assert result["errno"] == "EHOSTUNREACH"
        (entry,) = result["errqueue"]
        assert (entry["icmp_type"], entry["icmp_code"], entry["from"]) == (*exceeded, hop)
    assert ttl3["errno"] is None


def test_table_covers_every_fault_in_both_families() -> None:
    assert len(SCENARIOS) >= 20
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)
    assert len({(s.address, s.port) for s in SCENARIOS}) == len(SCENARIOS)
    bases = {family: {s.base for s in SCENARIOS if s.family == family} for family in FAMILIES}
    assert bases["ipv4"] == bases["ipv6"]
    roles = {s.icmp_from_role for s in SCENARIOS}
    assert {"target", "router1", "router2", "client"} <= roles
    categories = {s.category for s in SCENARIOS}
    assert {
        "open",
        "refused",
        "rejected",
        "timeout",
        "host_unreachable",
        "network_unreachable",
        "blocked_locally",
        "slow",
    } <= categories


def _icmp(result: dict[str, Any]) -> tuple[int, int, str | None] | None:
    icmp = [e for e in result["errqueue"] if e["origin"] in ("icmp", "icmp6")]
    if not icmp:
        return None
    first = icmp[0]
    return first["icmp_type"], first["icmp_code"], first["from"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(observed: dict[str, dict[str, Any]], scenario: Scenario) -> None:
    """One row of the ground truth: errno, ICMP type/code and sender, and how long it took."""
    result = observed[scenario.name]
    assert result["errno"] == scenario.errno, result
    expected_icmp = (
        None
        if scenario.icmp_type is None
        else (scenario.icmp_type, scenario.icmp_code, scenario.icmp_from)
    )
    assert _icmp(result) == expected_icmp, result
    elapsed = result["elapsed_s"]
    if scenario.category == "timeout":
        assert elapsed >= scenario.timeout_s * 0.95
    elif scenario.category == "slow":
        assert scenario.max_latency_ms is not None
        assert scenario.max_latency_ms / 1000 < elapsed < 1.4  # one SYN retransmission (1 s)
    elif scenario.name.startswith("nohost"):
        assert 0.5 < elapsed < 1.4  # 3 ARP/NDP probes x 250 ms, tuned in the lab
    else:
        assert elapsed < 0.5  # refusals, rejects and local errors are immediate


@pytest.mark.parametrize("family", FAMILIES)
def test_icmp_sender_tells_target_from_routers_and_client(
    observed: dict[str, dict[str, Any]], family: str
) -> None:
    """Same ICMP code, four different senders: only icmp_from tells who rejected."""
    v = "v4" if family == "ipv4" else "v6"
    senders = {
        where: _icmp(observed[f"{where}-port-{v}"])
        for where in ("server", "router1", "router2", "client")
    }
    froms = {where: icmp[2] for where, icmp in senders.items() if icmp is not None}
    assert froms == {
        "server": SCENARIOS_BY_NAME[f"server-port-{v}"].address,
        "router1": ROUTER1[family],
        "router2": ROUTER2[family],
        "client": CLIENT[family],
    }


def test_temporary_rule_is_added_and_removed(lab: Lab) -> None:
    address = SERVER["ipv4"]
    with lab.rule("router1", f"ip daddr {address} tcp dport 443 drop"):
        during = lab.probe([(address, 443, 0.5), (address, 80, 0.5)])
    (after,) = lab.probe([(address, 443, 0.5)])
    assert [r["errno"] for r in during] == ["timeout", None]
    assert after["errno"] is None
