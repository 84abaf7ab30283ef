"""The TLS prober through the lab's routers, and middleboxes that break TLS after TCP.

openssl s_server runs in the server namespace on the healthy address (both families), each
family with its own certificate; the prober runs in the client namespace
(``tests/lab/tlsprobe.py``). Router rules then stage what a deploy gate meets in the field:
a firewall that lets the TCP handshake through but drops the TLS bytes (``tls_timeout``),
and one that answers them with a forged reset (``tls_handshake_failed``, ECONNRESET).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..tls_servers import Pki, tls_certificates
from .topology import REPO_ROOT, SERVER, Lab

PORT = 9443
TLSPROBE = Path(__file__).resolve().with_name("tlsprobe.py")
# the SYN (60-80 bytes) and bare ACKs pass; a ClientHello (hundreds of bytes) does not
PAYLOAD = f"tcp dport {PORT} meta length > 120"


@pytest.fixture(scope="module")
def tls_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    pki = tls_certificates(tmp_path_factory.mktemp("lab-pki"))
    procs = []
    # IPv4 serves the right certificate, IPv6 one for other names: a dual-stack name where
    # only one address is right
    for address, label in ((SERVER["ipv4"], "valid"), (f"[{SERVER['ipv6']}]", "wrong-host")):
        issued = pki.made[label]
        # -www: answers HTTP itself and never reads its stdin (at EOF there, s_server quits)
        argv = ["openssl", "s_server", "-www", "-accept", f"{address}:{PORT}",
                "-cert", str(issued.cert_file), "-key", str(issued.key_file)]  # fmt: skip
        if issued.sent_file is not None:
            argv += ["-cert_chain", str(issued.sent_file)]
        procs.append(lab.server.spawn(argv, ready_line="ACCEPT"))
    try:
        yield pki
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=5)


def probe(lab: Lab, pki: Pki, timeout: float = 1.0) -> dict[str, dict[str, Any]]:
    jobs = [
        {"address": SERVER[family], "port": PORT, "server_name": "good.test",
         "ca_file": str(pki.made["root"].cert_file), "timeout": timeout}
        for family in ("ipv4", "ipv6")
    ]  # fmt: skip
    proc = lab.client.run([sys.executable, str(TLSPROBE)], input=json.dumps(jobs),
                          timeout=30, cwd=REPO_ROOT)  # fmt: skip
    four, six = json.loads(proc.stdout)
    return {"ipv4": four, "ipv6": six}


def test_through_the_routers_one_family_with_the_wrong_certificate(lab: Lab, tls_lab: Pki) -> None:
    got = probe(lab, tls_lab)
    assert got["ipv4"]["category"] == "open" and got["ipv4"]["hint"] is None
    assert got["ipv4"]["version"] == "TLSv1.3"
    assert got["ipv4"]["subject"] == tls_lab.made["valid"].subject
    assert got["ipv6"]["category"] == "tls_hostname_mismatch"
    assert got["ipv6"]["sans"] == ["other.test", "www.other.test"]
    assert "other.test, www.other.test, not good.test" in got["ipv6"]["hint"]


def test_firewall_dropping_tls_after_the_tcp_handshake(lab: Lab, tls_lab: Pki) -> None:
    with lab.rule("router1", f"{PAYLOAD} drop"):
        got = probe(lab, tls_lab, timeout=0.5)
    for family in ("ipv4", "ipv6"):
        result = got[family]
        assert result["category"] == "tls_timeout", (family, result)
        assert result["timed_out"] and result["received"] == 0
        assert "sent nothing back to the TLS ClientHello within 0.5s" in result["hint"]
        assert 490 <= result["tls_ms"] < 3000


def test_firewall_forging_a_reset_for_tls(lab: Lab, tls_lab: Pki) -> None:
    with lab.rule("router1", f"{PAYLOAD} reject with tcp reset"):
        got = probe(lab, tls_lab)
    for family in ("ipv4", "ipv6"):
        result = got[family]
        assert result["category"] == "tls_handshake_failed", (family, result)
        assert result["errno"] == "ECONNRESET"
        assert "(ECONNRESET) after 0 bytes from the server" in result["hint"]
