"""The pure side of the TLS prober: the tables in classify.py, tls_info and classify_tls.

Outcomes here are built from certificates made in the test (no network): each row is one
shape of TlsOutcome the handshake produces, and the category and hint it must get.
"""

from __future__ import annotations

import pytest

from scanner.classify import (
    HINTS,
    TLS_HINTS,
    hint_for,
    plaintext_kind,
    tls_alert_name,
    tls_verify_category,
)
from scanner.models import Category
from scanner.probers.tls import TlsError, TlsOutcome, TlsSettings, classify_tls, tls_info

from .tls_servers import NOW, Pki

C = Category


def der(pki: Pki, *labels: str) -> tuple[bytes, ...]:
    from cryptography.hazmat.primitives.serialization import Encoding

    return tuple(pki.made[label].cert.public_bytes(Encoding.DER) for label in labels)


def done(chain: tuple[bytes, ...], **facts: object) -> TlsOutcome:
    base: dict[str, object] = {
        "server_name": "good.test",
        "completed": True,
        "stage": "done",
        "tls_ms": 1.0,
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "chain": chain,
        "chain_source": "presented",
        "received": 2000,
        "timeout_s": 3.0,
    }
    base.update(facts)
    return TlsOutcome(**base)  # type: ignore[arg-type]


def failed(chain: tuple[bytes, ...], error: TlsError, **facts: object) -> TlsOutcome:
    return done(chain, completed=False, stage="handshake", version=None, cipher=None,
                error=error, **facts)  # fmt: skip


def verify_error(code: int, message: str) -> TlsError:
    return TlsError(
        f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}",
        "SSL",
        "CERTIFICATE_VERIFY_FAILED",
        code,
        message,
    )


@pytest.mark.parametrize(
    ("reason", "alert"),
    [
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "handshake_failure"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol_version"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate_required"),
        ("TLSV1_ALERT_UNKNOWN_CA", "unknown_ca"),
        ("SSLV3_ALERT_BAD_CERTIFICATE", "bad_certificate"),
        ("TLSV1_UNRECOGNIZED_NAME", "unrecognized_name"),
        ("CERTIFICATE_VERIFY_FAILED", None),
        ("WRONG_VERSION_NUMBER", None),
        (None, None),
    ],
)
def test_tls_alert_name(reason: str | None, alert: str | None) -> None:
    assert tls_alert_name(reason) == alert


@pytest.mark.parametrize(
    ("code", "category", "what"),
    [
        (10, C.TLS_EXPIRED, "expired"),
        (9, C.TLS_NOT_YET_VALID, "not_yet_valid"),
        (62, C.TLS_HOSTNAME_MISMATCH, "hostname_mismatch"),
        (64, C.TLS_HOSTNAME_MISMATCH, "ip_mismatch"),
        (18, C.TLS_UNTRUSTED, "self_signed"),
        (19, C.TLS_UNTRUSTED, "self_signed_in_chain"),
        (20, C.TLS_UNTRUSTED, "unknown_issuer"),
        (21, C.TLS_UNTRUSTED, "unknown_issuer"),
        (23, C.TLS_UNTRUSTED, "revoked"),
        (999, C.TLS_UNTRUSTED, "verify_failed"),
    ],
)
def test_tls_verify_category(code: int, category: Category, what: str) -> None:
    assert tls_verify_category(code) == (category, what)


@pytest.mark.parametrize(
    ("data", "shown", "kind"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n", "HTTP/1.1 400 Bad Request", "HTTP"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian", "SSH"),
        (b"220 mail.example ESMTP Postfix\r\n", "220 mail.example ESMTP Postfix", "SMTP"),
        (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", "* OK [CAPABILITY IMAP4rev1] ready", "IMAP"),
        (b"+OK POP3 ready\r\n", "+OK POP3 ready", "POP3"),
        (b"<html><body>", "<html><body>", "HTML"),
        (b"\x00\x01binary\xffjunk", "..binary.junk", "plain text"),
    ],
)
def test_plaintext_kind(data: bytes, shown: str, kind: str) -> None:
    got_shown, got_kind, action = plaintext_kind(data)
    assert got_shown == shown
    assert kind in got_kind
    assert action


def test_every_tls_category_has_a_generic_hint() -> None:
    for category in TLS_HINTS:
        assert HINTS[category] == TLS_HINTS[category]
        hint = hint_for(category, detail="x")
        assert hint and "{" not in hint and "(x)" in hint


def test_tls_info_of_a_chain(pki: Pki) -> None:
    outcome = done(der(pki, "expiring-intermediate", "short-intermediate"))
    info = tls_info(outcome, NOW)
    leaf = pki.made["expiring-intermediate"]
    inter = pki.made["short-intermediate"]
    assert info is not None
    assert info.subject == "CN=good.test,O=scanner tests"
    assert info.issuer == inter.subject
    assert info.sans == ("good.test",)
    assert info.fingerprint_sha256 == leaf.fingerprint and len(info.fingerprint_sha256) == 64
    assert info.days_left == 364  # made 365 days from NOW, to the second: floor gives 364
    assert info.chain_length == 2 and info.chain_source == "presented"
    assert info.earliest_subject == inter.subject
    assert info.earliest_not_after == inter.cert.not_valid_after_utc.isoformat()


