"""Real TLS servers for the TLS prober's tests: certificates made here, servers on loopback.

Every certificate is made by the test with ``cryptography`` (a CA, an intermediate, leaves
that are valid, expired, not yet valid, for another name, self-signed, from an unknown CA,
expiring soon); the servers are real programs, each with a config the test writes and each
stopped at the end: nginx (one process, one port per case), ``openssl s_server`` (TLS 1.0,
mutual TLS), Dovecot (IMAP and POP3 STARTTLS), Postfix (SMTP STARTTLS: a private instance,
one smtpd port per case) and PostgreSQL from Debian (its SSLRequest), run as the
unprivileged ``postgres`` user in a temporary data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import glob
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from .conftest import free_port

UTC = dt.UTC
NOW = dt.datetime.now(UTC)
DAY = dt.timedelta(days=1)


def require(condition: bool, reason: str) -> None:
    """Skip outside CI when a server program is missing; in CI (``CI=true``) that is a
    failure: every server these tests run is installed there."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"TLS test server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Issued:
    """A certificate and its key as PEM files; ``chain`` holds what a server should send."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path
    chain_file: Path  # leaf first, then the intermediates the server sends
    sent_file: Path | None  # the intermediates alone (None: the server sends its leaf only)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scanner tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass
class Pki:
    """Makes certificates into ``directory``."""

    directory: Path
    count: int = 0
    made: dict[str, Issued] = field(default_factory=dict)

    def _write(
        self,
        label: str,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        sent: list[x509.Certificate],
    ) -> Issued:
        cert_file = self.directory / f"{label}.crt"
        key_file = self.directory / f"{label}.key"
        chain_file = self.directory / f"{label}.chain.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        chain_file.write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *sent])
        )
        sent_file = None
        if sent:
            sent_file = self.directory / f"{label}.sent.pem"
            sent_file.write_bytes(
                b"".join(c.public_bytes(serialization.Encoding.PEM) for c in sent)
            )
        issued = Issued(cert, key, cert_file, key_file, chain_file, sent_file)
        self.made[label] = issued
        return issued

    def ca(
        self,
        label: str,
        issuer: Issued | None = None,
        not_after: dt.datetime | None = None,
    ) -> Issued:
        """A root CA (``issuer`` None) or an intermediate CA under ``issuer``."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(f"scanner test {label}")
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - 30 * DAY)
            .not_valid_after(not_after or NOW + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        signer = issuer.key if issuer else key
        cert = builder.sign(signer, hashes.SHA256())
        sent = [issuer.cert] if issuer and issuer.cert.issuer != issuer.cert.subject else []
        return self._write(label, cert, key, sent)

    def leaf(
        self,
        label: str,
        issuer: Issued | None,
        names: tuple[str, ...] = ("good.test",),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        send_chain: bool = True,
        aia: str | None = None,
        client: bool = False,
    ) -> Issued:
        """A server (or client) certificate; ``issuer`` None makes it self-signed."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(names[0] if names else label)
        sans: list[x509.GeneralName] = []
        for value in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                sans.append(x509.DNSName(value))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - 10 * DAY)
            .not_valid_after(not_after or NOW + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        if aia is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(aia),
                        )
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
        sent: list[x509.Certificate] = []
        if send_chain and issuer is not None and issuer.cert.issuer != issuer.cert.subject:
            sent = [issuer.cert]  # the intermediate; a server never needs to send the root
        return self._write(label, cert, key, sent)


def tls_certificates(directory: Path) -> Pki:
    """Every certificate the TLS cases need, by label."""
    pki = Pki(directory)
    root = pki.ca("root")
    inter = pki.ca("intermediate", issuer=root)
    other_root = pki.ca("other-root")
    other_inter = pki.ca("other-intermediate", issuer=other_root)
    pki.leaf("valid", inter)
    pki.leaf("valid-ip", inter, names=("127.0.0.1", "::1"))
    pki.leaf("expired", inter, not_before=NOW - 400 * DAY, not_after=NOW - 3 * DAY)
    pki.leaf("not-yet-valid", inter, not_before=NOW + 5 * DAY, not_after=NOW + 400 * DAY)
    pki.leaf("wrong-host", inter, names=("other.test", "www.other.test"))
    pki.leaf("self-signed", None)
    pki.leaf(
        "missing-intermediate",
        inter,
        send_chain=False,
        aia="http://pki.scanner.test/intermediate.crt",
    )
    pki.leaf("untrusted-ca", other_inter)
    pki.leaf("leaf-of-unknown-root", other_root)
    pki.leaf("expiring", inter, not_after=NOW + 10 * DAY + dt.timedelta(hours=1))
    short_inter = pki.ca("short-intermediate", issuer=root, not_after=NOW + 20 * DAY)
    pki.leaf("expiring-intermediate", short_inter)
    pki.leaf("client", inter, names=("client.test",), client=True)
    return pki


# --- nginx ------------------------------------------------------------------------------

#: the certificate cases the suite's nginx serves (the ``nginx`` fixture), a port each
NGINX_CASES = (
    "valid",
    "valid-ip",
    "expired",
    "not-yet-valid",
    "wrong-host",
    "self-signed",
    "missing-intermediate",
    "untrusted-ca",
    "leaf-of-unknown-root",
    "expiring",
    "expiring-intermediate",
)
#: its ports where 127.0.0.1 and ::1 serve different certificates: (IPv4's, IPv6's)
NGINX_SPLIT = {"dual-stack": ("valid", "wrong-host")}


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


def _wait_port(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.02)
    return False


@dataclass
class Nginx:
    """One nginx process, one TLS server block per certificate case, plus a plain HTTP port."""

    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    error_log: Path

    def stop(self) -> None:
        terminate(self.proc)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 10 s to exit, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_nginx(
    pki: Pki, workdir: Path, cases: list[str], split: dict[str, tuple[str, str]] | None = None
) -> Nginx:
    """nginx from Debian with a config of ours on 127.0.0.1 (and ::1); never its default.

    Each case serves its certificate on both addresses; each ``split`` case serves one
    certificate on 127.0.0.1 and another on ::1 on the same port (a dual-stack name where
    only one address has the right certificate).
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    split = split or {}
    ports = {case: free_port() for case in [*cases, *split, "plain-http"]}
    servers = []
    for case, (v4, v6) in split.items():
        for listen, label in ((f"127.0.0.1:{ports[case]}", v4), (f"[::1]:{ports[case]}", v6)):
            issued = pki.made[label]
            servers.append(
                f"""
    server {{
        listen {listen} ssl;
        ssl_certificate {issued.chain_file};
        ssl_certificate_key {issued.key_file};
        return 200 "ok\\n";
    }}"""
            )
    for case in cases:
        issued = pki.made[case]
        servers.append(
            f"""
    server {{
        listen 127.0.0.1:{ports[case]} ssl;
        listen [::1]:{ports[case]} ssl;
        ssl_certificate {issued.chain_file};
        ssl_certificate_key {issued.key_file};
        ssl_protocols TLSv1.2 TLSv1.3;
        return 200 "ok\\n";
    }}"""
        )
    servers.append(
        f"""
    server {{
        listen 127.0.0.1:{ports["plain-http"]};
        return 200 "plain\\n";
    }}"""
    )
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    error_log = workdir / "error.log"
    conf.write_text(
        f"""
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {error_log} info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    {"".join(servers)}
}}
"""
    )
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(error_log), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if not _wait_port("127.0.0.1", ports["plain-http"]):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeError(f"nginx did not start: {err.decode()} {error_log.read_text()}")
    return Nginx(ports, proc, error_log)


# --- openssl s_server -------------------------------------------------------------------


@contextlib.contextmanager
def s_server(*args: str, host: str = "127.0.0.1") -> Iterator[int]:
    """``openssl s_server`` on a free port of ``host`` with ``args``; yields the port."""
    port = free_port()
    accept = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", accept, "-naccept", "1000", "-quiet", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        if not _wait_port(host, port):
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError(f"s_server did not start: {err.decode()}")
        yield port
    finally:
        proc.kill()
        proc.communicate(timeout=5)


# --- openssl s_client: the reference the verdicts are held to -------------------------

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


@dataclass(frozen=True)
class SClient:
    """What ``openssl s_client`` saw on one port."""

    code: int  # its Verify return code
    text: str
    leaf: x509.Certificate | None  # None: no certificate (the server never started TLS)
    version: str | None
    cipher: str | None
    output: str


def s_client(port: int, ca_file: Path, name: str, starttls: str | None = None) -> SClient:
    """``openssl s_client`` to 127.0.0.1:``port`` verifying ``name`` (an IP address: no SNI,
    ``-verify_ip``) against ``ca_file``, after ``-starttls`` when given."""
    is_ip = name[0].isdigit()
    verify = ["-verify_ip", name] if is_ip else ["-verify_hostname", name]
    sni = ["-noservername"] if is_ip else ["-servername", name]
    preamble = ["-starttls", starttls] if starttls else []
    argv = ["openssl", "s_client", *preamble, "-connect", f"127.0.0.1:{port}", *sni, *verify,
            "-CAfile", str(ca_file), "-showcerts"]  # fmt: skip
    proc = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30, check=False)
    output = proc.stdout + proc.stderr
    found = re.search(r"Verify return code: (\d+) \(([^)]*)\)", proc.stdout)
    assert found, output
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    leaf = x509.load_pem_x509_certificate(pem.group(0).encode()) if pem else None
    session = re.search(r"^New, (\S+), Cipher is (\S+)$", proc.stdout, re.M)
    version, cipher = (session.group(1), session.group(2)) if session else ("", "")
    version, cipher = (None if v == "(NONE)" else v for v in (version, cipher))
    if leaf is None:
        # no TLS: s_client fails, and says it saw neither a certificate nor a cipher
        assert proc.returncode != 0, output
        assert "no peer certificate available" in proc.stdout, output
        assert version is None and cipher is None, output
    return SClient(int(found.group(1)), found.group(2), leaf, version, cipher, output)


