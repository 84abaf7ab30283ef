"""The TLS prober against real servers on loopback: nginx, openssl s_server, Dovecot, Postfix,
PostgreSQL.

Each case connects a non-blocking socket itself (as the Dialer will hand one over), runs
:func:`scanner.probers.tls.handshake` on it, and asserts the category, the hint and the
``tls`` fields against the certificate the test made.
"""

from __future__ import annotations

import _socket
import asyncio
import datetime as dt
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.models import Category
from scanner.probers.tls import (
    TlsConfigError,
    TlsInfo,
    TlsOutcome,
    TlsSettings,
    classify_tls,
    context_for,
    handshake,
    start_handshake,
    tls_info,
)

from .conftest import Listener
from .tls_servers import (
    Dovecot,
    Issued,
    Nginx,
    Pki,
    Postfix,
    ScriptedServer,
    SilentServer,
    SmtpPort,
    connected,
    dovecot_available,
    dovecot_servers,
    postfix_available,
    postfix_server,
    postgres_bin,
    postgres_server,
    require,
    s_server,
)

C = Category


@pytest.fixture(scope="session")
def trust(pki: Pki) -> TlsSettings:
    return TlsSettings(ca_file=str(pki.made["root"].cert_file))


async def check(
    port: int,
    settings: TlsSettings,
    name: str | None = "good.test",
    host: str = "127.0.0.1",
    timeout: float = 5.0,
) -> tuple[TlsOutcome, Category, str | None, TlsInfo | None]:
    sock = await connected(host, port)
    try:
        outcome = await handshake(sock, settings, name, timeout)
    finally:
        sock.close()
    now = dt.datetime.now(dt.UTC)
    category, hint = classify_tls(outcome, settings, now)
    return outcome, category, hint, tls_info(outcome, now)


def assert_leaf(info: TlsInfo | None, issued: Issued, chain_length: int) -> None:
    """The tls fields name exactly the certificate the server was given."""
    assert info is not None
    assert info.subject == issued.subject
    assert info.issuer == issued.cert.issuer.rfc4514_string()
    assert info.fingerprint_sha256 == issued.fingerprint
    assert info.not_after == issued.cert.not_valid_after_utc.isoformat()
    assert info.chain_length == chain_length
    assert info.chain_source == "presented"


# --- nginx: one server block per certificate case ---------------------------------------


