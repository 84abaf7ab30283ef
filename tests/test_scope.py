"""The scope guard end to end: out-of-scope addresses get no packet, whatever DNS says."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from scanner.scope import ScopeGuard, parse_network

from .conftest import DnsServer, Listener, parse_events, run_scanner, write_inventory


@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        (["127.0.0.1/32"], "127.0.0.1", True),
        (["127.0.0.1/32"], "127.0.0.2", False),
        (["127.0.0.0/8"], "127.255.0.1", True),
        (["2001:db8::/32"], "2001:db8:1::5", True),
        (["2001:db8::/32"], "2001:db9::5", False),
        (["127.0.0.0/8"], "::1", False),
        (["192.0.2.0/24"], "::ffff:192.0.2.9", True),
        (["::1/128", "127.0.0.1"], "::1", True),
    ],
)
def test_scope_guard_table(networks: list[str], address: str, allowed: bool) -> None:
    assert ScopeGuard(networks).allows(address) is allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("192.0.2.7/24", "did you mean 192.0.2.0/24"),
        ("not-a-net", "is not an address or CIDR network"),
        ("2001:db8::1/32", "did you mean 2001:db8::/32"),
    ],
)
def test_parse_network_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_network(text)


def _queued_connections(server: socket.socket) -> int:
    """Handshakes completed by the kernel on a listener that never accepted them."""
    server.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_out_of_scope_addresses_get_no_packet(
    tmp_path: Path, dns_server: DnsServer, hosts_file: Path
) -> None:
    inside = Listener("127.0.0.1")
    outside = socket.socket()  # a listener on 127.0.0.2 that never accepts: its queue counts
    outside.bind(("127.0.0.2", inside.port))
    outside.listen(64)
    try:
        inv = write_inventory(
            tmp_path / "inv.yaml",
            f"""
version: 1
defaults: {{timeout: 1, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 0.5, tries: 1}}
scope:
  allow: [127.0.0.1/32]
targets:
  - {{name: in, host: 127.0.0.1, port: {inside.port}}}
  - {{name: literal-out, host: 127.0.0.2, port: {inside.port}}}
  - {{name: dns-half-out, host: ok.test, port: {inside.port}}}
  - {{name: hosts-out, host: hostsonly.test, port: {inside.port}}}
  - {{name: closed-and-out, host: 127.0.0.2, port: {inside.port}, expect: closed}}
""",
        )
        proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts_file)
        reached_outside = _queued_connections(outside)
        allowed = run_scanner(
            "check", str(inv), "--format", "json", "--allow", "127.0.0.2/32", hosts=hosts_file
        )
    finally:
        inside.close()
        outside.close()
    assert reached_outside == 0, "an out-of-scope address got a handshake"
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    targets = {e["target"]: e for e in events if e["event"] == "target.result"}
    assert targets["in"]["category"] == "open" and targets["in"]["ok"] is True
    assert targets["literal-out"]["category"] == "out_of_scope"
    assert targets["dns-half-out"]["category"] == "out_of_scope"  # ::1 is outside
    assert targets["hosts-out"]["category"] == "out_of_scope"  # 127.0.0.9 from hosts file
    assert targets["closed-and-out"]["ok"] is False  # not probing proves nothing
    probes = [e for e in events if e["event"] == "probe.result"]
    for probe in probes:
        if probe["category"] == "out_of_scope":
            assert probe["attempts"] == 0 and probe["latency_ms"] is None
            assert "127.0.0.1/32" in probe["hint"]
    # --allow widens the guard for this run only
    widened = {
        e["target"]: e for e in parse_events(allowed.stdout) if e["event"] == "target.result"
    }
    assert widened["literal-out"]["category"] == "open"
