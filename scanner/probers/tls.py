"""The TLS prober: a TLS handshake on the scanner's own connected socket, and what it showed.

The TCP phase (the Dialer) hands over a connected non-blocking socket; :func:`handshake` runs
the TLS phase on it under what is left of the target's timeout and returns raw facts in a
:class:`TlsOutcome`. The socket is never wrapped (no ``wrap_socket``, no ``loop.start_tls``):
OpenSSL works on two :class:`ssl.MemoryBIO` buffers and this module moves the bytes, so the
socket, its error queue and its closing stay the caller's. That also lets it see every byte
the peer sent before OpenSSL does, which is how a plain-text answer is told from a broken
handshake.

What Python 3.11 lets us see of the peer's certificates:

* the public API gives the leaf alone (``getpeercert(binary_form=True)``), and only after a
  handshake that completed, so an expired or untrusted certificate (the handshake fails
  verification) could not be shown at all;
* the C object under :class:`ssl.SSLObject` has had ``get_unverified_chain()`` since 3.10, as
  private API (``SSLObject._sslobj``); Python 3.13 made it public. It returns the chain the
  peer presented, as the peer sent it, also after a failed verification. This module uses the
  public method where it exists, the private one where that exists, and falls back to the leaf;
  :attr:`TlsOutcome.chain_source` says which was used.

Interpreting the facts is pure and lives below (:func:`tls_info`, :func:`classify_tls`), with
the tables in :mod:`scanner.classify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_module
import functools
import hashlib
import math
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from msgspec import Struct

from ..classify import (
    TLS_ALERT_MEANING,
    TLS_LOCAL_REASONS,
    plaintext_kind,
    tls_alert_name,
    tls_verify_category,
)
from ..models import (
    Category,
    ChainSource,
    Stage,
    Starttls,
    TlsError,
    TlsInfo,
    TlsOutcome,
    TlsSettings,
)

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


#: the PostgreSQL SSLRequest: length 8, then the request code 1234.5679 (80877103)
POSTGRES_SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
#: how much of a plain-text answer is kept
PLAINTEXT_KEEP = 128
#: after a TLS 1.3 handshake in which the server asked for a client certificate, how long to
#: wait for its verdict (session tickets, or the alert that rejects us): at least this, or a
#: multiple of the handshake's round trip
POST_HANDSHAKE_MIN_S = 0.1
POST_HANDSHAKE_RTTS = 3.0
_TLS_RECORD_TYPES = frozenset({20, 21, 22, 23})  # change_cipher_spec, alert, handshake, data


class TlsConfigError(ValueError):
    """The settings cannot make a context (a missing or unreadable ca_file or client cert).

    A configuration error, not network trouble: the inventory check should call
    :func:`context_for` once per distinct setting to report it before any packet is sent.
    """


class _Socket(Protocol):
    def fileno(self) -> int: ...
    def send(self, data: bytes | memoryview, /) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def getsockname(self) -> tuple[str, int] | tuple[str, int, int, int]: ...


# --- contexts ---------------------------------------------------------------------------

ContextKey = tuple[bool, str | None, str | None, str | None]
_CONTEXTS: dict[ContextKey, ssl.SSLContext] = {}


def context_for(settings: TlsSettings) -> ssl.SSLContext:
    """The shared context for these settings' (verify, trust, client certificate).

    Made once per distinct key and kept: loading the system store (about 140 CAs) costs about
    40 ms here, a fresh context per handshake would cost more than the handshake itself.
    """
    key: ContextKey = (settings.verify, settings.ca_file, settings.client_cert, settings.client_key)
    context = _CONTEXTS.get(key)
    if context is None:
        context = _CONTEXTS[key] = _make_context(settings)
        # the certificate parser, imported now rather than by the first result: that import
        # (~25 ms) held the loop while other handshakes' answers waited, and their tls_ms
        # read ~30 ms where the server took 3
        import cryptography.x509  # noqa: F401
    return context


def _make_context(settings: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2 at least, CERT_REQUIRED
    try:
        if settings.verify:
            if settings.ca_file:
                context.load_verify_locations(cafile=settings.ca_file)
            else:
                context.load_default_certs()
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if settings.client_cert:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        elif settings.client_key:
            raise TlsConfigError("client_key without client_cert")
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load TLS files: {exc}") from exc
    return context


# --- the wire ---------------------------------------------------------------------------


class _Expired(Exception):
    """The phase's deadline passed."""


