"""``scanner explain`` as a person runs it: real listeners, a real DNS server, a hosts file.

Each case asserts that the one sentence at the end names the right cause.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from .conftest import DnsServer, Listener, free_port, run_scanner, write_inventory
from .test_report_helpers import assert_valid, schema_validator


def explain(*args: str, hosts: Path | None = None) -> tuple[int, list[dict[str, Any]]]:
    proc = run_scanner("explain", *args, "--format", "json", hosts=hosts)
    assert proc.returncode in (0, 1, 3), proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    for event in events:
        assert event["event"] == "explain.result"
        assert_valid(schema_validator("events"), event)
    return proc.returncode, events


def test_an_open_port_has_nothing_to_explain() -> None:
    server = Listener()
    try:
        code, (entry,) = explain(f"127.0.0.1:{server.port}")
    finally:
        server.close()
    assert code == 0 and entry["ok"] and entry["category"] == "open"
    assert entry["cause"].startswith("nothing is wrong")
    (address,) = entry["addresses"]
    assert address["route"]["own"] and "this host's own address" in address["route"]["sentence"]


def test_the_wrong_port_names_the_one_that_listens() -> None:
    server = Listener()
    wrong = free_port()
    try:
        code, (entry,) = explain(f"127.0.0.1:{wrong}")
    finally:
        server.close()
    assert code == 1 and entry["category"] == "refused"
    assert f"nothing listens on {wrong}" in entry["cause"]
    assert str(server.port) in entry["cause"] or "listens" in entry["cause"]
    assert entry["addresses"][0]["local"]  # the evidence is there beside the sentence


def test_bound_to_one_family_only_is_said() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        code, (entry,) = explain(f"[::1]:{port}")
    finally:
        sock.close()
    assert code == 1 and entry["category"] == "refused"
    assert f"127.0.0.1:{port}" in entry["cause"] and "::1" in entry["cause"]
    assert "port" in entry["next_step"] or "family" in entry["next_step"]


def test_a_listener_that_does_not_accept(full_port: int) -> None:
    code, (entry,) = explain(f"127.0.0.1:{full_port}")
    assert code == 1 and entry["category"] == "not_accepting"
    assert "does not accept" in entry["cause"]
    assert "hung" in entry["next_step"] or "process" in entry["next_step"]


def test_accepts_then_closes_with_hold_ms(tmp_path: Path) -> None:
    closer = socket.create_server(("127.0.0.1", 0))
    port = closer.getsockname()[1]
    import threading

    stop = threading.Event()

    def serve() -> None:
        closer.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = closer.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: lb, host: 127.0.0.1, port: {port}, hold_ms: 300}}\n",
    )
    try:
        code, (entry,) = explain(str(inv))
    finally:
        stop.set()
        thread.join(timeout=2)
        closer.close()
    assert code == 1 and entry["category"] == "closed_by_peer"
    assert "closes it at once" in entry["cause"]
    assert "backends" in entry["next_step"]


def test_a_typo_gets_names_nearby_that_resolve(
    tmp_path: Path, dns_server: DnsServer, hosts_file: Path, listener: Listener
) -> None:
    server = listener
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
defaults: {{timeout: 1, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 1, tries: 1}}
targets:
  - {{name: web, host: ok.test, port: {server.port}}}
  - {{name: typo, host: ok.tset, port: {server.port}}}
  - {{name: hostsy, host: hostsonly.tset, port: {server.port}}}
""",
    )
    code, entries = explain(str(inv), hosts=hosts_file)
    by_name = {e["target"]: e for e in entries}
    assert code == 1
    assert by_name["typo"]["category"] == "dns_nxdomain"
    assert "did you mean ok.test?" in by_name["typo"]["cause"]
    assert by_name["typo"]["suggestions"] == ["ok.test"]
    # a name of the hosts file is a candidate too
    assert "hostsonly.test" in by_name["hostsy"]["suggestions"]
    assert by_name["web"]["ok"]
    assert by_name["typo"]["dns"]["trail"], "the names asked are shown"


def test_names_select_targets_of_an_inventory(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {timeout: 0.5, retries: 0}\ntargets:\n"
        "  - {name: a, host: 127.0.0.1, port: 1}\n  - {name: b, host: 127.0.0.1, port: 2}\n",
    )
    _, entries = explain(str(inv), "b")
    assert [e["target"] for e in entries] == ["b"]
    proc = run_scanner("explain", str(inv), "nope")
    assert proc.returncode == 2 and "no target named nope" in proc.stderr


@pytest.mark.parametrize("argument", ["not-a-target", "host:99999"])
def test_an_argument_that_is_neither_file_nor_endpoint(argument: str) -> None:
    proc = run_scanner("explain", argument)
    assert proc.returncode == 2 and "neither a file nor HOST:PORT" in proc.stderr


def test_the_console_ends_with_cause_and_next_step() -> None:
    proc = run_scanner("explain", f"127.0.0.1:{free_port()}", "--format", "console")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-2].strip().startswith("cause:") and lines[-1].strip().startswith("next:")
