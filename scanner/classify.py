"""Pure tables: from what the kernel or the resolver said to a category and a hint.

Everything that interprets an errno, an ICMP (type, code) or a c-ares status lives
here, as data, so the mapping can be read in one place and tested as a table. No I/O.
"""

from __future__ import annotations

import errno as E
import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from .models import AddressFamily, Category, ConnectOutcome, IcmpDetail

C = Category

#: errno from connect()/SO_ERROR when the error queue has nothing better to say.
ERRNO_CATEGORY: Mapping[int, Category] = {
    0: C.OPEN,
    E.ECONNREFUSED: C.REFUSED,
    # Reset or closed *after* the handshake completed (Linux's tcp_reset(): a RST in
    # SYN_SENT is ECONNREFUSED, in ESTABLISHED ECONNRESET, in CLOSE_WAIT EPIPE): the port
    # accepted. Called refused, a service that accepts and resets failed 3 of 2,000
    # targets on an idle machine, depending on who ran first.
    E.ECONNRESET: C.OPEN,
    E.EPIPE: C.OPEN,
    E.ETIMEDOUT: C.TIMEOUT,
    E.EHOSTUNREACH: C.HOST_UNREACHABLE,
    E.EHOSTDOWN: C.HOST_UNREACHABLE,
    E.ENETUNREACH: C.NETWORK_UNREACHABLE,
    E.ENETDOWN: C.NETWORK_UNREACHABLE,
    E.EPERM: C.BLOCKED_LOCALLY,
    E.EACCES: C.BLOCKED_LOCALLY,
    # Local shortages: they say nothing about the target.
    E.EMFILE: C.INCONCLUSIVE,
    E.ENFILE: C.INCONCLUSIVE,
    E.EADDRNOTAVAIL: C.INCONCLUSIVE,
    E.EADDRINUSE: C.INCONCLUSIVE,
    E.ENOBUFS: C.INCONCLUSIVE,
    E.ENOMEM: C.INCONCLUSIVE,
    E.EAGAIN: C.INCONCLUSIVE,
}

#: ICMPv4 destination-unreachable (type 3) codes, RFC 792 / RFC 1812.
ICMP4_UNREACH: Mapping[int, Category] = {
    0: C.NETWORK_UNREACHABLE,  # net unreachable
    1: C.HOST_UNREACHABLE,  # host unreachable (ARP failed at the last router)
    2: C.REJECTED,  # protocol unreachable
    3: C.REJECTED,  # port unreachable: a filter, TCP itself would answer RST
    5: C.NETWORK_UNREACHABLE,  # source route failed
    6: C.NETWORK_UNREACHABLE,  # destination network unknown
    7: C.HOST_UNREACHABLE,  # destination host unknown
    8: C.REJECTED,  # source host isolated
    9: C.REJECTED,  # network administratively prohibited
    10: C.REJECTED,  # host administratively prohibited
    11: C.NETWORK_UNREACHABLE,  # network unreachable for TOS
    12: C.HOST_UNREACHABLE,  # host unreachable for TOS
    13: C.REJECTED,  # communication administratively prohibited (filter)
    14: C.REJECTED,  # host precedence violation
    15: C.REJECTED,  # precedence cutoff in effect
}

#: ICMPv6 destination-unreachable (type 1) codes, RFC 4443.
ICMP6_UNREACH: Mapping[int, Category] = {
    0: C.NETWORK_UNREACHABLE,  # no route to destination
    1: C.REJECTED,  # communication administratively prohibited
    2: C.NETWORK_UNREACHABLE,  # beyond scope of source address
    3: C.HOST_UNREACHABLE,  # address unreachable (NDP failed)
    4: C.REJECTED,  # port unreachable
    5: C.REJECTED,  # source address failed ingress/egress policy
    6: C.REJECTED,  # reject route to destination
}

ICMP4_DEST_UNREACH, ICMP4_TIME_EXCEEDED = 3, 11
ICMP6_DEST_UNREACH, ICMP6_TIME_EXCEEDED = 1, 3

