"""The shapes of everything scanner writes, as typed values: events and the report document.

Each shape is written down once, here, as a msgspec Struct: the JSON-lines stream encodes
the event payloads (:class:`DnsEntry`, :class:`ProbeEntry`, :class:`TargetOutcome` ...),
the ``--report`` document is a :class:`ReportDocument` whose targets are
:class:`TargetEntry` values (a target's event fields plus its DNS and probe detail), and
``--baseline`` / ``scanner merge`` decode documents back into the same types, with every
field's type checked on the way in. The published JSON Schemas in ``scanner/data`` say
the same for consumers; a test holds the two against each other.

Field order is the order on the wire: msgspec encodes declared order, base class first
(``TargetEntry`` = ``TargetOutcome``'s fields, then its own).

A report target is built once, from its result, by :class:`ReportBuilder` (an observer);
the JSON report, JUnit and Markdown writers all read the same entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

if TYPE_CHECKING:
    from ..wait import WaitOutcome, WaitStatus

from .. import __version__
from ..models import (
    AddressFamily,
    Category,
    DnsResult,
    Expect,
    Family,
    Hop,
    PathTrace,
    ProbeResult,
    ScanStart,
    ScanSummary,
    Target,
    TargetResult,
    TlsInfo,
)
from ..observers import BaseObserver
from ..verdict import Counts, meets_expectation, scan_passed

#: schema_version of events and report documents (SPEC §3); a change to an existing field
#: or category is a new version, with a migration note
SCHEMA_VERSION = 1

Change = Literal["new_failure", "fixed", "category_changed"]

# The published schemas' constraints, so a decoded report is checked as the schema would
# check it (a test holds the Structs and the schemas against each other).
Port = Annotated[int, Meta(ge=1, le=65535)]
Milliseconds = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0)]
IcmpNumber = Annotated[int, Meta(ge=0, le=255)]
Errno = Annotated[str, Meta(pattern=r"^E[A-Z0-9]+$")]
Moment = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")]
ShardText = Annotated[str, Meta(pattern=r"^[1-9][0-9]*/[1-9][0-9]*$")]
#: what a target's ``change`` may be (SPEC §1, ``--baseline``)
CHANGES: tuple[str, ...] = ("new_failure", "fixed", "category_changed")


class StartEntry(Struct, frozen=True, kw_only=True):
    """``scan.started``."""

    schema_version: int = SCHEMA_VERSION
    targets: int
    inventories: tuple[str, ...]
    concurrency: int


class DnsTrailStep(Struct, frozen=True, kw_only=True, gc=False):
    """One name asked while resolving, with each family's outcome and source."""

    name: str
    families: dict[AddressFamily, Category] = {}
    sources: dict[AddressFamily, str] = {}


class DnsEntry(Struct, frozen=True, kw_only=True, gc=False):
    """``dns.result``, and a report target's ``dns``."""

    host: str
    addresses: tuple[str, ...]
    category: Category
    latency_ms: Milliseconds | None
    nameserver: str | None
    family: Family = "any"
    families: dict[AddressFamily, Category] = {}
    attempts: Annotated[int, Meta(ge=1)] = 1
    detail: str | None = None
    #: the name whose answer counts (after the search list and IDNA), e.g. ``db.corp.test.``
    query_name: str | None = None
    #: per family: the hosts file or the nameserver that gave the answer
    sources: dict[AddressFamily, str] = {}
    #: every name asked, in order: why ``db`` became ``db.corp.test``
    trail: tuple[DnsTrailStep, ...] = ()


class ProbeEntry(Struct, frozen=True, kw_only=True, gc=False):
    """``probe.result``: one address of one target, after retries."""

    target: str
    host: str
    port: Port
    address: str
    family: AddressFamily
    category: Category
    latency_ms: Milliseconds | None
    attempts: Count
    errno: Errno | None
    icmp_type: IcmpNumber | None
    icmp_code: IcmpNumber | None
    icmp_from: str | None
    hint: str | None
    #: where the time went: the name's lookup, the TCP handshake, the TLS phase
    dns_ms: Milliseconds | None = None
    connect_ms: Milliseconds | None = None
    tls_ms: Milliseconds | None = None
    #: targets with ``tls``: version, cipher, certificate, expiry; null otherwise
    tls: TlsInfo | None = None


