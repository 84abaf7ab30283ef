"""The scanner as users run it, inside the lab's client namespace, against every staged fault.

One scan covers all scenarios of :data:`SCENARIOS` (IPv4 and IPv6) as IP literals, and
one covers every name of :data:`DNS_NAMES` through the client's own resolv.conf and
/etc/hosts (no ``resolver`` section: the system configuration is what is tested). Each
table row checks the target's verdict and, for ICMP failures, who sent the ICMP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .topology import DNS_NAMES, SCENARIOS, SERVER, DnsName, Lab, Scenario

Events = list[dict[str, Any]]


def _events(stdout: str) -> Events:
    return [json.loads(line) for line in stdout.splitlines()]


def _scan(lab: Lab, tmp: Path, body: str, *args: str) -> tuple[int, Events]:
    inventory = tmp / "inventory.yaml"
    inventory.write_text(body)
    proc = lab.scanner("check", str(inventory), "--format", "json", *args)
    assert proc.returncode in (0, 1, 3), proc.stderr
    return proc.returncode, _events(proc.stdout)


def _target_line(s: Scenario) -> str:
    host = s.address
    budget = f", max_latency_ms: {s.max_latency_ms}" if s.max_latency_ms else ""
    return (
        f'  - {{name: {s.name}, host: "{host}", port: {s.port}, '
        f"timeout: {s.timeout_s}, retries: 0{budget}}}"
    )


@pytest.fixture(scope="module")
def scenario_scan(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Events:
    body = "version: 1\ntargets:\n" + "\n".join(_target_line(s) for s in SCENARIOS) + "\n"
    _code, events = _scan(lab, tmp_path_factory.mktemp("scn"), body)
    return events


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_verdict_and_icmp_sender(scenario_scan: Events, scenario: Scenario) -> None:
    target = next(
        e for e in scenario_scan if e["event"] == "target.result" and e["target"] == scenario.name
    )
    probe = next(
        e for e in scenario_scan if e["event"] == "probe.result" and e["target"] == scenario.name
    )
    assert target["category"] == scenario.category, (scenario.what, probe)
    assert target["ok"] is (scenario.category == "open")
    assert probe["family"] == scenario.family
    assert probe["address"] == scenario.address
    assert probe["icmp_type"] == scenario.icmp_type
    assert probe["icmp_code"] == scenario.icmp_code
    assert probe["icmp_from"] == scenario.icmp_from, f"{scenario.icmp_from_role} sent it"
    if (
        scenario.category in ("rejected", "host_unreachable", "network_unreachable")
        and scenario.icmp_from
    ):
        assert scenario.icmp_from in str(probe["hint"]) or "target host itself" in str(
            probe["hint"]
        )
    if scenario.category != "open":
        assert target["hint"], "every failure says what to check next"


def test_scan_of_all_scenarios_is_complete(scenario_scan: Events) -> None:
    assert scenario_scan[0]["event"] == "scan.started"
    assert scenario_scan[-1]["event"] == "scan.finished"
    results = [e for e in scenario_scan if e["event"] == "target.result"]
    assert sorted(r["target"] for r in results) == sorted(s.name for s in SCENARIOS)


def _dns_expectation(entry: DnsName) -> tuple[str, bool]:
    """The target category for a name probed on port 80 with family any."""
    values = (entry.ipv6, entry.ipv4)
    addresses = [v for v in values if isinstance(v, tuple)]
    if not addresses:
        failures = {v for v in values if isinstance(v, str)}
        if failures == {"dns_nxdomain"}:
            return "dns_nxdomain", False
        for category in ("dns_timeout", "dns_servfail", "dns_refused", "dns_no_address"):
            if category in failures:
                return category, False
    if entry.name == "v4good.lab.test":
        return "timeout", False  # IPv6 address dropped: the first address that failed
    if entry.name == "v6good.lab.test":
        return "refused", False
    return "open", True


@pytest.fixture(scope="module")
def dns_scan(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Events:
    lines = [
        f"  - {{name: {d.name}, host: {d.name}, port: 80, timeout: 1.0, retries: 0}}"
        for d in DNS_NAMES
    ]
    body = "version: 1\ntargets:\n" + "\n".join(lines) + "\n"
    _code, events = _scan(lab, tmp_path_factory.mktemp("dns"), body)
    return events


@pytest.mark.parametrize("entry", DNS_NAMES, ids=[d.name for d in DNS_NAMES])
def test_names_through_the_clients_resolv_conf_and_hosts(dns_scan: Events, entry: DnsName) -> None:
    dns = next(e for e in dns_scan if e["event"] == "dns.result" and e["host"] == entry.name)
    target = next(
        e for e in dns_scan if e["event"] == "target.result" and e["target"] == entry.name
    )
    for family in ("ipv4", "ipv6"):
        want = getattr(entry, family)
        if isinstance(want, tuple):
            assert dns["families"][family] == "resolved"
            assert set(want) <= set(dns["addresses"])
        else:
            assert dns["families"][family] == want, dns
    if entry.source == "hosts":
        assert dns["nameserver"] == "/etc/hosts"
        assert dns["addresses"] == [SERVER["ipv6"], SERVER["ipv4"]]
    category, ok = _dns_expectation(entry)
    assert (target["category"], target["ok"]) == (category, ok), dns


def test_filtered_target_retries_end_on_time(lab: Lab, tmp_path: Path) -> None:
    """timeout × (retries + 1) plus backoff, not later; attempts counts the tries."""
    drop = next(s for s in SCENARIOS if s.name == "server-drop-v4")
    body = (
        f'version: 1\ntargets:\n  - {{name: f, host: "{drop.address}", port: 80, '
        f"timeout: 0.4, retries: 2}}\n"
    )
    _code, events = _scan(lab, tmp_path, body)
    probe = next(e for e in events if e["event"] == "probe.result")
    assert probe["category"] == "timeout" and probe["attempts"] == 3
    # backoff after attempt 1 is at most 0.2 s, after attempt 2 at most 0.4 s
    assert events[-1]["duration_s"] <= 0.4 * 3 + 0.2 + 0.4 + 0.5


@pytest.mark.parametrize(
    "name",
    ["server-drop-v4", "router1-port-v6", "closed-v4", "noroute-local-v4", "router2-host-v4"],
)
def test_expect_closed_is_met_by_any_handshake_failure(lab: Lab, tmp_path: Path, name: str) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    body = (
        f'version: 1\ntargets:\n  - {{name: c, host: "{scenario.address}", port: '
        f"{scenario.port}, timeout: 0.5, retries: 0, expect: closed}}\n"
    )
    code, events = _scan(lab, tmp_path, body)
    target = next(e for e in events if e["event"] == "target.result")
    assert target["ok"] is True and target["category"] == scenario.category
    assert code == 0