HINTS: Mapping[Category, str] = {
    C.OPEN: "",
    C.REFUSED: "a TCP reset came back: nothing listens on port {port} (service down, "
    "wrong port, or bound to another address), or a firewall rejects with a reset",
    C.REJECTED: "a firewall at {icmp_from} rejects the traffic (ICMP {icmp}); "
    "check its rules for port {port}",
    C.TIMEOUT: "no answer within {timeout:g}s: a firewall silently drops the packets, "
    "the host is down, or the service listens but its accept queue is full (hung or "
    "overloaded)",
    C.HOST_UNREACHABLE: "the host is down or not on that network (ARP/NDP got no answer)"
    "{from_clause}",
    C.NETWORK_UNREACHABLE: "no route to that network{from_clause}; check routing and VPN",
    C.BLOCKED_LOCALLY: "this machine's own firewall or policy blocks the connection "
    "({local_cause}); check local nftables/iptables OUTPUT rules and prohibit routes",
    C.INCONCLUSIVE: "{local_shortage}; says nothing about the target: {local_remedy}",
    C.DNS_NXDOMAIN: "the name does not exist: check for a typo or a missing DNS record",
    C.DNS_NO_ADDRESS: "the name exists but has no {rr} record: check the DNS records "
    "(or the family setting)",
    C.DNS_SERVFAIL: "the DNS server could not answer (broken upstream or DNSSEC)",
    C.DNS_REFUSED: "the DNS server refuses to answer this client: check its ACLs "
    "and which nameserver is configured",
    C.DNS_TIMEOUT: "no DNS answer in time: the nameserver is unreachable or drops queries",
    C.DNS_ERROR: "the resolver failed: {detail}",
    C.SLOW: "handshake took {latency_ms} ms, over the {budget_ms:g} ms budget: "
    "overloaded service or long path",
    C.OUT_OF_SCOPE: "no packet sent: the address is outside the scope (scope.allow, "
    "--allow); {out_of_scope}",
    C.NOT_ACCEPTING: "the service listens on port {port} but does not accept: its accept "
    "queue is full (hung, deadlocked or overloaded); check the process and its load",
    C.CLOSED_BY_PEER: "accepts the connection and closes it at once ({peer_closed} within "
    "{hold_ms:g} ms): a proxy or load balancer with no healthy backend, TCP wrappers, or a "
    "connection limit",
}


#: host_unreachable that no router reported: this machine decided, after ARP/NDP or by a route
HOST_UNREACHABLE_HERE_HINT = (
    "the host is down or not on that network (ARP/NDP got no answer), or a route on this "
    "machine marks it unreachable (ip route get ADDRESS)"
)

#: network_unreachable from an ICMP time exceeded: the hop limit ran out, not the routes
ROUTING_LOOP_HINT = (
    "the hop limit ran out on the way (ICMP time exceeded{from_clause}): a routing loop "
    "between here and there, not a missing route; check the routers' tables"
)

#: inconclusive, per errno: what this machine ran out of, and what to do before a rerun
LOCAL_SHORTAGES: Mapping[str, tuple[str, str]] = {
    "EMFILE": (
        "this process ran out of file descriptors (EMFILE)",
        "lower --concurrency or raise the open-file limit (ulimit -n) and run again",
    ),
    "ENFILE": (
        "the system ran out of file descriptors (ENFILE)",
        "lower --concurrency or raise fs.file-max and run again",
    ),
    "EADDRNOTAVAIL": (
        "no local address and port to connect from (EADDRNOTAVAIL): the ephemeral ports "
        "are used up, or this machine has no source address of that family",
        "lower --concurrency or widen net.ipv4.ip_local_port_range, or check this "
        "machine's addresses, and run again",
    ),
    "EADDRINUSE": (
        "no free local port (EADDRINUSE)",
        "lower --concurrency or widen net.ipv4.ip_local_port_range and run again",
    ),
    "ENOBUFS": (
        "the kernel ran out of buffer space (ENOBUFS)",
        "lower --concurrency and run again",
    ),
    "ENOMEM": ("the kernel ran out of memory (ENOMEM)", "lower --concurrency and run again"),
    "EAGAIN": (
        "the kernel had no resources for another connection (EAGAIN)",
        "lower --concurrency and run again",
    ),
}


def local_shortage(errno_name: str | None) -> tuple[str, str]:
    """What an inconclusive errno says about this machine, and what to do about it."""
    known = LOCAL_SHORTAGES.get(errno_name or "")
    if known is not None:
        return known
    return (
        f"connecting failed on this machine with an unexpected error ({errno_name or 'no errno'})",
        "run again; if it persists, report the errno",
    )