def test_tls_info_without_tls() -> None:
    plain = TlsOutcome("a.test", False, "handshake", 1.0, plaintext=b"HTTP/1.1 400")
    assert tls_info(plain, NOW) is None


def test_tls_info_of_garbage_keeps_version() -> None:
    outcome = done((b"not a certificate",))
    info = tls_info(outcome, NOW)
    assert info is not None and info.version == "TLSv1.3" and info.subject is None


SETTINGS = TlsSettings()


@pytest.mark.parametrize(
    ("labels", "error", "category", "must_mention"),
    [
        pytest.param(
            ("expired", "intermediate"),
            verify_error(10, "certificate has expired"),
            C.TLS_EXPIRED,
            ["the server's certificate (CN=good.test", "3 days ago", "renew"],
            id="expired-leaf",
        ),
        pytest.param(
            ("valid", "intermediate"),
            verify_error(10, "certificate has expired"),
            C.TLS_EXPIRED,
            ["trust store", "current root"],
            id="expired-root-not-presented",
        ),
        pytest.param(
            ("not-yet-valid", "intermediate"),
            verify_error(9, "certificate is not yet valid"),
            C.TLS_NOT_YET_VALID,
            ["not valid before", "clocks"],
            id="not-yet-valid",
        ),
        pytest.param(
            ("wrong-host", "intermediate"),
            verify_error(62, "hostname mismatch"),
            C.TLS_HOSTNAME_MISMATCH,
            ["other.test, www.other.test", "not good.test"],
            id="hostname",
        ),
        pytest.param(
            ("self-signed",),
            verify_error(18, "self-signed certificate"),
            C.TLS_UNTRUSTED,
            ["self-signed", "ca_file"],
            id="self-signed",
        ),
        pytest.param(
            ("untrusted-ca", "other-intermediate", "other-root"),
            verify_error(19, "self-signed certificate in certificate chain"),
            C.TLS_UNTRUSTED,
            ["unknown CA", "root CN=scanner test other-root"],
            id="root-in-chain",
        ),
        pytest.param(
            ("missing-intermediate",),
            verify_error(20, "unable to get local issuer certificate"),
            C.TLS_UNTRUSTED,
            ["incomplete chain", "http://pki.scanner.test/intermediate.crt"],
            id="incomplete",
        ),
        pytest.param(
            ("untrusted-ca", "other-intermediate"),
            verify_error(20, "unable to get local issuer certificate"),
            C.TLS_UNTRUSTED,
            ["unknown CA", "issued by CN=scanner test other-root"],
            id="unknown-ca",
        ),
        pytest.param(
            ("valid",),
            verify_error(23, "certificate revoked"),
            C.TLS_UNTRUSTED,
            ["certificate revoked", "revoked"],
            id="revoked",
        ),
        pytest.param(
            (),
            verify_error(10, "certificate has expired"),
            C.TLS_EXPIRED,
            ["certificate has expired", "not visible"],
            id="no-chain-seen",
        ),
    ],
)
def test_verification_failures(
    pki: Pki,
    labels: tuple[str, ...],
    error: TlsError,
    category: Category,
    must_mention: list[str],
) -> None:
    outcome = failed(der(pki, *labels), error)
    got, hint = classify_tls(outcome, SETTINGS, NOW)
    assert got is category
    assert hint is not None
    for fact in must_mention:
        assert fact in hint, (fact, hint)