class _Grace(Exception):
    """A short wait (after the handshake) ended without an answer."""


class _Refused(Exception):
    """The server's STARTTLS preamble did not lead to TLS; the message is its reply."""


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Wire:
    """Bytes in and out of the caller's socket on the running loop, under one deadline."""

    __slots__ = ("expired", "fd", "first", "loop", "received", "sock", "timer", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: _Socket, timeout: float) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.received = 0
        self.first = b""  # the first bytes the peer sent, kept for a plain-text answer
        self.expired = False
        self.waiter: asyncio.Future[None] | None = None
        self.timer = loop.call_later(max(timeout, 0.0), self._expire, _Expired)

    def _expire(self, kind: type[Exception]) -> None:
        if kind is _Expired:
            self.expired = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(kind())

    async def _wait(self, writable: bool, grace: float | None = None) -> None:
        if self.expired:
            raise _Expired
        loop, fd = self.loop, self.fd
        future = self.waiter = loop.create_future()
        short = loop.call_later(grace, self._expire, _Grace) if grace is not None else None
        if writable:
            loop.add_writer(fd, _wake, future)
        else:
            loop.add_reader(fd, _wake, future)
        try:
            await future
        finally:
            if writable:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)
            if short is not None:
                short.cancel()
            self.waiter = None

    async def recv(self, grace: float | None = None) -> bytes:
        """The next bytes from the peer (b"" when it closed); waits first: we just spoke."""
        while True:
            await self._wait(False, grace)
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            if not self.received:
                self.first = data[:PLAINTEXT_KEEP]
            self.received += len(data)
            return data

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                await self._wait(True)
                continue
            view = view[sent:]

    def send_now(self, data: bytes) -> None:
        """Best effort, never waits: an alert or close_notify on the way out."""
        if data:
            with contextlib.suppress(OSError):
                self.sock.send(data)

    def close(self) -> None:
        self.timer.cancel()