#: dns_no_address because every answer was 0.0.0.0 or :: (never probed: it is this machine)
SINKHOLED_HINT = (
    "the name is sinkholed: DNS or the hosts file answers 0.0.0.0 / ::, which is never probed; "
    "check the blocklist (DNS filter, hosts file) that maps it there"
)


def classify_icmp(icmp: IcmpDetail) -> Category | None:
    """Category for an ICMP error, or None for types we do not interpret."""
    if icmp.family == "ipv4":
        if icmp.type == ICMP4_DEST_UNREACH:
            return ICMP4_UNREACH.get(icmp.code)
        if icmp.type == ICMP4_TIME_EXCEEDED:
            return C.NETWORK_UNREACHABLE  # TTL ran out on the way: a routing loop
        return None
    if icmp.type == ICMP6_DEST_UNREACH:
        return ICMP6_UNREACH.get(icmp.code)
    if icmp.type == ICMP6_TIME_EXCEEDED:
        return C.NETWORK_UNREACHABLE
    return None


def classify_errno(err: int) -> Category:
    """Category for a connect() errno; unknown errnos are our problem, not the target's."""
    return ERRNO_CATEGORY.get(err, C.INCONCLUSIVE)


#: errnos of a handshake that completed and was then reset or closed by the peer
ACCEPTED_THEN_CLOSED = frozenset({E.ECONNRESET, E.EPIPE})


def classify_connect(
    outcome: ConnectOutcome, local_addresses: Iterable[str] = (), target_address: str | None = None
) -> Category:
    """Category of one handshake attempt.

    The ICMP detail wins over the errno because the errno alone cannot tell a TCP
    reset from an ICMP port-unreachable (both are ECONNREFUSED), and IPv6
    admin-prohibited arrives as EACCES, which alone would look like a local block.
    Who sent the ICMP matters as much as what it says:

    * a reject this host sent to itself is its own OUTPUT firewall: ``blocked_locally``;
    * a host- or net-unreachable sent *by the target's own address* cannot mean the
      host is down (it answered): a filter on the target rejects, so ``rejected``.
    """
    if outcome.peer_closed is not None:
        return C.CLOSED_BY_PEER
    if outcome.errno == 0 and not outcome.timed_out:
        return C.OPEN
    icmp = _from_icmp(outcome.icmp, local_addresses, target_address) if outcome.icmp else None
    if icmp is not None:
        return icmp
    if outcome.timed_out:
        return C.NOT_ACCEPTING if outcome.queue_full else C.TIMEOUT
    return classify_errno(outcome.errno)


def _from_icmp(
    icmp: IcmpDetail, local_addresses: Iterable[str], target_address: str | None
) -> Category | None:
    """What an ICMP error means, given who sent it (see :func:`classify_connect`)."""
    category = classify_icmp(icmp)
    if category is C.REJECTED and any(same_address(icmp.sender, a) for a in local_addresses):
        return C.BLOCKED_LOCALLY
    unreachable = category in (C.HOST_UNREACHABLE, C.NETWORK_UNREACHABLE)
    if unreachable and same_address(icmp.sender, target_address):
        return C.REJECTED
    return category


def classify_latency(
    category: Category, latency_ms: float | None, budget_ms: float | None
) -> Category:
    """``slow`` for a completed handshake over its latency budget; otherwise unchanged."""
    if (
        category is C.OPEN
        and budget_ms is not None
        and latency_ms is not None
        and latency_ms > budget_ms
    ):
        return C.SLOW
    return category


#: When A and AAAA fail differently, the name's verdict is the most actionable one:
#: a server failure hides whether the record exists, so it outranks "no such record".
_DNS_PRECEDENCE: Sequence[Category] = (
    C.DNS_TIMEOUT,
    C.DNS_SERVFAIL,
    C.DNS_REFUSED,
    C.DNS_ERROR,
    C.DNS_NO_ADDRESS,
    C.DNS_NXDOMAIN,
)


def combine_dns(per_family: Sequence[tuple[AddressFamily, Category]]) -> Category:
    """One verdict for a name from the outcome of each family queried.

    Any address at all means the name resolved, as getaddrinfo() would say. If none
    resolved, NXDOMAIN only when every query said so; NODATA from one family means
    the name exists, so that becomes ``dns_no_address``.
    """
    categories = [category for _, category in per_family]
    if not categories:
        return C.DNS_ERROR
    if C.RESOLVED in categories:
        return C.RESOLVED
    if all(c is C.DNS_NXDOMAIN for c in categories):
        return C.DNS_NXDOMAIN
    for candidate in _DNS_PRECEDENCE:
        if candidate in categories:
            return candidate
    return C.DNS_ERROR