@pytest.mark.parametrize(
    ("outcome", "settings", "category", "must_mention"),
    [
        pytest.param(
            TlsOutcome("a", False, "handshake", 3000.0, timed_out=True, timeout_s=3.0),
            SETTINGS,
            C.TLS_TIMEOUT,
            ["sent nothing back", "within 3s"],
            id="silent",
        ),
        pytest.param(
            TlsOutcome("a", False, "handshake", 3000.0, timed_out=True, received=90, timeout_s=3.0),
            SETTINGS,
            C.TLS_TIMEOUT,
            ["stalled", "90 bytes"],
            id="stalled",
        ),
        pytest.param(
            TlsOutcome("a", False, "starttls", 1.0, starttls="smtp", timed_out=True, timeout_s=2.0),
            TlsSettings(starttls="smtp"),
            C.TLS_TIMEOUT,
            ["no smtp answer within 2s", "drop starttls"],
            id="starttls-silent",
        ),
        pytest.param(
            TlsOutcome(
                "a",
                False,
                "starttls",
                1.0,
                starttls="smtp",
                starttls_reply="454 4.7.0 TLS not available",
            ),
            TlsSettings(starttls="smtp"),
            C.TLS_HANDSHAKE_FAILED,
            ['the smtp server did not start TLS: "454 4.7.0 TLS not available"'],
            id="starttls-refused",
        ),
        pytest.param(
            TlsOutcome("a", False, "starttls", 1.0, starttls="postgres", starttls_reply="N"),
            TlsSettings(starttls="postgres"),
            C.TLS_HANDSHAKE_FAILED,
            ["ssl = off"],
            id="postgres-n",
        ),
        pytest.param(
            TlsOutcome("a", False, "handshake", 1.0, plaintext=b"SSH-2.0-OpenSSH_9.2\r\n"),
            SETTINGS,
            C.TLS_NOT_TLS,
            ['"SSH-2.0-OpenSSH_9.2"', "an SSH server"],
            id="ssh",
        ),
        pytest.param(
            TlsOutcome("a", False, "handshake", 1.0, errno="ECONNRESET", received=0),
            SETTINGS,
            C.TLS_HANDSHAKE_FAILED,
            ["ECONNRESET"],
            id="reset",
        ),
        pytest.param(
            TlsOutcome("a", False, "handshake", 1.0, peer_closed=True, received=0),
            SETTINGS,
            C.TLS_HANDSHAKE_FAILED,
            ["without an alert"],
            id="closed",
        ),
        pytest.param(
            TlsOutcome(
                "a",
                False,
                "handshake",
                1.0,
                error=TlsError(
                    "x", "SSL", "SSLV3_ALERT_HANDSHAKE_FAILURE", alert="handshake_failure"
                ),
            ),
            TlsSettings(client_cert="c.pem"),
            C.TLS_HANDSHAKE_FAILED,
            ["alert handshake_failure", "no shared cipher"],
            id="alert-with-client-cert",
        ),
        pytest.param(
            TlsOutcome(
                "a",
                False,
                "handshake",
                1.0,
                error=TlsError("x", "SSL", "UNSUPPORTED_PROTOCOL"),
            ),
            SETTINGS,
            C.TLS_HANDSHAKE_FAILED,
            ["older than 1.2", "UNSUPPORTED_PROTOCOL"],
            id="local-reason",
        ),
        pytest.param(
            TlsOutcome("a", False, "handshake", 1.0, error=TlsError("x", "SSL", "SOMETHING_NEW")),
            SETTINGS,
            C.TLS_HANDSHAKE_FAILED,
            ["SOMETHING_NEW"],
            id="unknown-reason",
        ),
    ],
)
def test_failures_without_a_chain(
    outcome: TlsOutcome, settings: TlsSettings, category: Category, must_mention: list[str]
) -> None:
    got, hint = classify_tls(outcome, settings, NOW)
    assert got is category
    assert hint is not None
    for fact in must_mention:
        assert fact in hint, (fact, hint)


@pytest.mark.parametrize(
    ("labels", "settings", "category", "must_mention"),
    [
        (("valid", "intermediate"), TlsSettings(), C.OPEN, []),
        (("valid", "intermediate"), TlsSettings(min_days=30), C.OPEN, []),
        (("expiring", "intermediate"), TlsSettings(min_days=30), C.TLS_EXPIRING,
         ["server's certificate", "in 10 days", "min_days is 30"]),
        (("expiring", "intermediate"), TlsSettings(min_days=10), C.OPEN, []),
        (("expiring", "intermediate"), TlsSettings(min_days=11), C.TLS_EXPIRING, ["10 days"]),
        (("expiring-intermediate", "short-intermediate"), TlsSettings(min_days=30),
         C.TLS_EXPIRING, ["intermediate CA certificate", "number 2 in the chain"]),
        (("expired", "intermediate"), TlsSettings(verify=False), C.OPEN, []),
        (("expired", "intermediate"), TlsSettings(verify=False, min_days=0), C.TLS_EXPIRED,
         ["days ago"]),
        (("not-yet-valid", "intermediate"), TlsSettings(verify=False, min_days=0),
         C.TLS_NOT_YET_VALID, ["not valid before"]),
    ],
)  # fmt: skip
def test_completed_handshakes_and_min_days(
    pki: Pki,
    labels: tuple[str, ...],
    settings: TlsSettings,
    category: Category,
    must_mention: list[str],
) -> None:
    got, hint = classify_tls(done(der(pki, *labels)), settings, NOW)
    assert got is category
    if category is C.OPEN:
        assert hint is None
    else:
        assert hint is not None
        for fact in must_mention:
            assert fact in hint, (fact, hint)


def test_post_handshake_rejection_says_after(pki: Pki) -> None:
    error = TlsError("x", "SSL", "TLSV13_ALERT_CERTIFICATE_REQUIRED", alert="certificate_required")
    outcome = done(der(pki, "valid", "intermediate"), completed=False, stage="post_handshake",
                   error=error)  # fmt: skip
    category, hint = classify_tls(outcome, SETTINGS, NOW)
    assert category is C.TLS_HANDSHAKE_FAILED
    assert hint is not None and "after the handshake" in hint and "set client_cert" in hint


def test_tls_categories_are_told_apart() -> None:
    tls = {c for c in Category if c.is_tls}
    assert tls == set(TLS_HINTS)
    assert {c.value for c in tls} == {
        "tls_expired", "tls_not_yet_valid", "tls_expiring", "tls_hostname_mismatch",
        "tls_untrusted", "tls_handshake_failed", "tls_not_tls", "tls_timeout",
    }  # fmt: skip
    assert not any(c.is_dns for c in tls)