class _Lines:
    """Reply lines of a text protocol (SMTP, IMAP, POP3) read off the wire."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.buffer = b""

    async def line(self) -> str:
        while b"\n" not in self.buffer:
            if len(self.buffer) > 8192:
                raise _Refused(_text(self.buffer[:80]) + "... (no line end)")
            data = await self.wire.recv()
            if not data:
                raise _Refused(_text(self.buffer) or "(closed the connection)")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return _text(line)

    async def smtp_reply(self) -> list[str]:
        lines = [await self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-" and len(lines) < 200:
            lines.append(await self.line())
        return lines


def _text(data: bytes) -> str:
    return data.rstrip(b"\r\n").decode("utf-8", "replace")[:200]


async def _postgres(wire: _Wire) -> None:
    await wire.send(POSTGRES_SSL_REQUEST)
    answer = await wire.recv()
    if answer == b"S":
        return
    if answer[:1] == b"N":
        raise _Refused("N")
    if answer[:1] == b"S":  # bytes after the 'S' would be read as TLS: CVE-2021-23222
        raise _Refused(f"S followed by {len(answer) - 1} unexpected bytes")
    raise _Refused(_text(answer[:80]) or "(closed the connection)")


async def _smtp(lines: _Lines) -> None:
    greeting = await lines.smtp_reply()
    if not greeting[-1].startswith("220"):
        raise _Refused(greeting[-1])
    local = lines.wire.sock.getsockname()[0]
    literal = f"[IPv6:{local}]" if ":" in local else f"[{local}]"
    await lines.wire.send(f"EHLO {literal}\r\n".encode())
    ehlo = await lines.smtp_reply()
    if not ehlo[-1].startswith("250"):
        raise _Refused(ehlo[-1])
    if not any(line[4:].upper().startswith("STARTTLS") for line in ehlo):
        raise _Refused("no STARTTLS in EHLO: " + ", ".join(line[4:] for line in ehlo[1:]))
    await lines.wire.send(b"STARTTLS\r\n")
    answer = await lines.smtp_reply()
    if not answer[-1].startswith("220"):
        raise _Refused(answer[-1])


async def _imap(lines: _Lines) -> None:
    hello = await lines.line()
    if not hello.upper().startswith("* OK"):
        raise _Refused(hello)
    await lines.wire.send(b"s1 STARTTLS\r\n")
    for _ in range(100):  # untagged lines may come first; a server that never ends: refused
        reply = await lines.line()
        if reply.startswith("s1 "):
            if not reply.upper().startswith("S1 OK"):
                raise _Refused(reply)
            return
    raise _Refused("no tagged answer to STARTTLS after 100 lines")


async def _pop3(lines: _Lines) -> None:
    hello = await lines.line()
    if not hello.startswith("+OK"):
        raise _Refused(hello)
    await lines.wire.send(b"STLS\r\n")
    reply = await lines.line()
    if not reply.startswith("+OK"):
        raise _Refused(reply)


_TEXT_PREAMBLES: dict[str, Callable[[_Lines], Awaitable[None]]] = {
    "smtp": _smtp,
    "imap": _imap,
    "pop3": _pop3,
}


async def _starttls(wire: _Wire, kind: Starttls) -> None:
    """Talk the protocol up to the point where TLS starts; raise _Refused if it will not."""
    if kind == "postgres":
        await _postgres(wire)
        return
    lines = _Lines(wire)
    await _TEXT_PREAMBLES[kind](lines)
    if lines.buffer:  # a server that talks past its go-ahead: it would be read as TLS
        raise _Refused(f"{len(lines.buffer)} unexpected bytes after the go-ahead")


# --- the handshake ----------------------------------------------------------------------


def _looks_like_tls(first: bytes) -> bool:
    return len(first) < 2 or (first[0] in _TLS_RECORD_TYPES and first[1] == 3)


def _error(exc: ssl.SSLError) -> TlsError:
    reason = getattr(exc, "reason", None)
    library = getattr(exc, "library", None)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsError(
            str(exc), library, reason, exc.verify_code, exc.verify_message, tls_alert_name(reason)
        )
    return TlsError(str(exc), library, reason, alert=tls_alert_name(reason))


def _chain(obj: ssl.SSLObject, completed: bool) -> tuple[tuple[bytes, ...], ChainSource]:
    """The peer's chain as DER, leaf first, and how it was seen (see the module docstring)."""
    public = getattr(obj, "get_unverified_chain", None)  # Python 3.13
    if public is not None:
        found = public()
        if found:
            return tuple(bytes(der) for der in found), "presented"
    private: Callable[[], object] | None = getattr(
        getattr(obj, "_sslobj", None), "get_unverified_chain", None
    )
    if private is not None:
        certs = private()
        if isinstance(certs, list) and certs:
            encoding = ssl._ssl.ENCODING_DER  # type: ignore[attr-defined]
            return tuple(cert.public_bytes(encoding) for cert in certs), "presented"
    if completed:
        leaf = obj.getpeercert(binary_form=True)
        if leaf:
            return (leaf,), "leaf"
    return (), "none"


async def handshake(
    sock: _Socket, settings: TlsSettings, server_name: str | None, timeout: float
) -> TlsOutcome:
    """The TLS phase on a connected non-blocking socket, within ``timeout`` seconds.

    ``settings.server_name`` wins over ``server_name`` (the target's host) for SNI and
    verification. The STARTTLS preamble, when asked for, comes first and counts in
    ``tls_ms``. Never raises for network trouble (a reset, a close, silence, plain text: all
    are outcomes); an unusable setting raises :class:`TlsConfigError`. The socket stays open:
    closing it is the caller's job, as its opening was.
    """
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    name = settings.server_name or server_name
    context = context_for(settings)
    wire = _Wire(loop, sock, timeout)
    stage: Stage = "starttls" if settings.starttls else "handshake"

    def outcome(**facts: object) -> TlsOutcome:
        fields: dict[str, object] = {
            "server_name": name,
            "stage": stage,
            "tls_ms": (time.perf_counter() - started) * 1000.0,
            "received": wire.received,
            "starttls": settings.starttls,
            "timeout_s": timeout,
        }
        fields.update(facts)
        return TlsOutcome(**fields)  # type: ignore[arg-type]

    try:
        if settings.starttls:
            try:
                await _starttls(wire, settings.starttls)
            except _Refused as refused:
                return outcome(completed=False, starttls_reply=str(refused))
            stage = "handshake"
            wire.received = 0
        return await _tls(wire, context, name, outcome, started)
    except _Expired:
        tls_bytes = stage == "starttls" or _looks_like_tls(wire.first)
        plaintext = None if tls_bytes else wire.first
        return outcome(completed=False, timed_out=True, plaintext=plaintext)
    except OSError as exc:
        code = exc.errno or errno_module.EIO
        return outcome(completed=False, errno=errno_module.errorcode.get(code, str(code)))
    finally:
        wire.close()