def errno_name(number: int) -> str:
    """The symbolic name of an errno (``ECONNREFUSED``), ``E<n>`` for one Python does not know."""
    return E.errorcode.get(number, f"E{number}")


def icmp_name(icmp: IcmpDetail) -> str:
    """A readable name for an ICMP error, e.g. ``port-unreachable (3/3)``."""
    names4 = {
        0: "net-unreachable",
        1: "host-unreachable",
        2: "prot-unreachable",
        3: "port-unreachable",
        9: "net-prohibited",
        10: "host-prohibited",
        13: "admin-prohibited",
    }
    names6 = {
        0: "no-route",
        1: "admin-prohibited",
        2: "beyond-scope",
        3: "addr-unreachable",
        4: "port-unreachable",
        5: "policy-fail",
        6: "reject-route",
    }
    v4 = icmp.family == "ipv4"
    unreach = ICMP4_DEST_UNREACH if v4 else ICMP6_DEST_UNREACH
    exceeded = ICMP4_TIME_EXCEEDED if v4 else ICMP6_TIME_EXCEEDED
    table = names4 if v4 else names6
    if icmp.type == unreach:
        label = table.get(icmp.code, "unreachable")
    elif icmp.type == exceeded:
        label = "time-exceeded"
    else:
        label = "icmp"
    return f"{label} {icmp.type}/{icmp.code}"


def _milliseconds(value: float, over: float | None = None) -> str:
    """As many digits as a latency needs: 120 ms, 3.4 ms, 0.052 ms; and, with ``over`` (the
    budget it exceeded), enough to show it above it (0.0014 over a 0.001 ms budget)."""
    digits = 0 if value >= 10 else 1 if value >= 1 else 3
    text = f"{value:.{digits}f}"
    while over is not None and float(text) <= over and digits < 12:
        digits += 1
        text = f"{value:.{digits}f}"
    return text


def _time_exceeded(icmp: IcmpDetail) -> bool:
    exceeded = ICMP4_TIME_EXCEEDED if icmp.family == "ipv4" else ICMP6_TIME_EXCEEDED
    return icmp.type == exceeded


def same_address(a: str | None, b: str | None) -> bool:
    """Whether two address spellings name the same address (``2001:DB8::1`` = ``2001:db8::1``)."""
    if a is None or b is None:
        return False
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def hint_for(
    category: Category,
    *,
    port: int | None = None,
    timeout: float = 0.0,
    icmp: IcmpDetail | None = None,
    errno_name: str | None = None,
    detail: str | None = None,
    family: str = "any",
    latency_ms: float | None = None,
    budget_ms: float | None = None,
    target_address: str | None = None,
    peer_closed: str | None = None,
    hold_ms: float | None = None,
    literal: bool = False,
) -> str | None:
    """The sentence that tells a person what to check next; None for ``open``."""
    if category in (C.OPEN, C.RESOLVED):
        return None
    if category is C.DNS_NO_ADDRESS and detail and "sinkholed" in detail:
        return SINKHOLED_HINT
    sender = icmp.sender if icmp else None
    if category is C.REJECTED and icmp is not None and same_address(sender, target_address):
        return (
            f"the target host itself rejects port {port} (ICMP {icmp_name(icmp)}"
            "): a host firewall, not a missing listener"
        )
    if category is C.NETWORK_UNREACHABLE and icmp is not None and _time_exceeded(icmp):
        return ROUTING_LOOP_HINT.format(from_clause=f" from {sender}" if sender else "")
    if category is C.HOST_UNREACHABLE and not sender:
        return HOST_UNREACHABLE_HERE_HINT
    rr = {"ipv4": "A", "ipv6": "AAAA"}.get(family, "A or AAAA")
    shortage, remedy = local_shortage(errno_name)
    local_cause = (
        f"ICMP {icmp_name(icmp)} sent by this host's own address {sender}"
        if icmp is not None and sender
        else errno_name or "unknown error"
    )
    return HINTS[category].format(
        local_cause=local_cause,
        port=port,
        timeout=timeout,
        icmp_from=sender or "an unknown address",
        icmp=icmp_name(icmp) if icmp else "unreachable",
        from_clause=f" (ICMP from {sender})" if sender else "",
        errno=errno_name or "unknown error",
        detail=detail or "unknown error",
        rr=rr,
        latency_ms=_milliseconds(latency_ms or 0.0, over=budget_ms),
        local_shortage=shortage,
        local_remedy=remedy,
        budget_ms=budget_ms or 0.0,
        out_of_scope="the inventory names this address itself, so widen the scope or fix "
        "the address"
        if literal
        else "the name resolves to it (DNS or the hosts file): an unexpected record, or a "
        "network missing from the scope",
        peer_closed="a reset" if peer_closed == "RST" else "a FIN",
        hold_ms=hold_ms or 0.0,
    )


