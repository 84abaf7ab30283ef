"""The scanner's STARTTLS verdicts against ``openssl s_client -starttls``, in the same run.

Every STARTTLS server the suite runs is here, each a real program with a config the test
writes: Postfix (smtp, one smtpd port per case), Dovecot (imap and pop3, one instance per
case) and PostgreSQL (postgres, its SSLRequest; one server whose certificate is swapped by
a reload). Each serves the certificate cases below, and one more server of each kind has
TLS turned off. For every case, ``openssl s_client -starttls <protocol>`` (the same trust
anchor, SNI and name to verify) and ``scanner check`` (``tls: {starttls: <protocol>}``)
look at the same port: the category must be the one OpenSSL's verify code means (the table
nginx's cases are held to as well), and subject, expiry and fingerprint must be those of the
certificate s_client printed, which must be the one the case serves. Where STARTTLS is
refused, OpenSSL gets no certificate and no cipher, and the scanner must say
``tls_handshake_failed`` in the STARTTLS stage, quoting the server. OpenSSL is the reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import parse_events, run_scanner, write_inventory
from .tls_servers import (
    VERIFY_CODE_CATEGORY,
    Dovecot,
    Pki,
    SClient,
    SmtpPort,
    assert_tls_names,
    dovecot_available,
    dovecot_servers,
    postfix_available,
    postfix_server,
    postgres_bin,
    postgres_server,
    require,
    s_client,
)

#: the certificate cases each STARTTLS server serves (all verified as good.test)
CERT_CASES = ("valid", "expired", "not-yet-valid", "wrong-host", "self-signed", "untrusted-ca")
#: the server of each kind with TLS off: no STARTTLS offered, or refused
REFUSED = "tls-off"
NAME = "good.test"

#: what the scanner quotes when each server refuses (its hint starts with this)
REFUSAL_HINT = {
    "smtp": 'the smtp server did not start TLS: "no STARTTLS in EHLO: ',
    "imap": 'the imap server did not start TLS: "s1 BAD ',
    "pop3": 'the pop3 server did not start TLS: "-ERR ',
    "postgres": "PostgreSQL answered N to the SSLRequest: the server has ssl = off",
}


def _scan(
    tmp_path: Path, protocol: str, ports: dict[str, int], ca_file: Path
) -> dict[str, dict[str, Any]]:
    """``scanner check`` once over ``ports`` (case -> port); its probe.result per case."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 {NAME}\n")
    lines = "".join(
        f"  - {{name: {case}, host: {NAME}, port: {port}, family: ipv4}}\n"
        for case, port in ports.items()
    )
    inv = write_inventory(
        tmp_path / f"{protocol}.yaml",
        "version: 1\n"
        f"defaults: {{timeout: 5, retries: 0, tls: {{ca_file: {ca_file}, starttls: {protocol}}}}}\n"
        f"targets:\n{lines}",
    )
    proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts)
    expected = 0 if set(ports) == {"valid"} else 1
    assert proc.returncode == expected, proc.stdout[-2000:] + proc.stderr
    return {e["target"]: e for e in parse_events(proc.stdout) if e["event"] == "probe.result"}


def _agree(protocol: str, case: str, ref: SClient, probe: dict[str, Any], pki: Pki) -> str:
    """Assert the scanner's verdict is OpenSSL's; the category both stand for."""
    seen = f"{protocol}/{case}: OpenSSL {ref.code} ({ref.text}); scanner {probe['category']}"
    if ref.leaf is None:
        assert case == REFUSED, f"{seen}: no certificate\n{ref.output}"
        assert probe["category"] == "tls_handshake_failed", seen
        assert probe["hint"] is not None and probe["hint"].startswith(REFUSAL_HINT[protocol])
        assert probe.get("tls") is None, seen
        return "tls_handshake_failed"
    assert case != REFUSED, f"{seen}: OpenSSL got a certificate from a server without TLS"
    assert ref.code in VERIFY_CODE_CATEGORY, f"{seen}: unmapped verify code"
    assert probe["category"] == VERIFY_CODE_CATEGORY[ref.code], (seen, probe["hint"])
    assert ref.leaf == pki.made[case].cert, f"{seen}: not the leaf the case serves"
    tls = probe["tls"]
    assert_tls_names(tls, ref.leaf, seen)
    if probe["category"] == "open":
        assert (tls["version"], tls["cipher"]) == (ref.version, ref.cipher), seen
    return str(probe["category"])


#: every category the cases must reach, so no line of the mapping goes untested
REACHED = {
    "open",
    "tls_expired",
    "tls_not_yet_valid",
    "tls_hostname_mismatch",
    "tls_untrusted",
    "tls_handshake_failed",
}


def _compare_all(tmp_path: Path, protocol: str, ports: dict[str, int], pki: Pki) -> dict[str, str]:
    root = pki.made["root"].cert_file
    references = {case: s_client(port, root, NAME, protocol) for case, port in ports.items()}
    probes = _scan(tmp_path, protocol, ports, root)
    return {case: _agree(protocol, case, references[case], probes[case], pki) for case in ports}


@pytest.mark.usefixtures("openssl")
def test_smtp_postfix_verdicts_are_openssls(tmp_path: Path, pki: Pki) -> None:
    require(postfix_available(), "Postfix (Debian's postfix package) is not installed")
    require(os.geteuid() == 0, "a private Postfix instance must be started as root")
    spec = {case: SmtpPort(pki.made[case]) for case in CERT_CASES}
    spec[REFUSED] = SmtpPort(None)
    with postfix_server(spec, ipv6=False) as server:
        verdicts = _compare_all(tmp_path, "smtp", server.ports, pki)
    assert set(verdicts.values()) == REACHED, verdicts


@pytest.fixture(scope="module")
def dovecots(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Dovecot]]:
    """One Dovecot per case (IMAP and POP3 each), the last with ``ssl = no``."""
    require(dovecot_available(), "Dovecot (dovecot-imapd, dovecot-pop3d) is not installed")
    leaves = {case: pki.made[case] for case in CERT_CASES} | {REFUSED: None}
    with dovecot_servers(tmp_path_factory.mktemp("dovecot"), leaves) as servers:
        yield servers


@pytest.mark.usefixtures("openssl")
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_imap_and_pop3_dovecot_verdicts_are_openssls(
    protocol: str, tmp_path: Path, pki: Pki, dovecots: dict[str, Dovecot]
) -> None:
    ports = {
        case: server.imap if protocol == "imap" else server.pop3
        for case, server in dovecots.items()
    }
    verdicts = _compare_all(tmp_path, protocol, ports, pki)
    assert set(verdicts.values()) == REACHED, verdicts


@pytest.mark.usefixtures("openssl")
def test_postgres_verdicts_are_openssls(tmp_path: Path, pki: Pki) -> None:
    require(postgres_bin() is not None, "PostgreSQL from Debian is not installed")
    require(os.geteuid() == 0, "starting PostgreSQL as its own user needs root")
    verdicts: dict[str, str] = {}
    root = pki.made["root"].cert_file
    with postgres_server(pki.made["valid"]) as server:
        for case in (*CERT_CASES, REFUSED):
            if case == REFUSED:
                server.set_ssl(False)
            else:
                server.use_certificate(pki.made[case], case)
            reference = s_client(server.port, root, NAME, "postgres")
            probe = _scan(tmp_path, "postgres", {case: server.port}, root)[case]
            verdicts[case] = _agree("postgres", case, reference, probe, pki)
    assert set(verdicts.values()) == REACHED, verdicts