def start_handshake(
    sock: _Socket,
    settings: TlsSettings,
    server_name: str | None,
    timeout: float,
    on_done: Callable[[TlsOutcome], object],
) -> Callable[[], object]:
    """:func:`handshake` in the probers' callback shape: ``on_done(outcome)`` once, unless
    the returned function abandons it first (then never). One task per TLS check: next to
    the ~1 ms of CPU a handshake costs, a task's ~10 µs does not count.
    """

    def finished(task: asyncio.Task[TlsOutcome]) -> None:
        if not task.cancelled():
            on_done(task.result())

    task = asyncio.get_running_loop().create_task(handshake(sock, settings, server_name, timeout))
    task.add_done_callback(finished)
    return task.cancel


async def _tls(
    wire: _Wire,
    context: ssl.SSLContext,
    name: str | None,
    outcome: Callable[..., TlsOutcome],
    started: float,
) -> TlsOutcome:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_hostname=name)
    first_answer: float | None = None
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = outgoing.read()
            if pending:
                await wire.send(pending)
            data = await wire.recv()
            if first_answer is None:
                first_answer = time.perf_counter()
            if not data:
                chain, source = _chain(obj, False)
                return outcome(completed=False, peer_closed=True, chain=chain, chain_source=source)
            if not _looks_like_tls(wire.first):
                return outcome(completed=False, plaintext=wire.first)
            incoming.write(data)
        except ssl.SSLError as exc:
            wire.send_now(outgoing.read())  # our alert, so the server's log says why
            chain, source = _chain(obj, False)
            return outcome(completed=False, error=_error(exc), chain=chain, chain_source=source)
    final = outgoing.read()  # our Finished (and certificate, for mTLS)
    version, cipher = obj.version(), (obj.cipher() or (None,))[0]
    asked = version == "TLSv1.3" and _encrypted_records(final) > 1
    if not asked:
        # Nothing more can come from the server that changes the verdict: the Finished and
        # the close_notify leave in one write (a send costs ~76 us on loopback, a third of
        # the CPU a check spends outside OpenSSL).
        await wire.send(final + _close_notify(obj, outgoing))
    else:
        await wire.send(final)
    chain, source = _chain(obj, True)
    facts: dict[str, object] = {
        "version": version,
        "cipher": cipher,
        "chain": chain,
        "chain_source": source,
        "client_cert_requested": asked,
    }
    if asked:
        # The server checks a client certificate (or its absence) only after our Finished;
        # its verdict is the next thing it sends: session tickets, or an alert.
        rtt = (first_answer or time.perf_counter()) - started
        grace = max(POST_HANDSHAKE_MIN_S, POST_HANDSHAKE_RTTS * rtt)
        rejected = await _post_handshake(wire, obj, incoming, outgoing, grace)
        if rejected is not None:
            return outcome(completed=False, stage="post_handshake", error=rejected, **facts)
        wire.send_now(_close_notify(obj, outgoing))
    return outcome(completed=True, stage="done", **facts)


def _encrypted_records(flight: bytes) -> int:
    """How many encrypted records (type 23) our last TLS 1.3 flight holds.

    OpenSSL writes each handshake message of TLS 1.3 in a record of its own: the Finished
    alone is one; a (possibly empty) Certificate before it, which it sends only when the
    server asked for one (CertificateRequest), makes two or three. Only then can the server
    still reject us after the handshake, so only then is its verdict worth waiting for.
    """
    count, at = 0, 0
    while at + 5 <= len(flight):
        if flight[at] == 23:
            count += 1
        at += 5 + int.from_bytes(flight[at + 3 : at + 5], "big")
    return count


