"""The scanner's TLS verdicts against OpenSSL's own client, in the same run.

Real nginx (a config of the test's own, on loopback) serves every certificate case the
tests make. For each, ``openssl s_client`` — the reference a TLS operator reaches for —
connects with the same trust anchor, SNI and name to verify, and its ``Verify return code``
(X509_V_ERR_*) and the certificate it was shown are compared with what ``scanner check``
reported for the same port: the category must be the one that code means, and subject,
expiry and fingerprint must be those of the certificate s_client printed. Where the two
disagree, this fails: OpenSSL's verdict is the reference.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .conftest import parse_events, run_scanner, write_inventory
from .test_tls_check import _require
from .tls_servers import Nginx, Pki, start_nginx, tls_certificates

#: certificate case -> (the name verified, what OpenSSL's verify code must mean for us)
CASES = {
    "valid": "good.test",
    "valid-ip": "127.0.0.1",
    "expired": "good.test",
    "not-yet-valid": "good.test",
    "wrong-host": "good.test",
    "self-signed": "good.test",
    "missing-intermediate": "good.test",
    "untrusted-ca": "good.test",
    "leaf-of-unknown-root": "good.test",
    "expiring": "good.test",
    "expiring-intermediate": "good.test",
}

#: X509_V_ERR_* codes (openssl/x509_vfy.h) and the category each means
VERIFY_CODE_CATEGORY = {
    0: "open",  # X509_V_OK
    2: "tls_untrusted",  # UNABLE_TO_GET_ISSUER_CERT
    9: "tls_not_yet_valid",  # CERT_NOT_YET_VALID
    10: "tls_expired",  # CERT_HAS_EXPIRED
    18: "tls_untrusted",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "tls_untrusted",  # SELF_SIGNED_CERT_IN_CHAIN
    20: "tls_untrusted",  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "tls_untrusted",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    62: "tls_hostname_mismatch",  # HOSTNAME_MISMATCH
    64: "tls_hostname_mismatch",  # IP_ADDRESS_MISMATCH
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return tls_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def nginx(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    _require(shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(), "no nginx")
    server = start_nginx(pki, tmp_path_factory.mktemp("nginx"), list(CASES))
    try:
        yield server
    finally:
        server.stop()


def _s_client(port: int, name: str, ca_file: Path) -> tuple[int, str, x509.Certificate]:
    """OpenSSL's verdict for one port: its verify code, its text, the leaf it was shown."""
    verify = ["-verify_ip", name] if name[0].isdigit() else ["-verify_hostname", name]
    sni = ["-noservername"] if name[0].isdigit() else ["-servername", name]
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *sni, *verify,
            "-CAfile", str(ca_file), "-showcerts"]  # fmt: skip
    proc = subprocess.run(
        argv,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found = re.search(r"Verify return code: (\d+) \(([^)]*)\)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    assert pem, proc.stdout
    leaf = x509.load_pem_x509_certificate(pem.group(0).encode())
    return int(found.group(1)), found.group(2), leaf


def _scan(tmp_path: Path, nginx: Nginx, ca_file: Path) -> dict[str, dict[str, Any]]:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 good.test\n")
    lines = "".join(
        f"  - {{name: {case}, host: {'127.0.0.1' if name[0].isdigit() else name}, "
        f"port: {nginx.ports[case]}, family: ipv4}}\n"
        for case, name in CASES.items()
    )
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 5, retries: 0, tls: {{ca_file: {ca_file}}}}}\n"
        f"targets:\n{lines}",
    )
    proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts)
    assert proc.returncode == 1, proc.stderr
    return {e["target"]: e for e in parse_events(proc.stdout) if e["event"] == "probe.result"}


def test_every_verdict_is_openssls(tmp_path: Path, nginx: Nginx, pki: Pki) -> None:
    _require(shutil.which("openssl") is not None, "no openssl command")
    root = pki.made["root"].cert_file
    probes = _scan(tmp_path, nginx, root)
    now = dt.datetime.now(dt.UTC)
    seen: dict[str, str] = {}
    for case, name in CASES.items():
        code, text, leaf = _s_client(nginx.ports[case], name, root)
        assert code in VERIFY_CODE_CATEGORY, f"{case}: OpenSSL says {code} ({text}): unmapped"
        probe = probes[case]
        assert probe["category"] == VERIFY_CODE_CATEGORY[code], (case, code, text, probe["hint"])
        tls = probe["tls"]
        assert tls["fingerprint_sha256"] == leaf.fingerprint(hashes.SHA256()).hex(), case
        assert tls["subject"] == leaf.subject.rfc4514_string(), case
        assert dt.datetime.fromisoformat(tls["not_after"]) == leaf.not_valid_after_utc, case
        days = (leaf.not_valid_after_utc - now).total_seconds() / 86400
        assert abs(tls["days_left"] - days) < 1, case
        seen[case] = f"{code} {text}"
    # the cases reach every verdict OpenSSL gives here, so no mapping goes untested
    assert {VERIFY_CODE_CATEGORY[int(v.split()[0])] for v in seen.values()} == {
        "open",
        "tls_expired",
        "tls_not_yet_valid",
        "tls_hostname_mismatch",
        "tls_untrusted",
    }, seen