class TargetOutcome(Struct, frozen=True, kw_only=True, gc=False):
    """``target.result``: the verdict on one target."""

    target: str
    host: str
    port: Port
    expect: Expect
    ok: bool
    category: Category
    addresses: tuple[str, ...]
    hint: str | None
    tags: tuple[str, ...]
    #: what ``--baseline`` found; null without one
    change: Change | None = None
    #: traced targets: the last address that answered
    last_hop: str | None = None
    #: traced targets: where the path ends, e.g. "dropped after hop 2 (198.18.2.2)"
    path_verdict: str | None = None


class TargetEntry(TargetOutcome, frozen=True, kw_only=True, gc=False):
    """A report's target: the ``target.result`` fields plus where it came from and the detail."""

    inventory: str | None = None
    source: str | None = None
    dns: DnsEntry | None = None
    probes: tuple[ProbeEntry, ...] = ()
    #: with ``--baseline``, for a target that changed: its category then (old -> new)
    baseline_category: Category | None = None


class RemovedEntry(Struct, frozen=True, kw_only=True, gc=False):
    """A target of the ``--baseline`` report that the inventory no longer has."""

    target: str
    ok: bool
    category: Category


class HopEntry(Struct, frozen=True, kw_only=True, gc=False):
    """``path.hop``: one hop limit of a path trace."""

    target: str
    address: str
    ttl: int
    hop_address: str | None
    rtt_ms: float | None
    icmp_type: int | None
    icmp_code: int | None
    reached: bool


class RouteEntry(Struct, frozen=True, kw_only=True, gc=False):
    """How this host routes to an address (``scanner explain``): no packet was sent for it."""

    kind: str  #: the kernel's route type: unicast, local, unreachable, prohibit, blackhole ...
    source: str | None  #: the source address a socket would use
    device: str | None
    gateway: str | None
    own: bool  #: the address is this host's own
    error: str | None  #: errno of a failed lookup, e.g. ENETUNREACH
    sentence: str | None  #: what it says, e.g. "198.18.3.31 is routed via 198.18.1.1 dev c0"


class AddressExplanation(Struct, frozen=True, kw_only=True, gc=False):
    """One address of an explained target: its handshake, route, path and local evidence."""

    probe: ProbeEntry
    route: RouteEntry | None
    path_verdict: str | None  #: the path trace's verdict, for failures
    last_hop: str | None
    #: this host's own listeners and counters, when the address is this host's
    local: tuple[str, ...] = ()


class ExplainEntry(Struct, frozen=True, kw_only=True, gc=False):
    """``explain.result``: everything ``scanner explain`` found about one target."""

    target: str
    host: str
    port: Port
    expect: Expect
    ok: bool
    category: Category
    hint: str | None
    dns: DnsEntry | None
    addresses: tuple[AddressExplanation, ...]
    #: for a name that does not resolve: names nearby that do
    suggestions: tuple[str, ...] = ()
    #: the most likely cause, in one sentence
    cause: str
    #: the next thing to check
    next_step: str


class WaitEntry(TargetOutcome, frozen=True, kw_only=True, gc=False):
    """``target.waiting`` / ``target.ready`` (``scanner wait``): one target after one round.

    The ``target.result`` fields of that round, then where the wait stands for it.
    """

    #: this target's rounds so far, this one included
    round: Annotated[int, Meta(ge=1)]
    #: good rounds in a row (0 after a bad one); ready once it reaches ``stable``
    good_rounds: Count
    stable: Annotated[int, Meta(ge=1)]
    #: when its current state (ok and category) began, and how long it has lasted
    since: Moment
    for_s: Seconds
    #: since the wait began
    waited_s: Seconds
    #: when its next round comes; null once ready
    next_in_s: Seconds | None


class WaitingEntry(Struct, frozen=True, kw_only=True, gc=False):
    """One target not ready when ``scanner wait`` ended: its last state and for how long."""

    target: str
    ok: bool
    category: Category
    hint: str | None
    since: Moment
    for_s: Seconds
    rounds: Count
    good_rounds: Count
    stable: Annotated[int, Meta(ge=1)]


