"""Frozen data shared by every stage: targets in, results out.

Stages hand each other these values and nothing else, so each stage can be tested
alone and results can be serialised without knowing where they came from.

They are frozen msgspec Structs rather than dataclasses: a scan builds several per
target, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field)
cost about 2 µs each where a Struct costs 0.2 µs. The per-target ones are
``gc=False``: immutable and free of cycles, they need not burden the cycle collector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal

from msgspec import Struct, field

#: handshakes in flight unless ``--concurrency`` says otherwise (capped by the fd limit)
DEFAULT_CONCURRENCY = 1024

Expect = Literal["open", "closed"]
Family = Literal["any", "ipv4", "ipv6"]
AddressFamily = Literal["ipv4", "ipv6"]


class Category(StrEnum):
    """Every outcome a target or an address can have (SPEC §4)."""

    OPEN = "open"
    REFUSED = "refused"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    BLOCKED_LOCALLY = "blocked_locally"
    INCONCLUSIVE = "inconclusive"
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_NO_ADDRESS = "dns_no_address"
    DNS_SERVFAIL = "dns_servfail"
    DNS_REFUSED = "dns_refused"
    DNS_TIMEOUT = "dns_timeout"
    DNS_ERROR = "dns_error"
    SLOW = "slow"
    OUT_OF_SCOPE = "out_of_scope"
    #: a local listener whose accept queue is full: SYNs dropped, the service hangs
    NOT_ACCEPTING = "not_accepting"
    #: the handshake completed and the peer closed it within ``hold_ms``
    CLOSED_BY_PEER = "closed_by_peer"
    # Not a failure: the name resolved. Only ever seen in dns.result events.
    RESOLVED = "resolved"
    # TLS (issue 15): the TCP handshake opened, the TLS phase after it did not pass.
    TLS_EXPIRED = "tls_expired"
    TLS_NOT_YET_VALID = "tls_not_yet_valid"
    TLS_EXPIRING = "tls_expiring"
    TLS_HOSTNAME_MISMATCH = "tls_hostname_mismatch"
    TLS_UNTRUSTED = "tls_untrusted"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    TLS_NOT_TLS = "tls_not_tls"
    TLS_TIMEOUT = "tls_timeout"

    # str() and format() are str's own (StrEnum's): the member is its value. Asking
    # ``self.value`` goes through the enum's descriptor, about 0.3 µs each time, and a
    # refused target asked it three times.

    @property
    def is_dns(self) -> bool:
        return self.startswith("dns_")

    @property
    def is_tls(self) -> bool:
        """A TLS failure: the TCP handshake opened, so it never meets ``expect: closed``."""
        return self.startswith("tls_")


#: Categories worth another attempt: the answer may differ a moment later.
TRANSIENT = frozenset(
    {Category.TIMEOUT, Category.NOT_ACCEPTING, Category.DNS_TIMEOUT, Category.DNS_SERVFAIL}
)


Starttls = Literal["smtp", "imap", "pop3", "postgres"]


class TlsSettings(Struct, frozen=True, gc=False):
    """How one target's TLS phase is run (the inventory's ``tls:`` mapping).

    ``server_name`` is the SNI and the name verified (None: the target's host; an IP literal
    checks the IP SAN and sends no SNI, as RFC 6066 wants). ``ca_file`` replaces the system
    trust store. ``verify: false`` accepts any certificate: no trust, name or date check by
    OpenSSL, though ``min_days`` still checks the dates of the chain presented.
    """

    server_name: str | None = None
    ca_file: str | None = None
    verify: bool = True
    #: fail as ``tls_expiring`` when a presented certificate expires within this many days
    min_days: int | None = None
    starttls: Starttls | None = None
    client_cert: str | None = None
    client_key: str | None = None


Stage = Literal["starttls", "handshake", "post_handshake", "done"]
ChainSource = Literal["presented", "leaf", "none"]


class TlsError(Struct, frozen=True, gc=False):
    """What :mod:`ssl` said when the handshake failed, field by field.

    ``alert`` is the alert description the peer sent (``handshake_failure``,
    ``protocol_version``, ``certificate_required``...), None when the error was this side's.
    """

    message: str
    library: str | None = None
    reason: str | None = None
    verify_code: int | None = None
    verify_message: str | None = None
    alert: str | None = None


class TlsOutcome(Struct, frozen=True, gc=False):
    """The raw facts of one TLS phase; nothing here is interpreted yet.

    ``completed``: the handshake finished and the peer did not reject it right after (in TLS
    1.3 a server checks the client's certificate after the client thinks it is done).
    ``stage`` is where it ended. ``chain`` is DER, leaf first, as the peer presented it
    (``chain_source``). ``plaintext`` holds the first bytes of a peer that answered with
    something that is not a TLS record. ``received`` counts the bytes the peer sent in this
    phase. ``errno`` names a socket error (``ECONNRESET``), ``peer_closed`` an orderly close.
    ``starttls_reply`` is the server's answer when its STARTTLS preamble failed.
    ``client_cert_requested``: the server asked for a client certificate (TLS 1.3); only then
    does :func:`handshake` wait for the server's first message after the handshake.
    """

    server_name: str | None
    completed: bool
    stage: Stage
    tls_ms: float
    timed_out: bool = False
    version: str | None = None
    cipher: str | None = None
    chain: tuple[bytes, ...] = ()
    chain_source: ChainSource = "none"
    error: TlsError | None = None
    plaintext: bytes | None = None
    received: int = 0
    peer_closed: bool = False
    errno: str | None = None
    starttls: Starttls | None = None
    starttls_reply: str | None = None
    timeout_s: float = 0.0
    #: TLS 1.3: the server sent a CertificateRequest (seen from our own last flight)
    client_cert_requested: bool = False


class TlsInfo(Struct, frozen=True, gc=False):
    """The ``tls`` object of a probe.result: what the handshake and the leaf showed.

    ``earliest_not_after`` / ``earliest_subject`` are the first expiry among the certificates
    the peer presented (all of them where ``chain_source`` is ``presented``; the leaf alone
    where it is ``leaf``).
    """

    version: str | None
    cipher: str | None
    subject: str | None = None
    issuer: str | None = None
    sans: tuple[str, ...] = ()
    not_before: str | None = None
    not_after: str | None = None
    days_left: int | None = None
    fingerprint_sha256: str | None = None
    chain_length: int = 0
    chain_source: ChainSource = "none"
    earliest_not_after: str | None = None
    earliest_subject: str | None = None


class SourceLocation(Struct, frozen=True, gc=False):
    """Where in which inventory file a target was written (1-based)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class Target(Struct, frozen=True, gc=False):
    """One endpoint to check: a host (name or IP literal) and one port."""

    name: str
    host: str
    port: int
    expect: Expect = "open"
    timeout: float = 3.0
    retries: int = 1
    family: Family = "any"
    tags: tuple[str, ...] = ()
    source: SourceLocation | None = None
    #: a completed handshake slower than this fails the target as ``slow``
    max_latency_ms: float | None = None
    #: after the handshake, wait this long for the peer to close (``closed_by_peer``)
    hold_ms: float | None = None
    #: after the handshake, a TLS handshake and certificate checks (issue 15)
    tls: TlsSettings | None = None


class ResolverConfig(Struct, frozen=True):
    """How names are looked up; what is unset (empty, None) comes from resolv.conf.

    ``nameservers`` replace resolv.conf's; ``timeout`` (seconds the first nameserver gets per
    try) and ``tries`` (rounds over all nameservers) replace its ``options timeout:N
    attempts:N``, whose glibc defaults are 5 s and 2.
    """

    nameservers: tuple[str, ...] = ()
    timeout: float | None = None
    tries: int | None = None


class Inventory(Struct, frozen=True):
    """A validated inventory (one or more files merged)."""

    paths: tuple[str, ...]
    #: a :class:`scanner.targets.TargetList` (lazily expanded) or any sequence
    targets: Sequence[Target]
    resolver: ResolverConfig = field(default_factory=ResolverConfig)
    #: CIDR networks probes may reach (scope.allow); None: no guard
    scope: tuple[str, ...] | None = None


class IcmpDetail(Struct, frozen=True, gc=False):
    """An ICMP error the kernel queued for the socket (struct sock_extended_err).

    ``sender`` is the address that sent the ICMP (SO_EE_OFFENDER): the target itself,
    a router or firewall on the way, or this host.
    """

    type: int
    code: int
    sender: str | None
    family: AddressFamily


class ConnectOutcome(Struct, frozen=True, gc=False):
    """What one TCP handshake attempt did, before any interpretation.

    ``errno`` is 0 when the handshake completed; ``timed_out`` when our deadline
    passed first. ``icmp`` is what the error queue held after a failure.
    """

    errno: int
    timed_out: bool
    latency_ms: float
    icmp: IcmpDetail | None = None
    #: timed out towards this host's own listener whose accept queue was full
    queue_full: bool = False
    #: after the handshake, the peer closed within ``hold_ms``: "FIN" or "RST"
    peer_closed: str | None = None
    #: the TLS phase after the handshake (targets with ``tls``)
    tls: TlsOutcome | None = None


class DnsStep(Struct, frozen=True, gc=False):
    """One name asked while resolving (a search-list candidate, or the hosts file's entry).

    ``name``: as asked (absolute, ASCII: ``db.corp.test.``; the name as written for the hosts
    file). ``per_family``: "resolved" or a dns_* category each. ``sources``: per family, the
    hosts file or the nameserver that answered (or those that were asked, if none did).
    """

    name: str
    per_family: tuple[tuple[AddressFamily, Category], ...]
    sources: tuple[tuple[AddressFamily, str], ...] = ()


class DnsResult(Struct, frozen=True, gc=False):
    """The outcome of resolving one name for one family setting."""

    host: str
    family: Family
    category: Category
    addresses: tuple[str, ...]
    latency_ms: float
    nameserver: str | None
    #: per address family: "resolved" or a dns_* category value
    per_family: tuple[tuple[AddressFamily, Category], ...] = ()
    detail: str | None = None
    attempts: int = 1
    #: the name whose answer counts (after the search list and IDNA), e.g. ``db.corp.test.``
    query_name: str | None = None
    #: per address family: the hosts file or the nameserver that gave the answer
    sources: tuple[tuple[AddressFamily, str], ...] = ()
    #: every name asked, in order, with each family's outcome (why ``db`` became ``db.corp.test``)
    trail: tuple[DnsStep, ...] = ()


class ProbeResult(Struct, frozen=True, gc=False):
    """The classified outcome of probing one address of one target (after retries)."""

    target: Target
    address: str
    family: AddressFamily
    category: Category
    latency_ms: float | None
    attempts: int
    errno: str | None
    icmp: IcmpDetail | None
    hint: str | None
    #: what the TLS phase showed (targets with ``tls``): version, certificate, expiry
    tls: TlsInfo | None = None
    #: milliseconds of the TLS phase (STARTTLS included); None without one
    tls_ms: float | None = None
    #: milliseconds the target's name took to resolve; None for an IP literal
    dns_ms: float | None = None


class Hop(Struct, frozen=True, gc=False):
    """What one TTL-limited handshake (hop limit ``ttl``) brought back.

    ``address`` answered (ICMP sender, or the target itself), None when nothing did.
    ``reached``: the target answered (handshake, RST or ICMP from the target address).
    ``errno`` (symbolic) is None when the handshake completed.
    """

    ttl: int
    address: str | None
    rtt_ms: float | None
    icmp_type: int | None
    icmp_code: int | None
    reached: bool
    errno: str | None = None


class PathTrace(Struct, frozen=True, gc=False):
    """The hops towards one address and port, and what they say about where it fails.

    ``probed`` is the highest hop limit tried; hops after the last answer that also got
    none are folded into one silent hop. ``verdict`` is one sentence, e.g.
    ``dropped after hop 2 (198.18.2.2)``.
    """

    address: str
    port: int
    family: AddressFamily
    hops: tuple[Hop, ...]
    probed: int
    last_hop: str | None
    verdict: str


class TargetResult(Struct, frozen=True, gc=False):
    """The verdict on one target: all its addresses rolled up against its expectation."""

    target: Target
    ok: bool
    category: Category
    addresses: tuple[str, ...]
    hint: str | None
    probes: tuple[ProbeResult, ...] = ()
    dns: DnsResult | None = None
    #: path traces (``--trace-failures``), the decisive address first
    paths: tuple[PathTrace, ...] = ()
    #: the target's position in the scanned inventory: reports list targets in this order
    index: int = 0
    #: no verdict of its own: the scan stopped (or its worker ended) before it was checked
    unfinished: bool = False

    @property
    def last_hop(self) -> str | None:
        return self.paths[0].last_hop if self.paths else None

    @property
    def path_verdict(self) -> str | None:
        return self.paths[0].verdict if self.paths else None


class ScanStart(Struct, frozen=True):
    """What a scan is about to do (``scan.started``)."""

    targets: int
    inventories: tuple[str, ...]
    concurrency: int


class ScanSummary(Struct, frozen=True):
    """The verdict of a whole scan."""

    total: int
    ok: int
    failed: int
    inconclusive: int
    counts: tuple[tuple[str, int], ...]
    duration_s: float
    interrupted: bool
    interrupted_by: str | None = None  # "SIGINT", "SIGTERM" or "deadline"

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], duration_s: float, interrupted_by: str | None
    ) -> ScanSummary:
        """The summary from counts per category plus the ok/failed/inconclusive verdicts."""
        full = {"ok": 0, "failed": 0, "inconclusive": 0, **counts}
        ok, failed, inconclusive = full["ok"], full["failed"], full["inconclusive"]
        return cls(
            total=ok + failed + inconclusive,
            ok=ok,
            failed=failed,
            inconclusive=inconclusive,
            counts=tuple(sorted(full.items())),
            duration_s=duration_s,
            interrupted=interrupted_by is not None,
            interrupted_by=interrupted_by,
        )