def assert_tls_names(tls: dict[str, Any], leaf: x509.Certificate, seen: str) -> None:
    """A probe's ``tls`` object (its JSON) names ``leaf``: fingerprint, subject, expiry."""
    assert tls["fingerprint_sha256"] == leaf.fingerprint(hashes.SHA256()).hex(), seen
    assert tls["subject"] == leaf.subject.rfc4514_string(), seen
    assert dt.datetime.fromisoformat(tls["not_after"]) == leaf.not_valid_after_utc, seen
    days = (leaf.not_valid_after_utc - dt.datetime.now(UTC)).total_seconds() / 86400
    assert abs(tls["days_left"] - days) < 1, seen


# --- silent and closing listeners -------------------------------------------------------


class SilentServer:
    """Accepts TCP connections and never sends a byte (holds them until closed).

    The accept loop of the misbehaving servers: a subclass says what :meth:`_answer` does
    with each connection before it is held.
    """

    def __init__(self, backlog: int = 64) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self._answer(conn):
                self.held.append(conn)

    def _answer(self, conn: socket.socket) -> bool:
        """What to do with ``conn``; True to hold it open until :meth:`close`."""
        return True

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


class ScriptedServer(SilentServer):
    """A TCP server that answers every connection with one misbehaviour, on real sockets.

    ``reset``: reads the ClientHello, then resets the connection (linger 0). ``garbage``:
    answers with bytes that are neither TLS nor text. ``stall``: answers with the first bytes
    of a TLS handshake record, then nothing.
    """

    ANSWERS: ClassVar[dict[str, bytes]] = {
        "garbage": b"\x00\x00\x00\x1cbinary protocol\xff\xfe",
        "stall": b"\x16\x03\x03\x00\x7a\x02\x00\x00",
    }

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        super().__init__(backlog=16)

    def _answer(self, conn: socket.socket) -> bool:
        conn.settimeout(2.0)
        with contextlib.suppress(OSError):
            conn.recv(4096)  # the ClientHello
            if self.behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return False
            conn.sendall(self.ANSWERS[self.behaviour])
        return True