async def test_valid_chain_is_open_with_every_tls_field(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    outcome, category, hint, info = await check(nginx.ports["valid"], trust)
    assert (category, hint) == (C.OPEN, None)
    assert outcome.completed and outcome.stage == "done" and outcome.error is None
    assert outcome.version == "TLSv1.3" and outcome.cipher
    assert outcome.tls_ms > 0 and outcome.received > 0
    assert_leaf(info, pki.made["valid"], chain_length=2)
    assert info is not None
    assert info.sans == ("good.test",)
    assert 363 <= (info.days_left or 0) <= 365
    assert info.version == "TLSv1.3" and info.cipher == outcome.cipher
    # the earliest expiry of the chain is the leaf's (the intermediate lasts ten years)
    assert info.earliest_subject == pki.made["valid"].subject


async def test_sni_selects_nothing_but_is_sent_and_ipv6_works(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    _, category, hint, info = await check(nginx.ports["valid"], trust, host="::1")
    assert (category, hint) == (C.OPEN, None)
    assert_leaf(info, pki.made["valid"], chain_length=2)


async def test_ip_literal_checks_the_ip_san(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    _, category, hint, info = await check(nginx.ports["valid-ip"], trust, name="127.0.0.1")
    assert (category, hint) == (C.OPEN, None)
    assert info is not None and info.sans == ("127.0.0.1", "::1")
    # the same certificate by a name it does not carry: the SANs presented are named
    _, category, hint, _ = await check(nginx.ports["valid-ip"], trust, name="good.test")
    assert category is C.TLS_HOSTNAME_MISMATCH
    assert hint is not None and "127.0.0.1, ::1" in hint and "not good.test" in hint


async def test_expired(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["expired"], trust)
    assert category is C.TLS_EXPIRED
    assert outcome.error is not None and outcome.error.verify_code == 10
    assert hint is not None
    assert "the server's certificate (CN=good.test" in hint and "expired on" in hint
    assert "(3 days ago)" in hint
    assert_leaf(info, pki.made["expired"], chain_length=2)
    assert info is not None and info.days_left is not None and info.days_left < 0
    assert info.version is None  # the handshake never finished


async def test_not_yet_valid(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["not-yet-valid"], trust)
    assert category is C.TLS_NOT_YET_VALID
    assert outcome.error is not None and outcome.error.verify_code == 9
    start = pki.made["not-yet-valid"].cert.not_valid_before_utc.strftime("%Y-%m-%d")
    assert hint is not None and "not valid before " + start in hint and "clocks" in hint
    assert_leaf(info, pki.made["not-yet-valid"], chain_length=2)


async def test_wrong_host_names_the_sans(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["wrong-host"], trust)
    assert category is C.TLS_HOSTNAME_MISMATCH
    assert outcome.error is not None and outcome.error.verify_code == 62
    assert hint == (
        "the certificate is for other.test, www.other.test, not good.test: fix server_name, "
        "or reissue the certificate with that name"
    )
    assert_leaf(info, pki.made["wrong-host"], chain_length=2)
    assert info is not None and info.sans == ("other.test", "www.other.test")


async def test_server_name_setting_wins_over_the_host(nginx: Nginx, trust: TlsSettings) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, server_name="www.other.test")
    outcome, category, hint, _ = await check(nginx.ports["wrong-host"], settings)
    assert (category, hint) == (C.OPEN, None)
    assert outcome.server_name == "www.other.test"


async def test_self_signed(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["self-signed"], trust)
    assert category is C.TLS_UNTRUSTED
    assert outcome.error is not None and outcome.error.verify_code == 18
    assert hint is not None and "is self-signed" in hint and "ca_file" in hint
    assert_leaf(info, pki.made["self-signed"], chain_length=1)


async def test_missing_intermediate_is_an_incomplete_chain(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    outcome, category, hint, info = await check(nginx.ports["missing-intermediate"], trust)
    assert category is C.TLS_UNTRUSTED
    assert outcome.error is not None and outcome.error.verify_code in (20, 21)
    assert hint is not None and hint.startswith("incomplete chain")
    assert "CN=scanner test intermediate" in hint
    assert "http://pki.scanner.test/intermediate.crt" in hint
    assert_leaf(info, pki.made["missing-intermediate"], chain_length=1)


async def test_untrusted_ca(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["untrusted-ca"], trust)
    assert category is C.TLS_UNTRUSTED
    assert outcome.error is not None and outcome.error.verify_code in (2, 20)
    assert hint is not None and hint.startswith("unknown CA")
    assert "issued by CN=scanner test other-root" in hint
    assert_leaf(info, pki.made["untrusted-ca"], chain_length=2)
    # the leaf alone from a root nobody here trusts: the hint says it cannot tell which
    _, category, hint, info = await check(nginx.ports["leaf-of-unknown-root"], trust)
    assert category is C.TLS_UNTRUSTED
    assert hint is not None and "incomplete chain" in hint and "unknown CA" in hint
    assert_leaf(info, pki.made["leaf-of-unknown-root"], chain_length=1)


async def test_system_store_does_not_trust_a_private_ca(nginx: Nginx, pki: Pki) -> None:
    _, category, hint, info = await check(nginx.ports["valid"], TlsSettings())
    assert category is C.TLS_UNTRUSTED
    assert hint is not None and "CN=scanner test root" in hint
    assert_leaf(info, pki.made["valid"], chain_length=2)


async def test_expiring_within_min_days_names_the_certificate(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, min_days=30)
    _, category, hint, info = await check(nginx.ports["expiring"], settings)
    assert category is C.TLS_EXPIRING
    assert hint is not None and "the server's certificate (CN=good.test" in hint
    assert "in 10 days (min_days is 30)" in hint
    assert_leaf(info, pki.made["expiring"], chain_length=2)
    assert info is not None and info.days_left == 10
    # with a smaller budget the same certificate passes
    relaxed = TlsSettings(ca_file=trust.ca_file, min_days=7)
    _, category, hint, _ = await check(nginx.ports["expiring"], relaxed)
    assert (category, hint) == (C.OPEN, None)


async def test_expiring_intermediate_is_the_earliest_of_the_chain(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, min_days=30)
    _, category, hint, info = await check(nginx.ports["expiring-intermediate"], settings)
    assert category is C.TLS_EXPIRING
    inter = pki.made["short-intermediate"]
    assert hint is not None
    assert f"the intermediate CA certificate {inter.subject} (number 2 in the chain)" in hint
    assert info is not None
    assert (info.days_left or 0) > 300  # the leaf itself is fine...
    assert info.earliest_subject == inter.subject  # ...the chain's earliest expiry is not
    assert info.earliest_not_after == inter.cert.not_valid_after_utc.isoformat()


async def test_verify_false_accepts_anything_but_min_days_still_checks(
    nginx: Nginx, pki: Pki
) -> None:
    loose = TlsSettings(verify=False)
    for case in ("self-signed", "wrong-host", "expired"):
        outcome, category, hint, info = await check(nginx.ports[case], loose)
        assert (category, hint) == (C.OPEN, None), case
        assert outcome.completed
        assert_leaf(info, pki.made[case], chain_length=len(outcome.chain))
    _, category, hint, _ = await check(
        nginx.ports["expired"], TlsSettings(verify=False, min_days=1)
    )
    assert category is C.TLS_EXPIRED
    assert hint is not None and "days ago" in hint


async def test_plain_http_on_a_tls_target(nginx: Nginx) -> None:
    outcome, category, hint, info = await check(nginx.ports["plain-http"], TlsSettings())
    assert category is C.TLS_NOT_TLS
    assert outcome.plaintext is not None and outcome.plaintext.startswith(b"HTTP/1.1 400")
    assert hint == (
        'the peer answered in plain text, not TLS: "HTTP/1.1 400 Bad Request" looks like an '
        "HTTP server without TLS; use the HTTPS port or enable TLS on it"
    )
    assert info is None


async def test_dual_stack_name_where_one_address_has_the_wrong_certificate(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    port = nginx.ports["dual-stack"]
    _, category4, hint4, info4 = await check(port, trust, host="127.0.0.1")
    _, category6, hint6, info6 = await check(port, trust, host="::1")
    assert (category4, hint4) == (C.OPEN, None)
    assert_leaf(info4, pki.made["valid"], chain_length=2)
    assert category6 is C.TLS_HOSTNAME_MISMATCH
    assert hint6 is not None and "other.test, www.other.test, not good.test" in hint6
    assert_leaf(info6, pki.made["wrong-host"], chain_length=2)


async def test_on_the_dialers_own_socket_type(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    """The C socket type with IP_RECVERR on, as scanner.probe's Dialer opens it."""
    sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    sock.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR (Linux)
    try:
        loop = asyncio.get_running_loop()
        err = sock.connect_ex(("127.0.0.1", nginx.ports["valid"]))
        assert err in (0, 115)  # EINPROGRESS
        writable = loop.create_future()
        loop.add_writer(sock.fileno(), writable.set_result, None)
        await asyncio.wait_for(writable, 5)
        loop.remove_writer(sock.fileno())
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        outcome = await handshake(sock, trust, "good.test", 5.0)
        assert sock.fileno() >= 0  # still open: the caller closes it
    finally:
        sock.close()
    assert outcome.completed
    now = dt.datetime.now(dt.UTC)
    assert classify_tls(outcome, trust, now) == (C.OPEN, None)
    assert_leaf(tls_info(outcome, now), pki.made["valid"], chain_length=2)


async def test_tls12_server(nginx: Nginx, pki: Pki, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(nginx.ports["valid"], trust)
    assert outcome.version == "TLSv1.3"
    args = [*_s_server_args(pki.made["valid"]), "-tls1_2"]
    with s_server(*args) as port:
        outcome, category, hint, info = await check(port, trust)
    assert (category, hint) == (C.OPEN, None)
    assert outcome.version == "TLSv1.2" and info is not None and info.version == "TLSv1.2"
    assert outcome.cipher and "ECDHE-ECDSA" in outcome.cipher
    assert_leaf(info, pki.made["valid"], chain_length=2)


async def test_cancelling_leaves_nothing_registered() -> None:
    server = SilentServer()
    try:
        sock = await connected("127.0.0.1", server.port)
        task = asyncio.create_task(handshake(sock, TlsSettings(), "good.test", 30.0))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        loop = asyncio.get_running_loop()
        assert loop.remove_reader(sock.fileno()) is False  # its reader went with it
        sock.close()
    finally:
        server.close()


async def test_start_handshake_calls_back_once_or_never(
    nginx: Nginx, pki: Pki, trust: TlsSettings
) -> None:
    """The callback shape of the probers' seam: on_done once; after abandon, never."""
    loop = asyncio.get_running_loop()
    got: list[TlsOutcome] = []
    done = loop.create_future()

    def on_done(outcome: TlsOutcome) -> None:
        got.append(outcome)
        done.set_result(None)

    sock = await connected("127.0.0.1", nginx.ports["valid"])
    try:
        start_handshake(sock, trust, "good.test", 5.0, on_done)
        await asyncio.wait_for(done, 10)
    finally:
        sock.close()
    assert len(got) == 1 and got[0].completed
    assert_leaf(tls_info(got[0], dt.datetime.now(dt.UTC)), pki.made["valid"], chain_length=2)
    server = SilentServer()
    try:
        sock = await connected("127.0.0.1", server.port)
        abandon = start_handshake(sock, trust, "good.test", 0.2, on_done)
        abandon()
        await asyncio.sleep(0.4)  # past its timeout: an outcome would have come by now
        sock.close()
    finally:
        server.close()
    assert len(got) == 1


# --- servers that misbehave on real sockets ---------------------------------------------


async def test_reset_after_the_client_hello() -> None:
    server = ScriptedServer("reset")
    try:
        outcome, category, hint, info = await check(server.port, TlsSettings())
    finally:
        server.close()
    assert category is C.TLS_HANDSHAKE_FAILED
    assert outcome.errno == "ECONNRESET" and outcome.stage == "handshake"
    assert hint is not None and "(ECONNRESET) after 0 bytes from the server" in hint
    assert info is None


async def test_binary_answer_is_not_tls() -> None:
    server = ScriptedServer("garbage")
    try:
        outcome, category, hint, info = await check(server.port, TlsSettings())
    finally:
        server.close()
    assert category is C.TLS_NOT_TLS
    assert outcome.plaintext == ScriptedServer.ANSWERS["garbage"]
    assert hint is not None and '"....binary protocol.." looks like plain text' in hint
    assert info is None


async def test_stalled_handshake_is_tls_timeout() -> None:
    server = ScriptedServer("stall")
    try:
        outcome, category, hint, info = await check(server.port, TlsSettings(), timeout=0.4)
    finally:
        server.close()
    assert category is C.TLS_TIMEOUT
    assert outcome.timed_out and outcome.received == len(ScriptedServer.ANSWERS["stall"])
    assert outcome.plaintext is None  # a TLS record header: not plain text
    assert hint is not None and "stalled within 0.4s after 8 bytes" in hint
    assert info is None


# --- no TLS at all: silence, a close ----------------------------------------------------


async def test_accepts_and_never_speaks_is_tls_timeout() -> None:
    server = SilentServer()
    try:
        outcome, category, hint, info = await check(server.port, TlsSettings(), timeout=0.4)
    finally:
        server.close()
    assert category is C.TLS_TIMEOUT
    assert outcome.timed_out and outcome.received == 0
    assert 380 <= outcome.tls_ms < 2000
    assert hint is not None and "sent nothing back to the TLS ClientHello within 0.4s" in hint
    assert info is None


async def test_accepts_and_closes_is_handshake_failed(listener: Listener) -> None:
    outcome, category, hint, _ = await check(listener.port, TlsSettings())
    assert category is C.TLS_HANDSHAKE_FAILED
    assert not outcome.timed_out and (outcome.peer_closed or outcome.errno == "ECONNRESET")
    assert hint is not None
    assert "without an alert" in hint or "ECONNRESET" in hint


# --- openssl s_server: TLS 1.0, mutual TLS ----------------------------------------------


def _s_server_args(issued: Issued) -> list[str]:
    args = ["-cert", str(issued.cert_file), "-key", str(issued.key_file)]
    if issued.sent_file is not None:
        args += ["-cert_chain", str(issued.sent_file)]
    return args


async def test_s_server_valid_and_wrong_name(pki: Pki, trust: TlsSettings) -> None:
    with s_server(*_s_server_args(pki.made["valid"])) as port:
        _, category, hint, info = await check(port, trust)
        assert (category, hint) == (C.OPEN, None)
        assert_leaf(info, pki.made["valid"], chain_length=2)
        _, category, hint, _ = await check(port, trust, name="bad.test")
        assert category is C.TLS_HOSTNAME_MISMATCH
        assert hint is not None and "for good.test, not bad.test" in hint


async def test_tls10_only_server(pki: Pki, trust: TlsSettings) -> None:
    """This OpenSSL (3.0) still speaks TLS 1.0 at security level 0; our client refuses it."""
    args = [*_s_server_args(pki.made["valid"]), "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]
    with s_server(*args) as port:
        outcome, category, hint, info = await check(port, trust)
    assert category is C.TLS_HANDSHAKE_FAILED
    assert outcome.error is not None and outcome.error.alert == "protocol_version"
    assert hint is not None and hint.startswith("the server sent the TLS alert protocol_version")
    assert "TLS 1.2 and 1.3" in hint
    assert info is None


@pytest.fixture
def mtls_port(pki: Pki, trust: TlsSettings) -> Iterator[int]:
    args = [*_s_server_args(pki.made["valid"]), "-Verify", "1", "-verify_return_error"]
    with s_server(*args, "-CAfile", str(trust.ca_file)) as port:
        yield port


async def test_mtls_without_a_client_certificate(mtls_port: int, trust: TlsSettings) -> None:
    outcome, category, hint, info = await check(mtls_port, trust)
    assert category is C.TLS_HANDSHAKE_FAILED
    # TLS 1.3: the client thinks it is done; the server's alert comes right after
    assert outcome.stage == "post_handshake" and outcome.version == "TLSv1.3"
    assert outcome.error is not None and outcome.error.alert == "certificate_required"
    assert hint == (
        "the server sent the TLS alert certificate_required after the handshake: the server "
        "requires a client certificate: set client_cert and client_key"
    )
    assert info is not None and info.subject is not None and "good.test" in info.subject


async def test_mtls_with_the_client_certificate(
    mtls_port: int, pki: Pki, trust: TlsSettings
) -> None:
    client = pki.made["client"]
    settings = TlsSettings(
        ca_file=trust.ca_file, client_cert=str(client.chain_file), client_key=str(client.key_file)
    )
    outcome, category, hint, info = await check(mtls_port, settings)
    assert (category, hint) == (C.OPEN, None)
    assert outcome.completed and outcome.stage == "done"
    assert_leaf(info, pki.made["valid"], chain_length=2)


async def test_mtls_with_an_untrusted_client_certificate(
    mtls_port: int, pki: Pki, trust: TlsSettings
) -> None:
    stranger = pki.made["self-signed"]
    settings = TlsSettings(
        ca_file=trust.ca_file,
        client_cert=str(stranger.cert_file),
        client_key=str(stranger.key_file),
    )
    outcome, category, hint, _ = await check(mtls_port, settings)
    assert category is C.TLS_HANDSHAKE_FAILED
    assert outcome.error is not None and outcome.error.alert == "unknown_ca"
    assert hint is not None and "does not trust the CA of the client certificate" in hint


async def test_mtls_tls12_fails_inside_the_handshake(pki: Pki, trust: TlsSettings) -> None:
    args = [*_s_server_args(pki.made["valid"]), "-Verify", "1", "-verify_return_error"]
    with s_server(*args, "-CAfile", str(trust.ca_file), "-tls1_2") as port:
        outcome, category, hint, _ = await check(port, trust)
    assert category is C.TLS_HANDSHAKE_FAILED
    assert outcome.stage == "handshake" and outcome.error is not None
    assert outcome.error.alert == "handshake_failure"
    assert hint is not None and "client certificate (none was offered)" in hint


# --- STARTTLS: Dovecot (IMAP, POP3), Postfix (SMTP), PostgreSQL (its SSLRequest) ------


@pytest.fixture(scope="module")
def dovecots(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Dovecot, Dovecot]]:
    """Dovecot twice: with STARTTLS (the valid certificate), and with ssl = no."""
    require(dovecot_available(), "Dovecot (dovecot-imapd, dovecot-pop3d) is not installed")
    workdir = tmp_path_factory.mktemp("dovecot")
    with dovecot_servers(workdir, {"tls": pki.made["valid"], "plain": None}) as servers:
        yield servers["tls"], servers["plain"]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
async def test_imap_and_pop3_starttls(
    protocol: str, dovecots: tuple[Dovecot, Dovecot], pki: Pki, trust: TlsSettings
) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, starttls=protocol)  # type: ignore[arg-type]
    with_tls, without = dovecots
    port = with_tls.imap if protocol == "imap" else with_tls.pop3
    outcome, category, hint, info = await check(port, settings)
    assert (category, hint) == (C.OPEN, None), with_tls.log.read_text()[-500:]
    assert outcome.completed and outcome.starttls == protocol
    assert_leaf(info, pki.made["valid"], chain_length=2)
    # the same port as a direct TLS target: the greeting is named
    outcome, category, hint, _ = await check(port, TlsSettings())
    assert category is C.TLS_NOT_TLS
    greeting = {"imap": "an IMAP greeting", "pop3": "a POP3 greeting"}[protocol]
    assert hint is not None and greeting in hint and f"starttls: {protocol}" in hint
    # a server without TLS refuses STARTTLS: its answer is quoted
    port = without.imap if protocol == "imap" else without.pop3
    outcome, category, hint, info = await check(port, settings)
    assert category is C.TLS_HANDSHAKE_FAILED and outcome.stage == "starttls"
    assert hint is not None
    assert hint.startswith(f'the {protocol} server did not start TLS: "')
    assert outcome.starttls_reply and outcome.starttls_reply.startswith(
        "s1 BAD" if protocol == "imap" else "-ERR"
    )
    assert info is None


#: the smtpd ports of one private Postfix: case -> (certificate label or None, overrides)
POSTFIX_PORTS: dict[str, tuple[str | None, tuple[tuple[str, str], ...]]] = {
    "valid": ("valid", ()),
    "tls12": ("valid", (("smtpd_tls_protocols", "<=TLSv1.2"),)),
    "wrong-host": ("wrong-host", ()),
    "expired": ("expired", ()),
    "no-starttls": (None, ()),  # smtpd_tls_security_level = none: STARTTLS not offered
    # the client is refused before EHLO: a 554 greeting instead of 220
    "rejecting": ("valid", (("smtpd_delay_reject", "no"), ("smtpd_client_restrictions", "reject"))),
}


@pytest.fixture(scope="module")
def postfix(pki: Pki) -> Iterator[Postfix]:
    """Debian's Postfix, a private instance: one smtpd port per case of POSTFIX_PORTS."""
    require(postfix_available(), "Postfix (Debian's postfix package) is not installed")
    require(os.geteuid() == 0, "a private Postfix instance must be started as root")
    spec = {
        case: SmtpPort(pki.made[label] if label else None, overrides)
        for case, (label, overrides) in POSTFIX_PORTS.items()
    }
    with postfix_server(spec) as server:
        yield server


SMTP = TlsSettings(starttls="smtp")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_smtp_starttls(postfix: Postfix, pki: Pki, trust: TlsSettings, host: str) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, starttls="smtp", min_days=30)
    since = postfix.log_size()
    outcome, category, hint, info = await check(postfix.ports["valid"], settings, host=host)
    assert (category, hint) == (C.OPEN, None), postfix.log_tail()
    assert outcome.completed and outcome.stage == "done" and outcome.starttls == "smtp"
    assert outcome.version == "TLSv1.3" and outcome.cipher and outcome.tls_ms > 0
    assert_leaf(info, pki.made["valid"], chain_length=2)
    assert info is not None and info.sans == ("good.test",)
    # the server's side of it: EHLO and STARTTLS accepted, the same version and cipher
    client = f"unknown[{host}]"
    established = f"TLS connection established from {client}: TLSv1.3 with cipher {outcome.cipher} "
    assert postfix.said(since, established), postfix.log_tail()
    assert postfix.said(since, f"disconnect from {client} ehlo=1 starttls=1 commands=2")


async def test_smtp_starttls_tls12(postfix: Postfix, pki: Pki, trust: TlsSettings) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, starttls="smtp")
    outcome, category, hint, info = await check(postfix.ports["tls12"], settings)
    assert (category, hint) == (C.OPEN, None)
    assert outcome.version == "TLSv1.2" and info is not None and info.version == "TLSv1.2"
    assert outcome.cipher and "ECDHE-ECDSA" in outcome.cipher
    assert_leaf(info, pki.made["valid"], chain_length=2)


async def test_smtp_starttls_wrong_host(postfix: Postfix, pki: Pki, trust: TlsSettings) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, starttls="smtp")
    since = postfix.log_size()
    outcome, category, hint, info = await check(postfix.ports["wrong-host"], settings)
    assert category is C.TLS_HOSTNAME_MISMATCH
    assert outcome.error is not None and outcome.error.verify_code == 62
    assert outcome.starttls == "smtp" and outcome.stage == "handshake"
    assert hint == (
        "the certificate is for other.test, www.other.test, not good.test: fix server_name, "
        "or reissue the certificate with that name"
    )
    assert_leaf(info, pki.made["wrong-host"], chain_length=2)
    # our alert reached Postfix (42, bad_certificate), so its log says why the client left
    assert postfix.said(since, "SSL alert number 42:"), postfix.log_tail()
    assert postfix.said(since, "disconnect from unknown[127.0.0.1] ehlo=1 starttls=0/1 ")


async def test_smtp_starttls_expired(postfix: Postfix, pki: Pki, trust: TlsSettings) -> None:
    settings = TlsSettings(ca_file=trust.ca_file, starttls="smtp")
    since = postfix.log_size()
    outcome, category, hint, info = await check(postfix.ports["expired"], settings)
    assert category is C.TLS_EXPIRED
    assert outcome.error is not None and outcome.error.verify_code == 10
    assert hint is not None
    assert "the server's certificate (CN=good.test" in hint and "(3 days ago)" in hint
    assert_leaf(info, pki.made["expired"], chain_length=2)
    assert info is not None and info.days_left is not None and info.days_left < 0
    assert postfix.said(since, "SSL alert number 45:"), postfix.log_tail()  # certificate_expired


async def test_smtp_without_starttls_offered(postfix: Postfix, trust: TlsSettings) -> None:
    """smtpd_tls_security_level = none: EHLO lists no STARTTLS, so none is sent."""
    since = postfix.log_size()
    outcome, category, hint, info = await check(postfix.ports["no-starttls"], SMTP)
    assert category is C.TLS_HANDSHAKE_FAILED
    assert outcome.stage == "starttls" and not outcome.completed and outcome.error is None
    assert outcome.starttls_reply is not None
    assert outcome.starttls_reply.startswith("no STARTTLS in EHLO: PIPELINING, SIZE ")
    assert "STARTTLS" not in outcome.starttls_reply.removeprefix("no STARTTLS")
    assert hint == f'the smtp server did not start TLS: "{outcome.starttls_reply}"'
    assert info is None
    # the prober asked nothing more of it: one EHLO, no STARTTLS command
    said = "disconnect from unknown[127.0.0.1] ehlo=1 commands=1\n"
    assert postfix.said(since, said), postfix.log_tail()


async def test_smtp_greeting_554_refuses_before_ehlo(postfix: Postfix, trust: TlsSettings) -> None:
    since = postfix.log_size()
    outcome, category, hint, info = await check(postfix.ports["rejecting"], SMTP)
    assert category is C.TLS_HANDSHAKE_FAILED and outcome.stage == "starttls"
    assert hint == (
        'the smtp server did not start TLS: "554 5.7.1 <unknown[127.0.0.1]>: Client host '
        'rejected: Access denied"'
    )
    assert info is None
    assert postfix.said(since, "reject: CONNECT from unknown[127.0.0.1]: 554 5.7.1 ")


async def test_smtp_greeting_on_a_direct_tls_target(postfix: Postfix) -> None:
    outcome, category, hint, _ = await check(postfix.ports["valid"], TlsSettings())
    assert category is C.TLS_NOT_TLS
    assert outcome.plaintext is not None
    assert outcome.plaintext.startswith(b"220 mail.scanner.test ESMTP Postfix")
    assert hint is not None and "an SMTP or FTP greeting; set starttls: smtp" in hint


async def test_starttls_against_implicit_tls_times_out(nginx: Nginx) -> None:
    settings = TlsSettings(starttls="smtp")
    outcome, category, hint, _ = await check(nginx.ports["valid"], settings, timeout=0.3)
    assert category is C.TLS_TIMEOUT and outcome.stage == "starttls"
    assert hint is not None and "no smtp answer within 0.3s" in hint and "drop starttls" in hint


async def test_postgres_sslrequest(pki: Pki, trust: TlsSettings, tmp_path: Path) -> None:
    require(postgres_bin() is not None, "PostgreSQL from Debian is not installed")
    require(os.geteuid() == 0, "starting PostgreSQL as its own user needs root")
    settings = TlsSettings(ca_file=trust.ca_file, starttls="postgres")
    with postgres_server(pki.made["valid"]) as server:
        outcome, category, hint, info = await check(server.port, settings)
        assert (category, hint) == (C.OPEN, None)
        assert outcome.completed and outcome.version in ("TLSv1.2", "TLSv1.3")
        assert_leaf(info, pki.made["valid"], chain_length=2)
        # the same server with ssl = off answers the SSLRequest with N
        server.set_ssl(False)
        outcome, category, hint, info = await check(server.port, settings)
        assert category is C.TLS_HANDSHAKE_FAILED and outcome.stage == "starttls"
        assert hint == "PostgreSQL answered N to the SSLRequest: the server has ssl = off"
        assert info is None


# --- settings that cannot work ----------------------------------------------------------


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="cannot load TLS files"):
        context_for(TlsSettings(ca_file=str(tmp_path / "nope.pem")))
    with pytest.raises(TlsConfigError, match="client_key without client_cert"):
        context_for(TlsSettings(client_key=str(tmp_path / "k.pem")))


def test_contexts_are_shared_per_trust_verify_and_client_cert(pki: Pki) -> None:
    root = str(pki.made["root"].cert_file)
    first = context_for(TlsSettings(ca_file=root, min_days=3, server_name="a"))
    assert context_for(TlsSettings(ca_file=root, starttls="smtp")) is first
    assert context_for(TlsSettings(ca_file=root, verify=False)) is not first
    assert context_for(TlsSettings()) is not first
    assert context_for(TlsSettings()).verify_mode is ssl.CERT_REQUIRED