# =============================================================================================
# TLS (issue 15): the TLS phase after an opened TCP handshake. Appended as one section so it
# merges on its own; the functions that read these tables live in scanner/probers/tls.py.
# =============================================================================================

#: X509_V_ERR_* codes (openssl/x509_vfy.h) that SSLCertVerificationError.verify_code carries,
#: to a category and a short name for what is wrong. A code not listed is ``tls_untrusted``
#: with OpenSSL's own message: the chain did not verify, for a reason this table does not name.
TLS_VERIFY_CODES: Mapping[int, tuple[Category, str]] = {
    2: (C.TLS_UNTRUSTED, "unknown_issuer"),  # unable to get issuer certificate
    7: (C.TLS_UNTRUSTED, "bad_signature"),  # certificate signature failure
    9: (C.TLS_NOT_YET_VALID, "not_yet_valid"),  # certificate is not yet valid
    10: (C.TLS_EXPIRED, "expired"),  # certificate has expired
    18: (C.TLS_UNTRUSTED, "self_signed"),  # self-signed certificate (depth 0)
    19: (C.TLS_UNTRUSTED, "self_signed_in_chain"),  # a root in the chain, not trusted here
    20: (C.TLS_UNTRUSTED, "unknown_issuer"),  # unable to get local issuer certificate
    21: (C.TLS_UNTRUSTED, "unknown_issuer"),  # unable to verify the first certificate
    23: (C.TLS_UNTRUSTED, "revoked"),  # certificate revoked
    24: (C.TLS_UNTRUSTED, "bad_issuer"),  # issuer certificate doesn't have a public key
    26: (C.TLS_UNTRUSTED, "wrong_purpose"),  # unsuitable certificate purpose
    27: (C.TLS_UNTRUSTED, "not_trusted"),  # certificate not trusted
    28: (C.TLS_UNTRUSTED, "rejected"),  # certificate rejected
    62: (C.TLS_HOSTNAME_MISMATCH, "hostname_mismatch"),  # hostname mismatch
    64: (C.TLS_HOSTNAME_MISMATCH, "ip_mismatch"),  # IP address mismatch
    66: (C.TLS_UNTRUSTED, "weak_key"),  # EE certificate key too weak
    67: (C.TLS_UNTRUSTED, "weak_key"),  # CA certificate key too weak
    68: (C.TLS_UNTRUSTED, "weak_digest"),  # CA signature digest algorithm too weak
    79: (C.TLS_UNTRUSTED, "bad_issuer"),  # invalid CA certificate
}

#: TLS alert descriptions (RFC 8446 §6, RFC 5246 §7.2) as OpenSSL names them in an error
#: reason (``SSLV3_ALERT_HANDSHAKE_FAILURE``, ``TLSV13_ALERT_CERTIFICATE_REQUIRED``...): what
#: the peer's alert most often means for whoever runs the server.
TLS_ALERT_MEANING: Mapping[str, str] = {
    "handshake_failure": "the server found nothing acceptable in the offer: no shared cipher "
    "or protocol version, or it wants a client certificate",
    "protocol_version": "the server does not speak a TLS version this client offers "
    "(TLS 1.2 and 1.3): upgrade the server's TLS configuration",
    "insufficient_security": "the server wants stronger ciphers than offered",
    "certificate_required": "the server requires a client certificate: set client_cert and "
    "client_key",
    "bad_certificate": "the server rejected the client certificate offered",
    "unknown_ca": "the server does not trust the CA of the client certificate offered",
    "certificate_unknown": "the server rejected the client certificate offered",
    "certificate_expired": "the server says the client certificate offered has expired",
    "access_denied": "the server refuses this client (an ACL on the TLS endpoint)",
    "unrecognized_name": "the server has no certificate for this name (SNI): check server_name",
    "internal_error": "the server failed internally during the handshake: check its log",
    "decode_error": "the server could not parse this client's handshake",
    "illegal_parameter": "the server found a parameter of the handshake unacceptable",
    "no_application_protocol": "the server wants an application protocol (ALPN) not offered",
}

