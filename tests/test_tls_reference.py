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

from pathlib import Path
from typing import Any

import pytest

from .conftest import parse_events, run_scanner, write_inventory
from .tls_servers import VERIFY_CODE_CATEGORY, Nginx, Pki, assert_tls_names, s_client

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


@pytest.mark.usefixtures("openssl")
def test_every_verdict_is_openssls(tmp_path: Path, nginx: Nginx, pki: Pki) -> None:
    root = pki.made["root"].cert_file
    probes = _scan(tmp_path, nginx, root)
    seen: dict[str, str] = {}
    for case, name in CASES.items():
        ref = s_client(nginx.ports[case], root, name)
        assert ref.leaf is not None, ref.output
        assert ref.code in VERIFY_CODE_CATEGORY, f"{case}: OpenSSL says {ref.code} ({ref.text})"
        probe = probes[case]
        assert probe["category"] == VERIFY_CODE_CATEGORY[ref.code], (case, ref, probe["hint"])
        assert_tls_names(probe["tls"], ref.leaf, case)
        seen[case] = f"{ref.code} {ref.text}"
    # the cases reach every verdict OpenSSL gives here, so no mapping goes untested
    assert {VERIFY_CODE_CATEGORY[int(v.split()[0])] for v in seen.values()} == {
        "open",
        "tls_expired",
        "tls_not_yet_valid",
        "tls_hostname_mismatch",
        "tls_untrusted",
    }, seen