async def _post_handshake(
    wire: _Wire,
    obj: ssl.SSLObject,
    incoming: ssl.MemoryBIO,
    outgoing: ssl.MemoryBIO,
    grace: float,
) -> TlsError | None:
    """The alert that rejects us after a TLS 1.3 handshake, or None (tickets, data, quiet)."""
    try:
        data = await wire.recv(grace)
    except _Grace:
        return None
    if not data:
        return None
    incoming.write(data)
    try:
        obj.read(1)
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
        return None
    except ssl.SSLError as exc:
        return _error(exc)
    return None


def _close_notify(obj: ssl.SSLObject, outgoing: ssl.MemoryBIO) -> bytes:
    with contextlib.suppress(ssl.SSLError):
        obj.unwrap()
    return outgoing.read()


# --- what it means (pure) ---------------------------------------------------------------


class _Cert(Struct, frozen=True, gc=False):
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    fingerprint: str
    is_ca: bool
    self_issued: bool
    ca_issuers: tuple[str, ...]


#: parsed certificates by their DER: a scan meets the same intermediates (and, behind load
#: balancers, the same leaves) again and again; parsing one costs about 40 µs
PARSE_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse(der: bytes) -> _Cert | None:
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    try:
        cert: Certificate = x509.load_der_x509_certificate(der)
        sans: list[str] = []
        is_ca = False
        issuers: list[str] = []
        for extension in cert.extensions:  # one pass: a lookup by class is a scan each
            value = extension.value
            if isinstance(value, x509.SubjectAlternativeName):
                sans.extend(value.get_values_for_type(x509.DNSName))
                sans.extend(str(ip) for ip in value.get_values_for_type(x509.IPAddress))
            elif isinstance(value, x509.BasicConstraints):
                is_ca = value.ca
            elif isinstance(value, x509.AuthorityInformationAccess):
                issuers.extend(
                    str(d.access_location.value)
                    for d in value
                    if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
                )
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        return _Cert(
            subject=subject,
            issuer=issuer,
            sans=tuple(sans),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            fingerprint=hashlib.sha256(der).hexdigest(),
            is_ca=is_ca,
            self_issued=subject == issuer,
            ca_issuers=tuple(issuers),
        )
    except ValueError:  # a certificate cryptography cannot read: shown as absent
        return None


