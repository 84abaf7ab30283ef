"""``tls:`` targets end to end: inventory → engine → events, report, JUnit, Markdown, console.

Real nginx (from Debian, with a config of the test's own, on loopback) serves certificates
made by the test; the names resolve through a hosts file of the test's own. Every case
asserts the category, the hint and the ``tls`` fields the reader gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import parse_events, run_scanner, write_inventory
from .test_report_helpers import assert_valid, schema_validator
from .tls_servers import Nginx, Pki

CASES = ["valid", "expired", "wrong-host", "self-signed", "expiring"]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hosts") / "hosts"
    path.write_text("127.0.0.1 good.test\n::1 good.test\n")
    return path


def _scan(tmp_path: Path, hosts: Path, body: str, *extra: str) -> tuple[int, dict[str, Any], Any]:
    inv = write_inventory(tmp_path / "inv.yaml", body)
    report = tmp_path / "report.json"
    proc = run_scanner(
        "check", str(inv), "--format", "json", "--report", str(report), *extra, hosts=hosts
    )
    events = parse_events(proc.stdout)
    for event in events:
        assert_valid(schema_validator("events"), event)
    document = json.loads(report.read_text()) if report.exists() else None
    if document is not None:
        assert_valid(schema_validator("report"), document)
    results = {e["target"]: e for e in events if e["event"] == "target.result"}
    probes: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event"] == "probe.result":
            probes.setdefault(e["target"], []).append(e)
    return proc.returncode, {"results": results, "probes": probes, "stderr": proc.stderr}, document


def test_every_certificate_case_through_the_cli(
    tmp_path: Path, nginx: Nginx, pki: Pki, hosts: Path
) -> None:
    root = pki.made["root"].cert_file
    lines = "\n".join(
        f"  - {{name: {case}, host: good.test, port: {nginx.ports[case]}}}" for case in CASES
    )
    body = (
        "version: 1\n"
        f"defaults: {{timeout: 3, retries: 0, tls: {{ca_file: {root}, min_days: 20}}}}\n"
        f"targets:\n{lines}\n"
        f"  - {{name: plain, host: good.test, family: ipv4, port: {nginx.ports['plain-http']}}}\n"
    )
    code, seen, document = _scan(tmp_path, hosts, body)
    assert code == 1
    results, probes = seen["results"], seen["probes"]
    expected = {
        "valid": "open",
        "expired": "tls_expired",
        "wrong-host": "tls_hostname_mismatch",
        "self-signed": "tls_untrusted",
        "expiring": "tls_expiring",
        "plain": "tls_not_tls",
    }
    assert {name: r["category"] for name, r in results.items()} == expected
    valid = probes["valid"]
    assert {p["family"] for p in valid} == {"ipv4", "ipv6"}  # both addresses, both checked
    for probe in valid:
        tls = probe["tls"]
        assert tls["version"] == "TLSv1.3" and tls["subject"] == pki.made["valid"].subject
        assert tls["fingerprint_sha256"] == pki.made["valid"].fingerprint
        assert tls["sans"] == ["good.test"] and tls["days_left"] > 300
        assert probe["tls_ms"] > 0 and probe["connect_ms"] >= 0 and probe["dns_ms"] >= 0
    assert "expired on" in results["expired"]["hint"]
    assert "other.test, www.other.test, not good.test" in results["wrong-host"]["hint"]
    assert "self-signed" in results["self-signed"]["hint"]
    assert "within 20 days" in results["expiring"]["hint"] or "20" in results["expiring"]["hint"]
    assert "HTTP" in results["plain"]["hint"]
    assert probes["plain"][0]["tls"] is None  # no TLS at all: nothing to show
    # the report carries the same: one document, typed, the tls object per probe
    by_name = {t["target"]: t for t in document["targets"]}
    assert by_name["expired"]["probes"][0]["tls"]["days_left"] < 0


def test_a_dual_stack_name_where_one_address_has_the_wrong_certificate(
    tmp_path: Path, nginx: Nginx, pki: Pki, hosts: Path
) -> None:
    root = pki.made["root"].cert_file
    body = (
        "version: 1\ntargets:\n"
        f"  - {{name: web, host: good.test, port: {nginx.ports['dual-stack']}, "
        f"timeout: 3, tls: {{ca_file: {root}}}}}\n"
    )
    code, seen, _ = _scan(tmp_path, hosts, body)
    assert code == 1
    by_family = {p["family"]: p["category"] for p in seen["probes"]["web"]}
    assert by_family == {"ipv4": "open", "ipv6": "tls_hostname_mismatch"}
    assert seen["results"]["web"]["category"] == "tls_hostname_mismatch"


def test_the_console_shows_the_certificate_and_where_the_time_went(
    tmp_path: Path, nginx: Nginx, pki: Pki, hosts: Path
) -> None:
    root = pki.made["root"].cert_file
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n"
        f"  - {{name: old, host: good.test, port: {nginx.ports['expired']}, family: ipv4, "
        f"tls: {{ca_file: {root}}}}}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "console", hosts=hosts)
    assert proc.returncode == 1
    assert "tls_expired" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("tls 127.0.0.1"))
    assert "CN=good.test" in line and "days)" in line
    assert "dns " in line and "connect " in line and "tls " in line


def test_markdown_lists_the_certificates_that_expire_first(
    tmp_path: Path, nginx: Nginx, pki: Pki, hosts: Path
) -> None:
    root = pki.made["root"].cert_file
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {family: ipv4}\ntargets:\n"
        + "".join(
            f"  - {{name: {case}, host: good.test, port: {nginx.ports[case]}, "
            f"tls: {{ca_file: {root}}}}}\n"
            for case in ("valid", "expiring", "expired")
        ),
    )
    markdown = tmp_path / "summary.md"
    run_scanner("check", str(inv), "--format", "json", "--markdown", str(markdown), hosts=hosts)
    text = markdown.read_text().split("### Certificates that expire first (3)", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ") and "good" not in line]
    order = [line.split("|")[1].strip() for line in text.splitlines()[4:7]]
    assert order == ["expired", "expiring", "valid"], rows


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ("{ca_file: nowhere.pem}", "tls.ca_file 'nowhere.pem' is not a readable file"),
        ("{starttls: ftp}", "tls.starttls must be one of smtp | imap | pop3 | postgres"),
        ("{min_days: -1}", "tls.min_days must be between 0 and 3650"),
        ("{bogus: 1}", "unknown key 'bogus'"),
        ("{client_key: k.pem}", "tls.client_key needs client_cert"),
        ("yes please", "tls must be true, false or a mapping"),
    ],
)
def test_tls_settings_are_checked_before_probing(tmp_path: Path, tls: str, message: str) -> None:
    (tmp_path / "k.pem").write_text("not a key\n")
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{host: 127.0.0.1, port: 1, tls: {tls}}}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{inv}:3:" in proc.stderr and message in proc.stderr, proc.stderr


def test_a_ca_file_that_is_no_certificate_is_refused_before_probing(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("no certificate here\n")
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n  - {host: 127.0.0.1, port: 1, tls: {ca_file: ca.pem}}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{inv}:3:5: tls:" in proc.stderr and "nothing was probed" in proc.stderr


def test_tls_cannot_go_with_expect_closed(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n  - {host: 127.0.0.1, port: 1, expect: closed, tls: true}\n",
    )
    proc = run_scanner("validate", str(inv))
    assert proc.returncode == 2 and "cannot go with expect: closed" in proc.stderr