class SummaryEntry(Struct, frozen=True, kw_only=True):
    """``scan.finished``, and a report's ``summary``."""

    counts: dict[str, Count]
    duration_s: Annotated[float, Meta(ge=0)]
    ok: bool
    interrupted: bool
    interrupted_by: str | None = None
    #: ``scanner wait`` only (null otherwise): the targets not ready at its end
    waiting: tuple[WaitingEntry, ...] | None = None


class ReportDocument(Struct, frozen=True, kw_only=True):
    """``--report PATH``: one scan (or the merge of several) as one document."""

    schema_version: int = SCHEMA_VERSION
    scanner_version: str = __version__
    started: Moment
    finished: Moment
    inventories: tuple[str, ...]
    shard: ShardText | None = None
    baseline: str | None = None
    targets: Sequence[TargetEntry]
    summary: SummaryEntry
    #: with ``--baseline``: its targets that the inventory no longer has
    removed: Sequence[RemovedEntry] = ()


# --- from results -----------------------------------------------------------------------


def start_entry(start: ScanStart) -> StartEntry:
    return StartEntry(
        targets=start.targets, inventories=start.inventories, concurrency=start.concurrency
    )


def dns_entry(result: DnsResult) -> DnsEntry:
    return DnsEntry(
        host=result.host,
        addresses=result.addresses,
        category=result.category,
        latency_ms=round(result.latency_ms, 3),
        nameserver=result.nameserver,
        family=result.family,
        families=dict(result.per_family),
        attempts=result.attempts,
        detail=result.detail,
        query_name=result.query_name,
        sources=dict(result.sources),
        trail=tuple(
            DnsTrailStep(name=step.name, families=dict(step.per_family), sources=dict(step.sources))
            for step in result.trail
        ),
    )


def probe_entry(result: ProbeResult) -> ProbeEntry:
    icmp = result.icmp
    target = result.target
    latency_ms = _ms(result.latency_ms)  # rounded once: it is connect_ms too
    return ProbeEntry(
        target=target.name,
        host=target.host,
        port=target.port,
        address=result.address,
        family=result.family,
        category=result.category,
        latency_ms=latency_ms,
        attempts=result.attempts,
        errno=result.errno,
        icmp_type=icmp.type if icmp else None,
        icmp_code=icmp.code if icmp else None,
        icmp_from=icmp.sender if icmp else None,
        hint=result.hint,
        dns_ms=_ms(result.dns_ms),
        connect_ms=latency_ms if result.attempts else None,
        tls_ms=_ms(result.tls_ms),
        tls=result.tls,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_Outcome = TypeVar("_Outcome", bound=TargetOutcome)


def _outcome(
    kind: type[_Outcome], result: TargetResult, change: Change | None, **detail: Any
) -> _Outcome:
    target = result.target
    return kind(
        target=target.name,
        host=target.host,
        port=target.port,
        expect=target.expect,
        ok=result.ok,
        category=result.category,
        addresses=result.addresses,
        hint=result.hint,
        tags=target.tags,
        change=change,
        last_hop=result.last_hop,
        path_verdict=result.path_verdict,
        **detail,
    )


def target_outcome(result: TargetResult, change: Change | None = None) -> TargetOutcome:
    return _outcome(TargetOutcome, result, change)


def target_entry(
    result: TargetResult, change: Change | None = None, baseline_category: Category | None = None
) -> TargetEntry:
    """The report's entry for one result: its event fields, where it came from, the detail."""
    source = result.target.source
    return _outcome(
        TargetEntry,
        result,
        change,
        inventory=source.path if source else None,
        source=str(source) if source else None,
        dns=dns_entry(result.dns) if result.dns is not None else None,
        probes=tuple(probe_entry(p) for p in result.probes),
        baseline_category=baseline_category,
    )


def hop_entry(target: Target, path: PathTrace, hop: Hop) -> HopEntry:
    return HopEntry(
        target=target.name,
        address=path.address,
        ttl=hop.ttl,
        hop_address=hop.address,
        rtt_ms=hop.rtt_ms,
        icmp_type=hop.icmp_type,
        icmp_code=hop.icmp_code,
        reached=hop.reached,
    )


def summary_entry(summary: ScanSummary) -> SummaryEntry:
    return SummaryEntry(
        counts=dict(summary.counts),
        duration_s=round(summary.duration_s, 3),
        ok=scan_passed(summary),
        interrupted=summary.interrupted,
        interrupted_by=summary.interrupted_by,
    )


def summary_of(entry: SummaryEntry) -> ScanSummary:
    """A report's summary back as the engine's :class:`ScanSummary`."""
    return ScanSummary.from_counts(entry.counts, entry.duration_s, entry.interrupted_by)


def moment(epoch: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with milliseconds and a ``Z``."""
    stamp = datetime.fromtimestamp(round(epoch, 3), UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def wait_entry(status: WaitStatus, began_at: float) -> WaitEntry:
    """``target.waiting`` / ``target.ready`` of one round (``began_at``: the wait's start)."""
    return _outcome(
        WaitEntry,
        status.result,
        None,
        round=status.round,
        good_rounds=status.good_rounds,
        stable=status.stable,
        since=moment(began_at + status.since_s),
        for_s=round(status.for_s, 3),
        waited_s=round(status.waited_s, 3),
        next_in_s=None if status.next_in_s is None else round(status.next_in_s, 3),
    )


def waiting_entry(status: WaitStatus, began_at: float) -> WaitingEntry:
    result = status.result
    return WaitingEntry(
        target=result.target.name,
        ok=result.ok,
        category=result.category,
        hint=result.hint,
        since=moment(began_at + status.since_s),
        for_s=round(status.for_s, 3),
        rounds=status.round,
        good_rounds=status.good_rounds,
        stable=status.stable,
    )


def wait_summary_entry(outcome: WaitOutcome) -> SummaryEntry:
    """``scan.finished`` of a wait: the summary, and every target not ready."""
    waiting = tuple(waiting_entry(s, outcome.began_at) for s in outcome.waiting)
    entry = summary_entry(outcome.summary)
    return msgspec.structs.replace(entry, ok=outcome.ready, waiting=waiting)


def wait_report(outcome: WaitOutcome, *, inventories: Sequence[str]) -> ReportDocument:
    """The ``--report`` document of a wait: every target's last result, and the summary
    with the targets not ready."""
    document = build_report(
        outcome.results,
        outcome.summary,
        inventories=inventories,
        started=moment(outcome.began_at),
    )
    return msgspec.structs.replace(document, summary=wait_summary_entry(outcome))


def utc_now() -> str:
    """ISO-8601 UTC with a ``Z``, like the event timestamps."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


ChangeOf = Callable[[str, bool, Category], "Change | None"]
CategoryOf = Callable[[str], "Category | None"]


class ReportBuilder(BaseObserver):
    """Builds the report's entry of each target once, as its result comes in.

    Only the entries are kept, not the results: one representation per target (about
    0.75 KB each). ``change_of`` (``--baseline``) says what changed for a target, and
    ``category_of`` its category in the baseline (kept for the targets that changed).
    """

    def __init__(
        self, change_of: ChangeOf | None = None, category_of: CategoryOf | None = None
    ) -> None:
        self._entries: list[tuple[int, TargetEntry]] = []
        self._change_of = change_of
        self._category_of = category_of
        self.reported: set[int] = set()  # the indices of the targets seen
        self.started = utc_now()
        self.summary: ScanSummary | None = None

    def on_target(self, result: TargetResult) -> None:
        change = (
            self._change_of(result.target.name, result.ok, result.category)
            if self._change_of is not None
            else None
        )
        then = None
        if change is not None and self._category_of is not None:
            then = self._category_of(result.target.name)
        self._entries.append((result.index, target_entry(result, change, then)))
        self.reported.add(result.index)

    def on_finish(self, summary: ScanSummary) -> None:
        self.summary = summary

    def new_failures(self) -> int:
        return sum(1 for _, entry in self._entries if entry.change == "new_failure")

    def names(self) -> set[str]:
        """The names of the targets reported so far."""
        return {entry.target for _, entry in self._entries}

    def document(
        self,
        summary: ScanSummary,
        *,
        inventories: Sequence[str],
        shard: str | None = None,
        baseline: str | None = None,
        finished: str | None = None,
        removed: Sequence[RemovedEntry] = (),
    ) -> ReportDocument:
        self._entries.sort(key=lambda item: item[0])
        return ReportDocument(
            started=self.started,
            finished=finished or utc_now(),
            inventories=tuple(inventories),
            shard=shard,
            baseline=baseline,
            targets=[entry for _, entry in self._entries],
            summary=summary_entry(summary),
            removed=tuple(removed),
        )


def build_report(
    results: Iterable[TargetResult],
    summary: ScanSummary,
    *,
    inventories: Sequence[str],
    started: str | None = None,
    finished: str | None = None,
    shard: str | None = None,
    baseline: str | None = None,
    changes: Mapping[str, Change | None] | None = None,
) -> ReportDocument:
    """The document of finished results (in their order): :class:`ReportBuilder` at once."""
    known = changes or {}
    builder = ReportBuilder(lambda name, _ok, _category: known.get(name))
    if started is not None:
        builder.started = started
    for result in results:
        builder.on_target(result)
    return builder.document(
        summary, inventories=inventories, shard=shard, baseline=baseline, finished=finished
    )


# --- reading ------------------------------------------------------------------------------


class ReportError(Exception):
    """A report that cannot be read or is not a scanner report; the message says why."""


_decoder = msgspec.json.Decoder(ReportDocument)


def decode_report(data: bytes, path: str | Path) -> ReportDocument:
    """A report document from JSON; :class:`ReportError` names the file and the field.

    Every field's type is checked (msgspec), and what types cannot say: the schema
    version, the shard's form, and that each target's ``ok`` agrees with its category
    and expectation (a hand-edited ``ok: true`` on a refused target must not pass a gate).
    """
    try:
        document = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        # not the shape of a report: say whether it is JSON at all, and which version
        try:
            raw = msgspec.json.decode(data)
        except msgspec.DecodeError as malformed:
            raise ReportError(f"{path}: not JSON: {malformed}") from exc
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise _wrong_version(path, version) from exc
        raise ReportError(f"{path}: {_field_message(exc)}") from exc
    except msgspec.DecodeError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from exc
    if document.schema_version != SCHEMA_VERSION:
        raise _wrong_version(path, document.schema_version)
    for number, entry in enumerate(document.targets):
        if entry.ok != meets_expectation(entry.expect, entry.category):
            raise ReportError(
                f"{path}: targets[{number}].ok is {str(entry.ok).lower()}, but category "
                f"{entry.category} {'does not meet' if entry.ok else 'meets'} expect "
                f"{entry.expect}: the report was edited or is corrupt"
            )
    return document


def _wrong_version(path: str | Path, version: object) -> ReportError:
    return ReportError(
        f"{path}: not a scanner report with schema_version {SCHEMA_VERSION} (got {version!r})"
    )


def _field_message(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.targets[0].port`" as ``field: problem``."""
    text = str(exc)
    problem, sep, where = text.rpartition(" - at `")
    if not sep:
        return text
    field = where.rstrip("`").removeprefix("$.").removeprefix("$") or "the document"
    return f"{field}: {problem[0].lower()}{problem[1:]}" if problem else field


def load_report(path: str | Path) -> ReportDocument:
    """Read a ``--report`` document; :class:`ReportError` names the file and the problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return decode_report(data, path)


# --- writing --------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def encode_entry(entry: Struct) -> bytes:
    return _encoder.encode(entry)


def iter_report_bytes(document: ReportDocument) -> Iterable[bytes]:
    """The document as JSON, one target at a time: never the whole of it in memory.

    The same bytes as encoding the document in one go, plus a final newline.
    """
    encode = _encoder.encode
    yield b"{"
    first = True
    for name in document.__struct_fields__:
        value = getattr(document, name)
        yield (b"" if first else b",") + encode(name) + b":"
        first = False
        if name != "targets":
            yield encode(value)
            continue
        yield b"["
        for i, entry in enumerate(value):
            yield (b"," if i else b"") + encode(entry)
        yield b"]"
    yield b"}\n"


def counts_of(entries: Iterable[TargetOutcome]) -> Mapping[str, int]:
    """Per category, and ok/failed/inconclusive, exactly as ``scan.finished`` counts them."""
    counts = Counts()
    counts.add_all((e.ok, e.category) for e in entries)
    return dict(sorted(counts.as_mapping().items()))