#: ssl reasons the client itself raises on what the server sent (no alert from the peer).
TLS_LOCAL_REASONS: Mapping[str, str] = {
    "UNSUPPORTED_PROTOCOL": "the server chose a TLS version older than 1.2, which this "
    "client refuses: upgrade the server's TLS configuration",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version is left to offer under this client's settings",
    "WRONG_SIGNATURE_TYPE": "the server signed with an algorithm this client refuses",
    "NO_SHARED_CIPHER": "no cipher in common with the server",
    "UNEXPECTED_EOF_WHILE_READING": "the server closed the connection in the middle of "
    "the handshake, without an alert",
}

#: What the first bytes of a plain-text answer look like, checked in order: (prefix, what it
#: is, what to do). The prefix is compared case-sensitively on the raw bytes.
TLS_PLAINTEXT_KINDS: Sequence[tuple[bytes, str, str]] = (
    (b"HTTP/", "an HTTP server without TLS", "use the HTTPS port or enable TLS on it"),
    (b"SSH-", "an SSH server", "wrong port for TLS"),
    (b"220", "an SMTP or FTP greeting", "set starttls: smtp, or use the implicit-TLS port"),
    (b"* OK", "an IMAP greeting", "set starttls: imap, or use port 993"),
    (b"+OK", "a POP3 greeting", "set starttls: pop3, or use port 995"),
    (b"<", "an HTML or XML document", "the port serves plain text, not TLS"),
    (b"{", "a JSON document", "the port serves plain text, not TLS"),
)

#: Generic hints for the TLS categories; :func:`scanner.probers.tls.classify_tls` builds a
#: precise one from the outcome (which certificate, which SANs, which alert, what text).
TLS_HINTS: Mapping[Category, str] = {
    C.TLS_EXPIRED: "a certificate the server presents has expired ({detail}): renew it",
    C.TLS_NOT_YET_VALID: "a certificate the server presents is not valid yet ({detail}): "
    "check the clocks, or the certificate's start date",
    C.TLS_EXPIRING: "a certificate the server presents expires soon ({detail}): renew it",
    C.TLS_HOSTNAME_MISMATCH: "the certificate is not for this name ({detail}): fix "
    "server_name or the certificate's SANs",
    C.TLS_UNTRUSTED: "the certificate chain does not lead to a trusted CA ({detail})",
    C.TLS_HANDSHAKE_FAILED: "the TLS handshake failed ({detail})",
    C.TLS_NOT_TLS: "the port answered in plain text, not TLS ({detail})",
    C.TLS_TIMEOUT: "the port accepted the connection but never completed the TLS "
    "handshake ({detail})",
}

# Folded into HINTS so that hint_for knows every category; at merge these entries belong in
# the HINTS literal above.
HINTS = {**HINTS, **TLS_HINTS}


def tls_verify_category(verify_code: int) -> tuple[Category, str]:
    """Category and short reason for an X509 verification error code."""
    return TLS_VERIFY_CODES.get(verify_code, (C.TLS_UNTRUSTED, "verify_failed"))


def tls_alert_name(reason: str | None) -> str | None:
    """The alert description in an OpenSSL reason: ``SSLV3_ALERT_HANDSHAKE_FAILURE`` ->
    ``handshake_failure``; None when the reason is not a received alert."""
    if not reason:
        return None
    for prefix in ("SSLV3_ALERT_", "TLSV13_ALERT_", "TLSV1_ALERT_"):
        if reason.startswith(prefix):
            return reason[len(prefix) :].lower()
    if reason == "TLSV1_UNRECOGNIZED_NAME":
        return "unrecognized_name"
    return None


def plaintext_kind(data: bytes) -> tuple[str, str, str]:
    """(first line as text, what it looks like, what to do) for a plain-text answer."""
    line = data.split(b"\n", 1)[0].rstrip(b"\r")[:60]
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in line)
    for prefix, kind, action in TLS_PLAINTEXT_KINDS:
        if data.startswith(prefix):
            return shown, kind, action
    return shown, "plain text", "the port does not speak TLS: check the port"