def _days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, towards zero: 10.9 days left is 10, 3.1 days ago -3."""
    return math.trunc((not_after - now).total_seconds() / 86400.0)


def _parsed_chain(outcome: TlsOutcome) -> list[_Cert]:
    return [cert for cert in map(_parse, outcome.chain) if cert is not None]


def tls_info(outcome: TlsOutcome, now: datetime) -> TlsInfo | None:
    """The ``tls`` fields from an outcome; None when the peer showed neither TLS nor a chain."""
    if outcome.version is None and not outcome.chain:
        return None
    chain = _parsed_chain(outcome)
    if not chain:
        return TlsInfo(outcome.version, outcome.cipher, chain_source=outcome.chain_source)
    leaf = chain[0]
    earliest = min(chain, key=lambda cert: cert.not_after)
    return TlsInfo(
        version=outcome.version,
        cipher=outcome.cipher,
        subject=leaf.subject,
        issuer=leaf.issuer,
        sans=leaf.sans,
        not_before=leaf.not_before.isoformat(),
        not_after=leaf.not_after.isoformat(),
        days_left=_days_left(leaf.not_after, now),
        fingerprint_sha256=leaf.fingerprint,
        chain_length=len(outcome.chain),
        chain_source=outcome.chain_source,
        earliest_not_after=earliest.not_after.isoformat(),
        earliest_subject=earliest.subject,
    )


def _which(chain: list[_Cert], index: int) -> str:
    cert = chain[index]
    if index == 0:
        return f"the server's certificate ({cert.subject})"
    role = "root CA" if cert.self_issued else "intermediate CA"
    return f"the {role} certificate {cert.subject} (number {index + 1} in the chain)"


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _names(cert: _Cert) -> str:
    return ", ".join(cert.sans) if cert.sans else f"no SAN at all, subject {cert.subject}"


def classify_tls(
    outcome: TlsOutcome, settings: TlsSettings, now: datetime
) -> tuple[Category, str | None]:
    """Category and hint for a TLS phase: ``open`` (hint None) when it passed every check."""
    if outcome.timed_out:
        return Category.TLS_TIMEOUT, _timeout_hint(outcome)
    if outcome.plaintext is not None:
        shown, kind, action = plaintext_kind(outcome.plaintext)
        return (
            Category.TLS_NOT_TLS,
            f'the peer answered in plain text, not TLS: "{shown}" looks like {kind}; {action}',
        )
    if outcome.stage == "starttls":
        return Category.TLS_HANDSHAKE_FAILED, _starttls_hint(outcome)
    error = outcome.error
    if error is not None and error.verify_code is not None:
        return _verify_failure(error, _parsed_chain(outcome), outcome, now)
    if not outcome.completed:
        return Category.TLS_HANDSHAKE_FAILED, _failed_hint(outcome, settings)
    return _dates(outcome, settings, now)


def _failed_hint(outcome: TlsOutcome, settings: TlsSettings) -> str:
    """Why a handshake that did not complete failed: the alert, a reset, or a bare close."""
    if outcome.error is not None:
        return _handshake_hint(outcome.error, outcome, settings)
    if outcome.errno is not None:
        return (
            f"the connection broke during the TLS {outcome.stage} ({outcome.errno}) after "
            f"{outcome.received} bytes from the server: a TLS terminator that gives up, or a "
            "middlebox resetting TLS"
        )
    return (
        "the server closed the connection during the TLS handshake without an alert "
        f"(after {outcome.received} bytes): it refuses this client's offer or is not a "
        "TLS service; check its TLS log"
    )


def _timeout_hint(outcome: TlsOutcome) -> str:
    waited = f"{outcome.timeout_s:g}s"
    if outcome.stage == "starttls":
        return (
            f"no {outcome.starttls} answer within {waited} during the STARTTLS preamble "
            f"({outcome.received} bytes came): if the port speaks TLS at once, drop starttls"
        )
    if outcome.received == 0:
        return (
            f"the port accepted the TCP connection but sent nothing back to the TLS "
            f"ClientHello within {waited}: a service waiting for another protocol, or a stuck "
            "TLS terminator"
        )
    return (
        f"the TLS handshake stalled within {waited} after {outcome.received} bytes from the "
        "server: an overloaded or stuck TLS terminator"
    )


def _starttls_hint(outcome: TlsOutcome) -> str:
    reply = outcome.starttls_reply or ""
    if outcome.starttls == "postgres":
        if reply == "N":
            return "PostgreSQL answered N to the SSLRequest: the server has ssl = off"
        return f'PostgreSQL did not accept the SSLRequest: "{reply}"'
    if outcome.errno is not None:
        return f"the connection broke during the {outcome.starttls} STARTTLS preamble"
    return f'the {outcome.starttls} server did not start TLS: "{reply}"'


def _handshake_hint(error: TlsError, outcome: TlsOutcome, settings: TlsSettings) -> str:
    where = " after the handshake" if outcome.stage == "post_handshake" else ""
    if error.alert is not None:
        meaning = TLS_ALERT_MEANING.get(error.alert, "see the server's TLS log")
        if error.alert == "handshake_failure" and settings.client_cert is None:
            meaning += " (none was offered)"
        return f"the server sent the TLS alert {error.alert}{where}: {meaning}"
    local = TLS_LOCAL_REASONS.get(error.reason or "")
    if local is not None:
        return f"{local} ({error.reason})"
    return f"the TLS handshake failed: {error.reason or error.message}"


def _verify_failure(
    error: TlsError, chain: list[_Cert], outcome: TlsOutcome, now: datetime
) -> tuple[Category, str]:
    category, what = tls_verify_category(error.verify_code or 0)
    said = error.verify_message or "verification failed"
    if not chain:
        return category, f"the certificate did not verify: {said} (the chain was not visible)"
    explain = _VERIFY_HINTS.get(what)
    if explain is None:
        return category, f"the certificate chain did not verify: {said} ({what})"
    return category, explain(chain, outcome, now, said)


def _expired_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    gone = [i for i, cert in enumerate(chain) if cert.not_after < now]
    if not gone:
        return (
            "a CA certificate of this trust store that the chain leads to has expired; "
            "the server must chain to a current root"
        )
    index = min(gone, key=lambda i: chain[i].not_after)
    cert = chain[index]
    return (
        f"{_which(chain, index)} expired on {_date(cert.not_after)} "
        f"({-_days_left(cert.not_after, now)} days ago): renew it"
    )


def _not_yet_valid_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    early = [i for i, cert in enumerate(chain) if cert.not_before > now]
    if not early:
        return f"a CA certificate is not valid yet: {said}"
    index = early[0]
    return (
        f"{_which(chain, index)} is not valid before {_date(chain[index].not_before)}: "
        "check this machine's and the issuer's clocks, or the certificate's start date"
    )


def _mismatch_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    return (
        f"the certificate is for {_names(chain[0])}, not {outcome.server_name}: fix "
        "server_name, or reissue the certificate with that name"
    )


def _self_signed_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    return (
        f"the server's certificate ({chain[0].subject}) is self-signed: put it in ca_file if "
        "it is yours, or install one from a trusted CA"
    )


def _root_in_chain_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    root = next((c for c in reversed(chain) if c.self_issued), chain[-1])
    return (
        f"unknown CA: the chain ends at the root {root.subject}, which this trust store "
        "does not hold; set ca_file to it if it is your CA"
    )


def _unknown_issuer_hint(chain: list[_Cert], outcome: TlsOutcome, now: datetime, said: str) -> str:
    top = chain[-1]
    if len(chain) == 1 and top.ca_issuers:
        return (
            f"incomplete chain: the server sent only its own certificate, without the "
            f"intermediate CA {top.issuer} that issued it (published at "
            f"{top.ca_issuers[0]}): configure the full chain on the server"
        )
    if len(chain) == 1:
        return (
            f"the server sent only its own certificate, issued by {top.issuer}, which this "
            "trust store does not hold: an incomplete chain (the server must also send that "
            "intermediate) or an unknown CA (set ca_file)"
        )
    return (
        f"unknown CA: the chain the server sent ends at {top.subject}, issued by "
        f"{top.issuer}, which this trust store does not hold; set ca_file if it is your CA"
    )


#: what OpenSSL's verify code names (:data:`scanner.classify.TLS_VERIFY_CODES`) -> the hint
_VERIFY_HINTS: dict[str, Callable[[list[_Cert], TlsOutcome, datetime, str], str]] = {
    "expired": _expired_hint,
    "not_yet_valid": _not_yet_valid_hint,
    "hostname_mismatch": _mismatch_hint,
    "ip_mismatch": _mismatch_hint,
    "self_signed": _self_signed_hint,
    "self_signed_in_chain": _root_in_chain_hint,
    "unknown_issuer": _unknown_issuer_hint,
}


def _dates(
    outcome: TlsOutcome, settings: TlsSettings, now: datetime
) -> tuple[Category, str | None]:
    """A completed handshake against ``min_days``: the earliest expiry of the chain decides."""
    if settings.min_days is None:
        return Category.OPEN, None  # no parse: OpenSSL has checked the dates (unless verify off)
    chain = _parsed_chain(outcome)
    if not chain:
        return Category.OPEN, None
    index = min(range(len(chain)), key=lambda i: chain[i].not_after)
    cert = chain[index]
    days = _days_left(cert.not_after, now)
    if cert.not_after < now:  # only reachable with verify: false
        return Category.TLS_EXPIRED, (
            f"{_which(chain, index)} expired on {_date(cert.not_after)} ({-days} days ago): "
            "renew it"
        )
    early = next((i for i, c in enumerate(chain) if c.not_before > now), None)
    if early is not None:  # only reachable with verify: false
        return Category.TLS_NOT_YET_VALID, (
            f"{_which(chain, early)} is not valid before {_date(chain[early].not_before)}"
        )
    if days < settings.min_days:
        return Category.TLS_EXPIRING, (
            f"{_which(chain, index)} expires on {_date(cert.not_after)}, in {days} days "
            f"(min_days is {settings.min_days}): renew it"
        )
    return Category.OPEN, None