# --- Dovecot (IMAP and POP3 STARTTLS) ---------------------------------------------------


@dataclass
class Dovecot:
    imap: int
    pop3: int
    proc: subprocess.Popen[bytes]
    log: Path


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


def _start_dovecot(workdir: Path, leaf: Issued | None) -> Dovecot:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    imap, pop3 = free_port(), free_port()
    for sub in ("run", "state", "home"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    log = workdir / "dovecot.log"
    ssl = (
        f"ssl = required\nssl_cert = <{leaf.chain_file}\nssl_key = <{leaf.key_file}\n"
        if leaf
        else "ssl = no\n"
    )
    conf = workdir / "dovecot.conf"
    conf.write_text(
        f"""base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {log}
protocols = imap pop3
listen = 127.0.0.1
{ssl}auth_mechanisms = plain
disable_plaintext_auth = no
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={workdir}/home
}}
mail_location = maildir:{workdir}/home/Maildir
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    proc = subprocess.Popen(
        [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if not (_wait_port("127.0.0.1", imap) and _wait_port("127.0.0.1", pop3)):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeError(f"dovecot did not start: {err.decode()} {log.read_text()}")
    return Dovecot(imap, pop3, proc, log)


@contextlib.contextmanager
def dovecot_servers(
    workdir: Path, leaves: dict[str, Issued | None]
) -> Iterator[dict[str, Dovecot]]:
    """Debian's Dovecot with a config of ours, one instance per ``leaves`` entry (in
    ``workdir/<label>``): IMAP and POP3 on 127.0.0.1, STARTTLS with the entry's certificate
    (None: ``ssl = no``, so STARTTLS is refused). No mail is ever served.

    Each starts in ~20 ms but takes ~1 s to wind down after SIGTERM, so all are told to stop
    first and then waited for together.
    """
    servers: dict[str, Dovecot] = {}
    try:
        for label, leaf in leaves.items():
            servers[label] = _start_dovecot(workdir / label, leaf)
        yield servers
    finally:
        for server in servers.values():
            server.proc.terminate()
        for server in servers.values():
            try:
                server.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=5)


# --- Postfix (SMTP STARTTLS) ------------------------------------------------------------

POSTFIX_DAEMONS = Path("/usr/lib/postfix/sbin")

#: the services a private instance runs besides its smtpd listeners: no smtp, lmtp, local,
#: virtual or pipe service exists, so nothing it accepted could ever leave it
_POSTFIX_SERVICES = """\
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def postfix_available() -> bool:
    return shutil.which("postfix") is not None and (POSTFIX_DAEMONS / "master").exists()


def free_dual_port() -> int:
    """A port free on both 127.0.0.1 and ::1 (a server listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6) as v6:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", 0))
            port = int(v6.getsockname()[1])
            with socket.socket() as v4:
                try:
                    v4.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


@dataclass(frozen=True)
class SmtpPort:
    """One smtpd listener of a :class:`Postfix`: the certificate its STARTTLS serves (None:
    ``smtpd_tls_security_level = none``, so STARTTLS is not offered) and main.cf overrides
    for this port alone (``-o name=value`` in master.cf)."""

    leaf: Issued | None
    overrides: tuple[tuple[str, str], ...] = ()


@dataclass
class Postfix:
    """A private Postfix: its own config, queue and data directories, stopped at the end."""

    ports: dict[str, int]
    top: Path
    proc: subprocess.Popen[bytes]

    @property
    def config(self) -> Path:
        return self.top / "conf"

    @property
    def log(self) -> Path:
        return self.top / "maillog"

    def log_tail(self, size: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-size:]
        return "(no maillog)"

    def log_size(self) -> int:
        with contextlib.suppress(OSError):
            return self.log.stat().st_size
        return 0

    def said(self, since: int, text: str, timeout: float = 5.0) -> bool:
        """Whether the maillog gained ``text`` past byte ``since`` (postlogd writes the
        lines of a session a moment after it ended: waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), self.log.open("rb") as log:
                log.seek(since)
                if text.encode() in log.read():
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to the master (what ``postfix stop`` sends; the master passes it to its
        children), then SIGKILL to whatever of its process group is left."""
        terminate(self.proc)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the master made it its own session


def _postfix_main_cf(top: Path, ipv6: bool) -> str:
    """main.cf of a private instance that never relays, delivers or asks a resolver."""
    nothing = "error:this test server delivers nothing"
    return f"""\
compatibility_level = 3.6
queue_directory = {top}/queue
data_directory = {top}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {top}/maillog
maillog_file_prefixes = {top}
myhostname = mail.scanner.test
mydomain = scanner.test
myorigin = $myhostname
mydestination =
relay_domains =
relayhost =
mynetworks = 127.0.0.0/8{" [::1]/128" if ipv6 else ""}
inet_interfaces = loopback-only
inet_protocols = {"ipv4, ipv6" if ipv6 else "ipv4"}
smtpd_relay_restrictions = reject_unauth_destination
default_transport = {nothing}
relay_transport = {nothing}
local_transport = {nothing}
alias_maps =
alias_database =
local_recipient_maps =
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
biff = no
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
"""


def _postfix_master_cf(ports: dict[str, int], spec: dict[str, SmtpPort], ipv6: bool) -> str:
    lines: list[str] = []
    for case, port in ports.items():
        given = spec[case]
        options: list[tuple[str, str]] = []
        if given.leaf is None:
            options.append(("smtpd_tls_security_level", "none"))
        else:
            chain = f"{given.leaf.key_file},{given.leaf.chain_file}"
            options.append(("smtpd_tls_chain_files", chain))
        options.extend(given.overrides)
        flags = " ".join(f"-o {name}={value}" for name, value in options)
        hosts = ["127.0.0.1", "[::1]"] if ipv6 else ["127.0.0.1"]
        lines.extend(f"{host}:{port} inet n - n - - smtpd {flags}" for host in hosts)
    return "\n".join(lines) + "\n" + _POSTFIX_SERVICES


@contextlib.contextmanager
def postfix_server(spec: dict[str, SmtpPort], ipv6: bool = True) -> Iterator[Postfix]:
    """Debian's Postfix as a private instance: one smtpd port per ``spec`` entry on
    127.0.0.1 (and ::1), never with /etc/postfix's config, never running past the test.

    Run as root, as Postfix must be: the master drops to ``mail_owner`` (postfix) for its
    daemons, so every directory on the way to the queue must be one that user may enter
    (hence a directory of its own under the temporary directory, not pytest's private
    one); ``postfix check`` makes the queue layout with Postfix's own owners and modes
    (its ``post-install create-missing``); the data directory belongs to postfix. The
    master then runs in the foreground as our child: nothing to find by a pid file.
    """
    if not postfix_available():
        raise RuntimeError("Postfix (Debian's postfix package) is not installed")
    top = Path(tempfile.mkdtemp(prefix="scanner-postfix-"))
    top.chmod(0o755)
    server: Postfix | None = None
    try:
        for sub in ("conf", "queue", "data"):
            (top / sub).mkdir()
        pw = pwd.getpwnam("postfix")
        os.chown(top / "data", pw.pw_uid, pw.pw_gid)
        ports = {case: free_dual_port() if ipv6 else free_port() for case in spec}
        written = time.time() - 60
        for name, text in (
            ("main.cf", _postfix_main_cf(top, ipv6)),
            ("master.cf", _postfix_master_cf(ports, spec, ipv6)),
        ):
            (top / "conf" / name).write_text(text)
            # Postfix re-reads a main.cf changed within the last 2 s until it is older
            # (a guard against half-written files): 2.1 s of every start-up, unless dated back
            os.utime(top / "conf" / name, (written, written))
        conf = str(top / "conf")
        check = subprocess.run(
            ["postfix", "-c", conf, "check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        log = top / "maillog"
        said = log.read_text() if log.exists() else ""
        if check.returncode != 0 or "warning:" in said or "fatal:" in said:
            raise RuntimeError(f"postfix check failed: {check.stderr} {said}")
        proc = subprocess.Popen(
            [str(POSTFIX_DAEMONS / "master"), "-c", conf],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = Postfix(ports, top, proc)
        hosts = ["127.0.0.1", "::1"] if ipv6 else ["127.0.0.1"]
        for port in ports.values():
            if not all(_wait_port(host, port) for host in hosts):
                raise RuntimeError(f"postfix did not start: {server.log_tail()}")
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(top, ignore_errors=True)


# --- PostgreSQL -------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries (``/usr/lib/postgresql/N/bin``), the newest."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    port: int
    datadir: Path
    bindir: Path
    user: str

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", self.user, "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def set_ssl(self, on: bool) -> None:
        value = "on" if on else "off"
        self.sql(f"ALTER SYSTEM SET ssl = {value}")
        self._reload("ssl", value)

    def _reload(self, name: str, value: str) -> None:
        """pg_reload_conf(), then wait until a new session sees ``name`` = ``value``: the
        postmaster applies a reload (certificates and ssl included) before it starts that
        session."""
        self.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self.sql(f"SHOW {name}") != value:
            assert time.monotonic() < deadline, f"PostgreSQL did not reload {name} = {value}"
            time.sleep(0.05)

    def sql(self, statement: str) -> str:
        """One statement through psql on the server's Unix socket; its output, unaligned."""
        psql = str(self.bindir / "psql")
        host = str(self.datadir.parent / "sock")
        proc = self.run(
            psql, "-h", host, "-p", str(self.port), "-d", "postgres", "-At", "-c", statement
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def use_certificate(self, leaf: Issued, label: str) -> None:
        """Serve ``leaf`` from now on: its files under a name of their own, ALTER SYSTEM, a
        reload; returns once a new session sees the new file."""
        pw = pwd.getpwnam(self.user)
        names = {}
        for kind, source in (("crt", leaf.chain_file), ("key", leaf.key_file)):
            target = self.datadir.parent / f"{label}.{kind}"
            shutil.copy(source, target)
            os.chown(target, pw.pw_uid, pw.pw_gid)
            target.chmod(0o600)
            names[kind] = str(target)
        self.sql(f"ALTER SYSTEM SET ssl_cert_file = '{names['crt']}'")
        self.sql(f"ALTER SYSTEM SET ssl_key_file = '{names['key']}'")
        self._reload("ssl_cert_file", names["crt"])

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop")


@contextlib.contextmanager
def postgres_server(leaf: Issued) -> Iterator[Postgres]:
    """A real PostgreSQL: initdb into a temporary directory, ssl = on with ``leaf``."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL (Debian's postgresql package) is not installed")
    user = "postgres"
    pw = pwd.getpwnam(user)
    top = Path(tempfile.mkdtemp(prefix="scanner-pg-"))
    try:
        os.chown(top, pw.pw_uid, pw.pw_gid)
        datadir, sockdir = top / "data", top / "sock"
        sockdir.mkdir()
        os.chown(sockdir, pw.pw_uid, pw.pw_gid)
        for name, source in (("server.crt", leaf.chain_file), ("server.key", leaf.key_file)):
            target = top / name
            shutil.copy(source, target)
            os.chown(target, pw.pw_uid, pw.pw_gid)
            target.chmod(0o600)
        server = Postgres(free_port(), datadir, bindir, user)
        init = server.run(str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", user)
        assert init.returncode == 0, init.stderr
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                f"unix_socket_directories = '{sockdir}'\nssl = on\n"
                f"ssl_cert_file = '{top / 'server.crt'}'\nssl_key_file = '{top / 'server.key'}'\n"
                "fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n"
            )
        started = server.run(
            str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(top / "log"), "-w", "start"
        )
        assert started.returncode == 0, started.stderr + (top / "log").read_text()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- a client socket the way the Dialer hands it over -----------------------------------


async def connected(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket, as the Dialer hands it to a prober."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock
