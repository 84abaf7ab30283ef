"""One name to its addresses, the way glibc's getaddrinfo with ``hosts: files dns`` would.

The steps, for a name as written in the inventory (shown as written in every event):

1. IDNA: a non-ASCII name becomes its UTS 46 ASCII form (:mod:`._idna`).
2. The hosts file (read once per scan): if it lists the name, it alone answers — for both
   families when the target's family is ``any`` (an IPv4-only line means no IPv6 address,
   DNS is not asked), for that family when the target asks for one (glibc's
   gethostbyname3_r: a line of the other family does not count, DNS is asked).
3. DNS: the search list (:mod:`._search`), each candidate asked for A and AAAA at once,
   each query on glibc's schedule of nameservers and timeouts (:mod:`._transport`), each
   answer checked (:mod:`._wire`). The first candidate that gets records answers.

Each family keeps its own outcome (``per_family``) and source; the trail keeps every
candidate and what it got. A DNS sinkhole's 0.0.0.0 / :: is no address ("sinkholed").
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Mapping
from typing import NamedTuple

from ..classify import combine_dns
from ..models import TRANSIENT, AddressFamily, Category, DnsResult, DnsStep, Family, ResolverConfig
from ._idna import IdnaError, to_ascii
from ._search import SearchPlan, Status
from ._system import RESOLV_CONF, HostsFile, Nameserver, hosts_file_path, load_resolv_conf
from ._transport import ANSWER, MALFORMED, RCODE, TIMEOUT, UNREACHABLE, Outcome, Transport
from ._wire import NOERROR, NXDOMAIN, QTYPE_A, QTYPE_AAAA, SERVFAIL, encode_name, query_body

C = Category
_FAMILIES: Mapping[Family, tuple[AddressFamily, ...]] = {
    "any": ("ipv6", "ipv4"),  # the order RFC 6724 (and getaddrinfo) usually gives
    "ipv4": ("ipv4",),
    "ipv6": ("ipv6",),
}
_QTYPE: Mapping[AddressFamily, int] = {"ipv4": QTYPE_A, "ipv6": QTYPE_AAAA}
_RR: Mapping[AddressFamily, str] = {"ipv4": "A", "ipv6": "AAAA"}
_UNSPECIFIED = ("0.0.0.0", "::")
_BOTH_RESOLVED: tuple[tuple[AddressFamily, Category], ...] = (
    ("ipv6", Category.RESOLVED),
    ("ipv4", Category.RESOLVED),
)
_STOPPED_SHORT = frozenset({Status.TIMEOUT, Status.SERVFAIL, Status.REFUSED, Status.ERROR})
#: names looked up at once (each asks A and AAAA): enough to keep a resolver busy
RESOLVER_CONCURRENCY = 256


class _Family(NamedTuple):
    """One family's outcome for one candidate."""

    category: Category
    addresses: tuple[str, ...]
    source: str
    detail: str | None
    records: bool  # NOERROR with a non-empty answer section: glibc's "this name answered"
    outcome: str  # the transport's kind (ANSWER, RCODE, ...)
    rcode: int | None


class _Asked:
    """The A and AAAA queries of one candidate: one future for both (one wake-up)."""

    __slots__ = ("future", "outcomes", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[None] = loop.create_future()
        self.outcomes: list[Outcome | None] = [None, None]  # ipv4, ipv6
        self.remaining = 0

    def done(self, tag: int, outcome: Outcome) -> None:
        self.outcomes[tag] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(None)

    def cancelled(self) -> bool:
        return self.future.done()


class _Step(NamedTuple):
    name: str
    status: Status
    families: dict[AddressFamily, _Family]


class _Limiter:
    """At most ``size`` holders at once, first come first served.

    Not asyncio.Semaphore: on Python 3.11 its release walks every waiter (``_wake_up_next``),
    which with hundreds waiting cost more than the lookups (2.5 million ``done()`` calls for
    10,000 names). Here a release wakes exactly one.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot was handed over just as we were cancelled
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class Resolver:
    """Resolves each distinct (name, family) once, concurrently, like glibc would.

    ``resolv_conf`` and ``hosts`` are for tests; by default /etc/resolv.conf and /etc/hosts
    (``CARES_HOSTS`` names another hosts file, as with c-ares before).
    """

    def __init__(
        self,
        config: ResolverConfig,
        *,
        concurrency: int = RESOLVER_CONCURRENCY,
        resolv_conf: str | None = None,
        hosts: str | None = None,
    ) -> None:
        self.system = load_resolv_conf(resolv_conf or RESOLV_CONF)
        servers = tuple(Nameserver.parse(s) for s in config.nameservers) or self.system.nameservers
        self.timeout = float(config.timeout if config.timeout is not None else self.system.timeout)
        self.tries = config.tries if config.tries is not None else self.system.attempts
        self.hosts = HostsFile.load(hosts or hosts_file_path())
        self._transport = Transport(
            servers,
            timeout=self.timeout,
            attempts=self.tries,
            rotate=self.system.rotate,
            use_vc=self.system.use_vc,
        )
        self._limit = _Limiter(concurrency)
        self.nameservers: tuple[str, ...] = tuple(s.label for s in servers)
        self._asked = ",".join(self.nameservers)
        # per family: the query's header (without the ID), question tail, EDNS trailer
        self._heads: dict[AddressFamily, tuple[bytes, bytes, bytes]] = {}
        for af, qtype in _QTYPE.items():
            whole = query_body(b"\x00", qtype, edns=self.system.edns0)
            self._heads[af] = (whole[:10], whole[11:15], whole[15:])

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def resolve(self, host: str, family: Family, retries: int = 0) -> DnsResult:
        """Resolve ``host`` for ``family``, retrying transient failures ``retries`` times.

        The engine calls this once per distinct (name, family), however many targets
        share the name.
        """
        attempt = 0
        while True:
            attempt += 1
            result = await self._resolve_once(host, family, attempt)
            if result.category not in TRANSIENT or attempt > retries:
                return result
            await asyncio.sleep(backoff_delay(attempt))

    async def _resolve_once(self, host: str, family: Family, attempt: int) -> DnsResult:
        started = time.perf_counter()
        families = _FAMILIES[family]
        try:
            name = to_ascii(host)
        except IdnaError as exc:
            return self._failed(
                host=host,
                family=family,
                families=families,
                detail=str(exc),
                started=started,
                attempt=attempt,
            )
        lines = self.hosts.lookup(name)
        notes: list[str] = []
        if lines:
            if family == "any" or any(af == family for af, _ in lines):
                return self._from_hosts(
                    host=host,
                    name=name,
                    family=family,
                    families=families,
                    lines=lines,
                    started=started,
                    attempt=attempt,
                )
            notes.append(
                f"{self.hosts.path} lists {host} for {lines[0][0]} only: DNS asked for "
                f"{family} (as glibc does)"
            )
        async with self._limit:
            plan = SearchPlan(
                name, self.system.ndots, self.system.search, no_tld_query=self.system.no_tld_query
            )
            steps: list[_Step] = []
            index: int | None = 0 if plan.candidates else None
            while index is not None:
                step = await self._ask(plan.candidates[index], families)
                steps.append(step)
                index = plan.after(index, step.status)
        return self._result(
            host=host,
            family=family,
            families=families,
            steps=steps,
            decisive=plan.outcome(),
            notes=notes,
            started=started,
            attempt=attempt,
        )

    # -- DNS ----------------------------------------------------------------------------------
    async def _ask(self, candidate: str, families: tuple[AddressFamily, ...]) -> _Step:
        """Ask A and/or AAAA for one candidate at once; glibc's status for the pair."""
        try:
            qname = encode_name(candidate)
        except (ValueError, UnicodeError) as exc:
            bad = _Family(C.DNS_ERROR, (), self._asked, str(exc), False, MALFORMED, None)
            return _Step(candidate, Status.ERROR, dict.fromkeys(families, bad))
        question_name = qname.lower()
        schedule = self._transport.schedule()  # A and AAAA go the same way, as in glibc
        query = self._transport.query
        heads = self._heads
        asked = _Asked(asyncio.get_running_loop())
        out: dict[AddressFamily, _Family] = {}
        wanted = families
        if self.system.no_aaaa and "ipv6" in families:
            out["ipv6"] = _Family(
                C.DNS_NO_ADDRESS,
                (),
                self.system.path,
                "AAAA not asked (resolv.conf options no-aaaa)",
                False,
                ANSWER,
                NOERROR,
            )
            wanted = tuple(af for af in families if af != "ipv6")
        # all counted before the first is sent: a query may end at once (a closed port on
        # loopback answers within send()), and the future must wait for the other one too
        asked.remaining = len(wanted)
        for af in wanted:
            head, tail, trailer = heads[af]
            query(
                head + qname + tail + trailer,
                question_name + tail,
                _QTYPE[af],
                schedule,
                asked,
                0 if af == "ipv4" else 1,
            )
        if asked.remaining:
            await asked.future
        for af in families:
            outcome = asked.outcomes[0 if af == "ipv4" else 1]
            if outcome is not None:
                out[af] = self._family(af, outcome)
        return _Step(candidate, _status(families, out), {af: out[af] for af in families})

    def _family(self, af: AddressFamily, outcome: Outcome) -> _Family:
        kind = outcome.kind
        source = outcome.server or self._asked
        detail = outcome.detail
        if kind == ANSWER:
            reply = outcome.reply
            assert reply is not None
            if (
                reply.rcode == NOERROR
                and reply.addresses
                and not detail
                and not reply.sinkholed
                and not reply.rejected
            ):  # the common case, quickly
                return _Family(
                    C.RESOLVED, tuple(reply.addresses), source, None, True, kind, NOERROR
                )
            notes = []
            if reply.sinkholed:
                notes.append(
                    f"sinkholed: {outcome.server} answered {_RR[af]} with "
                    f"{_UNSPECIFIED[af == 'ipv6']} (never probed)"
                )
            notes += [f"ignored {what} from {outcome.server}" for what in reply.rejected]
            if detail:
                notes.insert(0, f"after {detail}")
            text = "; ".join(notes) or None
            records = reply.rcode == NOERROR and reply.ancount > 0
            if reply.rcode == NXDOMAIN:
                category = C.DNS_NXDOMAIN
            elif reply.rcode != NOERROR:
                category = C.DNS_ERROR
                text = f"{outcome.server} answered rcode {reply.rcode}"
            else:
                category = C.RESOLVED if reply.addresses else C.DNS_NO_ADDRESS
            return _Family(
                category, tuple(reply.addresses), source, text, records, kind, reply.rcode
            )
        if kind == RCODE:
            category = {SERVFAIL: C.DNS_SERVFAIL, 5: C.DNS_REFUSED}.get(
                outcome.rcode or 0, C.DNS_ERROR
            )
        elif kind == TIMEOUT:
            category = C.DNS_TIMEOUT
        else:  # UNREACHABLE (closed port, no route), MALFORMED
            category = C.DNS_ERROR
        return _Family(category, (), source, detail, False, kind, outcome.rcode)

    def _result(
        self,
        *,
        host: str,
        family: Family,
        families: tuple[AddressFamily, ...],
        steps: list[_Step],
        decisive: int,
        notes: list[str],
        started: float,
        attempt: int,
    ) -> DnsResult:
        step = steps[decisive]
        got = step.families
        if len(steps) == 1 and not notes and len(families) == 2:  # most names: A and AAAA
            six, four = got["ipv6"], got["ipv4"]
            if (
                six.category is C.RESOLVED
                and four.category is C.RESOLVED
                and six.detail is None
                and four.detail is None
                and six.source == four.source
            ):
                pair: tuple[tuple[AddressFamily, str], ...] = (
                    ("ipv6", six.source),
                    ("ipv4", four.source),
                )
                return DnsResult(
                    host=host,
                    family=family,
                    category=C.RESOLVED,
                    addresses=six.addresses + four.addresses,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                    nameserver=six.source,
                    per_family=_BOTH_RESOLVED,
                    detail=None,
                    attempts=attempt,
                    query_name=step.name,
                    sources=pair,
                    trail=(DnsStep(step.name, _BOTH_RESOLVED, pair),),
                )
        per_family = tuple([(af, got[af].category) for af in families])
        sources = tuple([(af, got[af].source) for af in families])
        if len(families) == 1:
            addresses = got[families[0]].addresses
        else:
            addresses = tuple(dict.fromkeys(a for af in families for a in got[af].addresses))
        details = [f"{af}: {d}" for af in families if (d := got[af].detail)]
        if decisive != len(steps) - 1 and step.status in _STOPPED_SHORT:
            details.append(
                f"{step.name} could not be answered, so the search list stopped short of the "
                f"name; glibc reports the answer for {steps[-1].name} instead"
            )
        if len(steps) == 1:  # most names: the trail is the one step that answered
            trail: tuple[DnsStep, ...] = (DnsStep(step.name, per_family, sources),)
        else:
            trail = tuple(
                [
                    DnsStep(
                        s.name,
                        tuple([(af, s.families[af].category) for af in families]),
                        tuple([(af, s.families[af].source) for af in families]),
                    )
                    for s in steps
                ]
            )
        first = sources[0][1]
        nameserver = (
            first
            if all(src == first for _, src in sources)
            else ",".join(dict.fromkeys(src for _, src in sources))
        )
        return DnsResult(
            host=host,
            family=family,
            category=combine_dns(per_family),
            addresses=addresses,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            nameserver=nameserver or self._asked or None,
            per_family=per_family,
            detail="; ".join(notes + details) or None,
            attempts=attempt,
            query_name=step.name,
            sources=sources,
            trail=trail,
        )

    # -- the hosts file and failures before DNS ----------------------------------------------
    def _from_hosts(
        self,
        *,
        host: str,
        name: str,
        family: Family,
        families: tuple[AddressFamily, ...],
        lines: tuple[tuple[AddressFamily, str], ...],
        started: float,
        attempt: int,
    ) -> DnsResult:
        path = self.hosts.path
        addresses: list[str] = []
        per_family: list[tuple[AddressFamily, Category]] = []
        sinkholed: list[str] = []
        for af in families:
            found = [a for f, a in lines if f == af]
            usable = [a for a in found if a not in _UNSPECIFIED]
            if len(usable) < len(found):
                sinkholed.append(f"sinkholed: {path} maps {host} to {_UNSPECIFIED[af == 'ipv6']}")
            addresses += [a for a in usable if a not in addresses]
            per_family.append((af, C.RESOLVED if usable else C.DNS_NO_ADDRESS))
        missing = [af for af, c in per_family if c is C.DNS_NO_ADDRESS and not sinkholed]
        notes = list(sinkholed)
        if missing and family == "any":
            notes.append(
                f"{path} lists {host} without {' or '.join(missing)}: the file answers alone, "
                "DNS is not asked (as glibc does)"
            )
        sources = tuple((af, path) for af in families)
        return DnsResult(
            host=host,
            family=family,
            category=combine_dns(per_family),
            addresses=tuple(addresses),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            nameserver=path,
            per_family=tuple(per_family),
            detail="; ".join(notes) or None,
            attempts=attempt,
            query_name=name,
            sources=sources,
            trail=(DnsStep(name, tuple(per_family), sources),),
        )

    def _failed(
        self,
        *,
        host: str,
        family: Family,
        families: tuple[AddressFamily, ...],
        detail: str,
        started: float,
        attempt: int,
    ) -> DnsResult:
        return DnsResult(
            host=host,
            family=family,
            category=C.DNS_ERROR,
            addresses=(),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            nameserver=None,
            per_family=tuple((af, C.DNS_ERROR) for af in families),
            detail=detail,
            attempts=attempt,
        )


def _status(  # noqa: PLR0911 - one return per outcome of glibc's decision
    families: tuple[AddressFamily, ...], out: Mapping[AddressFamily, _Family]
) -> Status:
    """glibc's verdict on one candidate from its A and AAAA outcomes (res_query.c, res_send.c).

    Records in either answer: the name answered. A SERVFAIL (or REFUSED) for one family
    while the other got a real answer is dropped, as glibc drops it, and the real answer
    decides; a timeout of one family is a timeout.
    """
    got = [out[af] for af in families]
    if any(f.records for f in got):
        return Status.SUCCESS
    if any(f.outcome == MALFORMED for f in got):
        return Status.ERROR
    real = [f for f in got if f.outcome == ANSWER]
    if any(f.outcome == TIMEOUT for f in got):
        return Status.TIMEOUT
    if real:
        if any(f.rcode not in (NOERROR, NXDOMAIN) for f in real):
            return Status.ERROR
        ipv4 = out.get("ipv4")
        first = ipv4 if ipv4 is not None and ipv4.outcome == ANSWER else real[0]
        if first.rcode == NXDOMAIN or any(f.rcode == NXDOMAIN for f in real):
            return Status.NOTFOUND
        return Status.NODATA
    if all(f.outcome == UNREACHABLE for f in got):
        return Status.UNREACHABLE
    rcode_family = out.get("ipv4") if "ipv4" in out else got[0]
    if rcode_family is not None and rcode_family.outcome != RCODE:
        rcode_family = next((f for f in got if f.outcome == RCODE), None)
    if rcode_family is not None and rcode_family.rcode == SERVFAIL:
        return Status.SERVFAIL
    if rcode_family is not None:
        return Status.REFUSED
    return Status.UNREACHABLE


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Exponential backoff with equal jitter before attempt ``attempt + 1``.

    Half the delay is fixed so retries really back off; the random half keeps many
    retrying probes from marching in step.
    """
    delay = min(cap, base * (2 ** (attempt - 1)))
    return float(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 - jitter, not crypto
