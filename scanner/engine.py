"""Concurrency: resolve each name once, fan handshakes out to a bounded pool, roll up.

The engine owns timing, limits, retries and deadlines (as blackbox_exporter's handler
does); :mod:`scanner.probe` only dials and :mod:`scanner.classify` only interprets.
Results flow to a :class:`ScanObserver` as they happen, so output streams.
"""

from __future__ import annotations

import asyncio
import errno as errno_module
import functools
import math
import resource
import signal
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from anyio.abc import TaskGroup

from .classify import classify_connect, classify_latency, hint_for, roll_up
from .models import (
    DEFAULT_CONCURRENCY,
    TRANSIENT,
    AddressFamily,
    Category,
    ConnectOutcome,
    DnsResult,
    Family,
    Hop,
    IcmpDetail,
    Inventory,
    PathTrace,
    ProbeResult,
    ResolverConfig,
    ScanSummary,
    Target,
    TargetResult,
)
from .probe import Dialer, connect_once
from .resolve import RESOLVER_CONCURRENCY, Resolver, backoff_delay
from .scope import ScopeGuard
from .targets import literal_family

if TYPE_CHECKING:
    from .trace import PathTracer, TraceConfig

#: seconds between flushes of buffered event output
FLUSH_INTERVAL = 0.1
#: descriptors kept free for stdout, DNS sockets, report files and the event loop
FD_RESERVE = 64


class ScanObserver(Protocol):
    """Receives results as they happen (JSON writer, console, collectors)."""

    def on_start(self, targets: int, inventories: tuple[str, ...], concurrency: int) -> None: ...
    def on_dns(self, result: DnsResult) -> None: ...
    def on_probe(self, result: ProbeResult) -> None: ...
    def on_target(self, result: TargetResult) -> None: ...
    def on_finish(self, summary: ScanSummary) -> None: ...
    def flush(self) -> None: ...
    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None: ...


class BaseObserver:
    """An observer that ignores everything; subclass and override what you need."""

    def on_start(self, targets: int, inventories: tuple[str, ...], concurrency: int) -> None:
        pass

    def on_dns(self, result: DnsResult) -> None:
        pass

    def on_probe(self, result: ProbeResult) -> None:
        pass

    def on_target(self, result: TargetResult) -> None:
        pass

    def on_finish(self, summary: ScanSummary) -> None:
        pass

    def flush(self) -> None:
        pass

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        pass


class FanOut:
    """Hands every event to several observers, in order (e.g. JSON stream + report)."""

    def __init__(self, *observers: ScanObserver) -> None:
        self.observers = observers

    def on_start(self, targets: int, inventories: tuple[str, ...], concurrency: int) -> None:
        for observer in self.observers:
            observer.on_start(targets, inventories, concurrency)

    def on_dns(self, result: DnsResult) -> None:
        for observer in self.observers:
            observer.on_dns(result)

    def on_probe(self, result: ProbeResult) -> None:
        for observer in self.observers:
            observer.on_probe(result)

    def on_target(self, result: TargetResult) -> None:
        for observer in self.observers:
            observer.on_target(result)

    def on_finish(self, summary: ScanSummary) -> None:
        for observer in self.observers:
            observer.on_finish(summary)

    def flush(self) -> None:
        for observer in self.observers:
            observer.flush()

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        for observer in self.observers:
            observer.on_hop(target, path, hop)


@dataclass(frozen=True, slots=True)
class ScanOptions:
    concurrency: int | None = None  # None: DEFAULT_CONCURRENCY, capped by the fd limit
    max_duration: float | None = None
    handle_signals: bool = True
    rate: float | None = None  # handshake attempts per second, overall
    per_address: int | None = None  # handshakes in flight to one address at most
    allow: tuple[str, ...] = ()  # --allow CIDRs, added to the inventory's scope.allow
    keep_results: bool = True  # False: stream only, hold no per-target results
    trace_failures: bool = False  # trace the path of failed addresses (scanner.trace)
    trace: TraceConfig | None = None  # hop limits, deadlines; None: the defaults


class RateLimiter:
    """Spaces handshake attempts evenly: at most ``rate`` per second, no bursts.

    Each caller reserves the next free slot on a shared timeline and waits until it,
    so the limit holds however many callers ask at once.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait for it (0 when it is now)."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await anyio.sleep(delay)


class Gate:
    """Everything a handshake must pass before it is sent: the rate and the per-address cap.

    Callback-driven, like the probes it admits: :meth:`enter` runs ``start`` when the
    handshake may begin (at once, after its rate slot, or when another handshake to the
    same address ends) and every entered handshake calls :meth:`leave` when it is over.
    """

    def __init__(self, rate: float | None, per_address: int | None) -> None:
        self._rate = RateLimiter(rate) if rate else None
        self._per_address = per_address
        self._busy: dict[str, int] = {}  # handshakes in flight (or due) per address
        self._parked: dict[str, deque[Callable[[], None]]] = {}

    def enter(self, address: str, start: Callable[[], None]) -> None:
        if self._per_address:
            busy = self._busy.get(address, 0)
            if busy >= self._per_address:
                self._parked.setdefault(address, deque()).append(start)
                return
            self._busy[address] = busy + 1
        self._paced(start)

    def leave(self, address: str) -> None:
        if not self._per_address:
            return
        parked = self._parked.get(address)
        if parked:  # the slot passes straight to the next in line
            start = parked.popleft()
            if not parked:
                del self._parked[address]
            self._paced(start)
            return
        busy = self._busy[address] - 1
        if busy:
            self._busy[address] = busy
        else:
            del self._busy[address]

    def withdraw(self, address: str, start: Callable[[], None]) -> None:
        """Forget ``start`` whose caller gave up before its handshake began."""
        parked = self._parked.get(address)
        if parked is not None and start in parked:
            parked.remove(start)
            if not parked:
                del self._parked[address]
            return
        self.leave(address)  # it held a slot, waiting only for its rate slot

    def _paced(self, start: Callable[[], None]) -> None:
        delay = self._rate.reserve() if self._rate is not None else 0.0
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, start)
        else:
            start()

    @asynccontextmanager
    async def admit(self, address: str) -> AsyncIterator[None]:
        """:meth:`enter` and :meth:`leave` for a coroutine."""
        if self is OPEN_GATE:
            yield
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def start() -> None:
            if not granted.done():
                granted.set_result(None)

        self.enter(address, start)
        try:
            await granted
        except BaseException:
            self.withdraw(address, start)
            raise
        try:
            yield
        finally:
            self.leave(address)

    async def pace(self) -> None:
        """Only the rate: path-trace handshakes count against ``--rate`` too."""
        if self._rate is not None:
            await self._rate.wait()


OPEN_GATE = Gate(None, None)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def effective_concurrency(requested: int | None, fd_limit: int) -> int:
    """Probes in flight: as asked (or the default), never more than free descriptors.

    A quarter of a small limit (at most :data:`FD_RESERVE`) stays free for stdout, DNS
    sockets and report files, so ``ulimit -n 64`` still scans 48 at a time.
    """
    wanted = requested if requested and requested > 0 else DEFAULT_CONCURRENCY
    reserve = min(FD_RESERVE, max(8, fd_limit // 4))
    return max(1, min(wanted, fd_limit - reserve))


@dataclass
class _Pending:
    """A target whose addresses are being probed (only these are held in memory)."""

    target: Target
    addresses: tuple[str, ...]
    probes: list[ProbeResult | None]
    dns: DnsResult | None = None
    done: int = 0


_Job = tuple[int, int, str, AddressFamily]  # (target index, address slot, address, family)
_NameKey = tuple[str, Family]


class _JobSource:
    """Hands probe jobs to the pump, pulling targets lazily from the inventory.

    Jobs of resolved names wait in ``ready``; literal targets become jobs as they are
    pulled. A name is looked up the first time a target uses it (once, however many
    targets share it); targets that arrive while the lookup runs wait for its answer,
    and ``on_ready`` is called when it comes. Nothing is expanded ahead of need, so a
    million targets stream in bounded memory.

    At most ``max_lookups`` names are looked up at once: a target that needs one more
    waits (``held``) until a lookup ends. Otherwise an inventory of a million names would
    be pulled whole while the first answers are awaited, a task per name.
    """

    #: lookups under way at most: twice the resolver's queries in flight, so it never idles
    max_lookups = 2 * RESOLVER_CONCURRENCY

    def __init__(
        self, scan: _Scan, targets: Sequence[Target], config: ResolverConfig, lookups: TaskGroup
    ) -> None:
        self.scan = scan
        self.targets = enumerate(targets)
        self.config = config
        #: created for the first name: an inventory of addresses never starts c-ares
        self.resolver: Resolver | None = None
        self.lookups = lookups
        self.ready: deque[_Job] = deque()
        self.total = len(targets)
        self.pulled = 0
        self.exhausted = False
        self.running = 0  # lookups under way
        self.held: tuple[int, Target] | None = None  # pulled, waits for a lookup slot
        self.on_ready: Callable[[], None] = _nothing
        self.answers: dict[_NameKey, DnsResult] = {}
        self.waiting: dict[_NameKey, list[tuple[int, Target]]] = {}

    def take(self) -> _Job | None:
        """The next job, or None if there is none now (see :attr:`drained`)."""
        ready = self.ready
        while not ready:
            if self.exhausted or not self._pull():
                return None
        return ready.popleft()

    @property
    def drained(self) -> bool:
        """No job now and none to come: every target pulled, every lookup answered."""
        return self.exhausted and not self.ready and self.running == 0

    def _pull(self) -> bool:
        """Take the next target in; False when it must wait for a lookup slot."""
        item = self.held or next(self.targets, None)
        if item is None:
            self.exhausted = True
            return True
        index, target = item
        family = literal_family(target.host)
        key = (target.host, target.family)
        needs_lookup = family is None and key not in self.answers and key not in self.waiting
        if needs_lookup and self.running >= self.max_lookups:
            self.held = item  # on_ready (a lookup ended) pulls it again
            return False
        self.held, self.pulled = None, index + 1
        if family is not None:
            self.scan.pending[index] = _Pending(target, (target.host,), [None])
            self.ready.append((index, 0, target.host, family))
        elif needs_lookup:
            self.waiting[key] = [(index, target)]
            self.running += 1
            self.lookups.start_soon(self._lookup, key, target.retries)
        elif key in self.waiting:
            self.waiting[key].append((index, target))
        else:
            self._fan_out(index, target, self.answers[key])
        return True

    async def _lookup(self, key: _NameKey, retries: int) -> None:
        try:
            if self.resolver is None:
                self.resolver = Resolver(self.config)
            answer = await self.resolver.resolve(key[0], key[1], retries)
            self.answers[key] = answer
            self.scan.observer.on_dns(answer)
            for index, target in self.waiting.pop(key):
                self._fan_out(index, target, answer)
        finally:
            self.running -= 1
        self.on_ready()

    def _fan_out(self, index: int, target: Target, answer: DnsResult) -> None:
        if answer.category is not Category.RESOLVED:
            self.scan.finish_target(index, _Pending(target, (), [], answer))
            return
        self.scan.pending[index] = _Pending(
            target, answer.addresses, [None] * len(answer.addresses), answer
        )
        for slot, address in enumerate(answer.addresses):
            self.ready.append((index, slot, address, literal_family(address) or "ipv4"))

    def unfinished(self, *, unstarted: bool) -> Iterator[tuple[int, Target]]:
        """Targets still waiting for DNS, then (if ``unstarted``) those never pulled."""
        for waiting in self.waiting.values():
            yield from waiting
        self.waiting.clear()
        if unstarted:
            if self.held is not None:
                yield self.held
                self.held = None
            yield from self.targets
            self.pulled = self.total


def _nothing() -> None:
    pass


class _Attempt:
    """One address being probed: its job, its tries so far, how to stop it."""

    __slots__ = ("address", "family", "index", "pending", "slot", "start", "stop", "tries")

    def __init__(
        self, index: int, slot: int, address: str, family: AddressFamily, pending: _Pending
    ) -> None:
        self.index = index
        self.slot = slot
        self.address = address
        self.family = family
        self.pending = pending
        self.tries = Tries()
        self.stop: Callable[[], object] = _nothing  # abandons the handshake or the wait
        self.start: Callable[[], None] = _nothing  # what the gate runs (to withdraw it)


class _ProbePump:
    """Keeps ``concurrency`` handshakes in flight, driven by event-loop callbacks alone.

    A finished handshake is classified and replaced by the next job within the same
    callback: no task, future or cancel scope per probe. At tens of thousands of probes
    a second those were most of the time. Retries wait on a loop timer and keep their
    slot, as does a handshake the gate holds back.

    Reporting waits until the batch of handshakes the loop handed over at once (one
    timer, one poll) has been replaced: writing events costs about as much as dialing,
    and done first it would hold back the next wave. When a thousand timeouts fall due
    together, the thousand new handshakes go out first (reporting waits while deadlines
    are overdue, for at most ``concurrency`` results), and the reports are written
    while they wait.
    """

    def __init__(self, scan: _Scan, source: _JobSource) -> None:
        self.scan = scan
        self.source = source
        self.loop = asyncio.get_running_loop()
        self.dialer = Dialer(self.loop)
        self.concurrency = scan.concurrency
        self.free = scan.concurrency
        self.live: set[_Attempt] = set()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.stopped = False
        self._filling = False
        #: finished addresses whose results are not reported yet (see the class docstring)
        self._unreported: list[tuple[int, int, _Pending, ProbeResult]] = []
        source.on_ready = self.fill

    def fill(self) -> None:
        """Start jobs until every slot is taken or none is ready; notice the end."""
        if self.stopped or self._filling:
            return
        self._filling = True
        source = self.source
        try:
            while self.free > 0:
                job = source.take()
                if job is None:
                    break
                self.free -= 1
                self._begin(job)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting pipeline
            self._fail(exc)
            return
        finally:
            self._filling = False
        self._notice_end()

    def _notice_end(self) -> None:
        if (
            self.free == self.concurrency
            and not self._unreported
            and self.source.drained
            and not self.done.done()
        ):
            self.done.set_result(None)

    def close(self) -> None:
        """Stop everything still in flight (the scan was cancelled); nothing reports after."""
        if self.stopped:
            return
        self.stopped = True
        self.report()  # finished results are facts: they are reported, not cut short
        for attempt in self.live:
            attempt.stop()
        self.live.clear()
        self.dialer.close()

    def _begin(self, job: _Job) -> None:
        index, slot, address, family = job
        pending = self.scan.pending[index]
        scope = self.scan.scope
        if scope is not None and not scope.allows(address):
            self._complete(
                index, slot, pending, out_of_scope(pending.target, address, family, scope)
            )
            return
        attempt = _Attempt(index, slot, address, family, pending)
        self.live.add(attempt)
        self._dial(attempt)

    def _dial(self, attempt: _Attempt) -> None:
        gate = self.scan.gate
        if gate is OPEN_GATE:
            self._connect(attempt)
        else:
            attempt.start = functools.partial(self._connect, attempt)
            attempt.stop = functools.partial(gate.withdraw, attempt.address, attempt.start)
            gate.enter(attempt.address, attempt.start)

    def _connect(self, attempt: _Attempt) -> None:
        if self.stopped:
            return
        target = attempt.pending.target
        attempt.stop = self.dialer.connect(
            attempt.address,
            target.port,
            attempt.family,
            target.timeout,
            functools.partial(self._connected, attempt),
        )

    def _connected(self, attempt: _Attempt, outcome: ConnectOutcome, local: str | None) -> None:
        if self.stopped:
            return
        try:
            if self.scan.gate is not OPEN_GATE:
                self.scan.gate.leave(attempt.address)
            target = attempt.pending.target
            category = classify_attempt(target, attempt.address, outcome, local)
            delay = attempt.tries.again(category, target.retries)
            if delay is not None:
                attempt.stop = self.loop.call_later(delay, self._dial, attempt).cancel
                return
            self.live.discard(attempt)
            result = probe_result(
                target,
                attempt.address,
                attempt.family,
                category=category,
                outcome=outcome,
                attempts=attempt.tries.attempts,
            )
            self._complete(attempt.index, attempt.slot, attempt.pending, result)
        except BaseException as exc:  # noqa: BLE001 - a bug ends the scan, not lost in the loop
            self._fail(exc)

    def _complete(self, index: int, slot: int, pending: _Pending, result: ProbeResult) -> None:
        if not self._unreported:
            self.loop.call_soon(self._report_batch)
        self._unreported.append((index, slot, pending, result))
        self.free += 1
        self.fill()

    def report(self) -> None:
        """Hand every finished address to the observer; finish targets that are complete."""
        unreported, self._unreported = self._unreported, []
        scan = self.scan
        for index, slot, pending, result in unreported:
            scan.observer.on_probe(result)
            pending.probes[slot] = result
            pending.done += 1
            if pending.done == len(pending.addresses):
                scan.finish_target(index, pending)

    def _report_batch(self) -> None:
        if self.stopped:
            return
        if self.dialer.overdue() and len(self._unreported) < self.concurrency:
            # timeouts are due: their replacements go out first (a bounded wait)
            self.loop.call_soon(self._report_batch)
            return
        try:
            self.report()
        except BaseException as exc:  # noqa: BLE001 - a bug ends the scan, not lost in the loop
            self._fail(exc)
            return
        self._notice_end()

    def _fail(self, exc: BaseException) -> None:
        self._unreported.clear()  # an observer may be what failed: report no more
        self.close()
        if not self.done.done():
            self.done.set_exception(exc)


@dataclass
class _Scan:
    inventory: Inventory
    observer: ScanObserver
    concurrency: int
    gate: Gate = OPEN_GATE
    scope: ScopeGuard | None = None
    keep_results: bool = True
    results: list[tuple[int, TargetResult]] = field(default_factory=list)
    pending: dict[int, _Pending] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)  # per category
    verdicts: Counter[str] = field(default_factory=Counter)  # ok / failed / inconclusive
    not_started: int = 0  # targets a signal stopped before they were pulled
    source: _JobSource | None = None
    tracer: PathTracer | None = None  # --trace-failures
    traces: TaskGroup | None = None
    tracing: dict[int, TargetResult] = field(default_factory=dict)

    async def pipeline(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                self.traces = group
                self.source = _JobSource(
                    self, self.inventory.targets, self.inventory.resolver, group
                )
                pump = _ProbePump(self, self.source)
                pump.fill()
                try:
                    await pump.done
                finally:
                    pump.close()
        finally:
            if self.source is not None and self.source.resolver is not None:
                with anyio.CancelScope(shield=True):
                    await self.source.resolver.aclose()

    # --- roll-up ----------------------------------------------------------------

    def finish_target(self, index: int, pending: _Pending) -> None:
        self.pending.pop(index, None)
        result = target_verdict(
            pending.target,
            pending.dns,
            pending.addresses,
            [p for p in pending.probes if p is not None],
        )
        if self.tracer is not None and self.traces is not None and self.tracer.wants(result):
            self.tracing[index] = result  # recorded once traced (or untraced if cut short)
            self.traces.start_soon(self._trace, index, result)
            return
        self._record(index, result)

    async def _trace(self, index: int, result: TargetResult) -> None:
        assert self.tracer is not None
        traced = await self.tracer.trace(result, self.observer.on_hop)
        if self.tracing.pop(index, None) is not None:
            self._record(index, traced)

    def _record(self, index: int, result: TargetResult) -> None:
        self.counts[result.category.value] += 1
        self.verdicts[
            "ok" if result.ok else "inconclusive" if result.inconclusive else "failed"
        ] += 1
        if self.keep_results:
            self.results.append((index, result))
        self.observer.on_target(result)

    def finish_unfinished(self, reason: str, *, unstarted: bool) -> None:
        """Targets cut short end as inconclusive.

        Those in flight (probing, or waiting for DNS) always get a ``target.result``.
        Never-started ones do after ``--max-duration`` (SPEC: unfinished targets end as
        inconclusive); after a signal they are only counted (``not_started``), because
        a person pressing Ctrl-C on a million-target scan wants it to stop now.
        """
        hint = f"not finished: the scan was stopped ({reason})"
        for index, result in sorted(self.tracing.items()):  # probed, trace cut short
            self._record(index, result)
        self.tracing.clear()
        for index, pending in sorted(self.pending.items()):
            self._record(
                index,
                TargetResult(
                    target=pending.target,
                    ok=False,
                    category=Category.INCONCLUSIVE,
                    addresses=pending.addresses,
                    hint=hint,
                    probes=tuple(p for p in pending.probes if p is not None),
                    dns=pending.dns,
                ),
            )
        self.pending.clear()
        if self.source is None:
            return
        for position, target in self.source.unfinished(unstarted=unstarted):
            self._record(
                position,
                TargetResult(
                    target=target, ok=False, category=Category.INCONCLUSIVE, addresses=(), hint=hint
                ),
            )
        self.not_started = self.source.total - self.source.pulled

    def summary(self, duration_s: float, interrupted_by: str | None) -> ScanSummary:
        # "inconclusive" is both a category and a verdict; for targets they coincide.
        counts = {
            **self.counts,
            "ok": self.verdicts["ok"],
            "failed": self.verdicts["failed"],
            "inconclusive": self.verdicts["inconclusive"],
        }
        if self.not_started:
            counts["not_started"] = self.not_started
        return ScanSummary.from_counts(counts, duration_s, interrupted_by)


#: A local shortage (EMFILE, EADDRNOTAVAIL ...) usually passes once other probes close
#: their sockets: try again this many times before calling the address inconclusive.
LOCAL_RETRIES = 3


class Tries:
    """Counts the handshakes to one address and decides whether to try again (SPEC §4).

    ``attempts`` counts handshakes tried for transient categories; retries after our
    own shortage are extra and never turn into a verdict on the target.
    """

    __slots__ = ("attempts", "shortages")

    def __init__(self) -> None:
        self.attempts = 0
        self.shortages = 0

    def again(self, category: Category, retries: int) -> float | None:
        """Seconds to wait before the next handshake, or None: ``category`` is final."""
        if category is Category.INCONCLUSIVE and self.shortages < LOCAL_RETRIES:
            self.shortages += 1
            return backoff_delay(self.shortages, base=0.05)
        self.attempts += 1
        if category in TRANSIENT and self.attempts <= retries:
            return backoff_delay(self.attempts)
        return None


def classify_attempt(
    target: Target, address: str, outcome: ConnectOutcome, local: str | None
) -> Category:
    """The category of one handshake to ``address`` (``local``: the source we used)."""
    return classify_latency(
        classify_connect(outcome, (local,) if local else (), address),
        outcome.latency_ms,
        target.max_latency_ms,
    )


async def probe_address(
    target: Target, address: str, family: AddressFamily, gate: Gate = OPEN_GATE
) -> ProbeResult:
    """Probe one address of a target, retrying transient outcomes with backoff.

    The scan itself drives probes by callbacks (:class:`_ProbePump`); this is the same
    sequence for a single address, as a coroutine.
    """
    tries = Tries()
    while True:
        async with gate.admit(address):
            outcome, local = await connect_once(address, target.port, family, target.timeout)
        category = classify_attempt(target, address, outcome, local)
        delay = tries.again(category, target.retries)
        if delay is None:
            return probe_result(
                target, address, family, category=category, outcome=outcome, attempts=tries.attempts
            )
        await anyio.sleep(delay)


def probe_result(
    target: Target,
    address: str,
    family: AddressFamily,
    *,
    category: Category,
    outcome: ConnectOutcome,
    attempts: int,
) -> ProbeResult:
    """The :class:`ProbeResult` of the final handshake, with its hint."""
    errno_name = None if outcome.errno == 0 else _errno_name(outcome.errno)
    if category is Category.OPEN:
        hint = None
    elif category is Category.SLOW:
        hint = hint_for(category, latency_ms=outcome.latency_ms, budget_ms=target.max_latency_ms)
    else:  # the same few sentences over and over: format each once
        # the target's own address only matters to a reject ("the host itself rejects")
        hint = _probe_hint(
            category,
            target,
            outcome.icmp,
            errno_name,
            address if category is Category.REJECTED else None,
        )
    return ProbeResult(
        target=target,
        address=address,
        family=family,
        category=category,
        latency_ms=outcome.latency_ms,
        attempts=attempts,
        errno=errno_name,
        icmp=outcome.icmp,
        hint=hint,
    )


def out_of_scope(
    target: Target, address: str, family: AddressFamily, scope: ScopeGuard
) -> ProbeResult:
    """The result for an address the scope guard keeps us away from: no packet was sent."""
    hint = hint_for(Category.OUT_OF_SCOPE)
    return ProbeResult(
        target=target,
        address=address,
        family=family,
        category=Category.OUT_OF_SCOPE,
        latency_ms=None,
        attempts=0,
        errno=None,
        icmp=None,
        hint=f"{hint} (allowed: {scope})",
    )


def target_verdict(
    target: Target, dns: DnsResult | None, addresses: Sequence[str], probes: Sequence[ProbeResult]
) -> TargetResult:
    """Roll a target's DNS outcome and per-address probes up into one verdict."""
    if dns is not None and dns.category is not Category.RESOLVED:
        return TargetResult(
            target=target,
            ok=False,
            category=dns.category,
            addresses=(),
            hint=hint_for(dns.category, family=target.family, detail=dns.detail),
            dns=dns,
        )
    ok, category = roll_up(target.expect, [p.category for p in probes])
    hint: str | None = None
    if not ok:
        decisive = None
        for probe in probes:
            if probe.category is category:
                decisive = probe
                break
        if target.expect == "closed" and category is Category.OPEN:
            hint = (
                f"port {target.port} accepts connections but must be closed: the "
                "firewall rule that should block it is missing"
            )
        else:
            hint = decisive.hint if decisive else None
    return TargetResult(
        target=target,
        ok=ok,
        category=category,
        addresses=tuple(addresses),
        hint=hint,
        probes=tuple(probes),
        dns=dns,
    )


def _errno_name(number: int) -> str:
    return errno_module.errorcode.get(number, f"E{number}")


_HintKey = tuple[Category, int, float, IcmpDetail | None, str | None, str | None]
_hints: dict[_HintKey, str | None] = {}
_MISSING: Any = object()


def _probe_hint(
    category: Category,
    target: Target,
    icmp: IcmpDetail | None,
    errno_name: str | None,
    target_address: str | None,
) -> str | None:
    """:func:`hint_for` a failed handshake, each distinct sentence formatted once.

    A big scan says the same few sentences thousands of times. The cache is bounded:
    rejects name the target's address, so a huge scan could otherwise grow it forever.
    """
    port, timeout = target.port, target.timeout
    key = (category, port, timeout, icmp, errno_name, target_address)
    hint = _hints.get(key, _MISSING)
    if hint is _MISSING:
        if len(_hints) >= 4096:
            _hints.clear()
        hint = _hints[key] = hint_for(
            category,
            port=port,
            timeout=timeout,
            icmp=icmp,
            errno_name=errno_name,
            target_address=target_address,
        )
    return hint  # type: ignore[no-any-return]


async def run_scan(
    inventory: Inventory, observer: ScanObserver, options: ScanOptions = ScanOptions()
) -> tuple[ScanSummary, list[TargetResult]]:
    """Scan every target of ``inventory``; results stream to ``observer``.

    Returns the summary and, with ``options.keep_results``, every target result in
    inventory order (reports need them; a plain streaming run keeps none).
    """
    fd_limit = raise_fd_limit()
    total = len(inventory.targets)
    concurrency = effective_concurrency(options.concurrency, fd_limit)
    concurrency = min(concurrency, max(1, 2 * total))  # two addresses per target, mostly
    networks = (*(inventory.scope or ()), *options.allow)
    guard = ScopeGuard(networks) if inventory.scope is not None or options.allow else None
    gate = (
        Gate(options.rate, options.per_address)
        if options.rate or options.per_address
        else OPEN_GATE
    )
    scan = _Scan(inventory, observer, concurrency, gate, guard, options.keep_results)
    if options.trace_failures:  # imported only then: start-up time counts
        from .trace import PathTracer, TraceConfig, tracer_slots

        config = options.trace or TraceConfig()
        scan.tracer = PathTracer(config, tracer_slots(concurrency, config), gate.pace)
    observer.on_start(total, inventory.paths, concurrency)
    started = time.perf_counter()
    interrupted_by: str | None = None
    scope = anyio.CancelScope(
        deadline=anyio.current_time() + options.max_duration if options.max_duration else math.inf
    )

    def on_signal(signum: int, _frame: object) -> None:
        # Only record it. loop.add_signal_handler callbacks (and call_soon_threadsafe
        # from here) were seen to wait under uvloop until a busy scan went idle, i.e.
        # the end; the ticker below runs on a timer and acts within 100 ms.
        nonlocal interrupted_by
        if interrupted_by is None:
            interrupted_by = signal.Signals(signum).name

    async def tick() -> None:
        """Flush buffered output and notice signals, ten times a second."""
        while True:
            await anyio.sleep(FLUSH_INTERVAL)
            observer.flush()
            if interrupted_by is not None:
                scope.cancel()

    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        if options.handle_signals
        else {}
    )
    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(tick)
            with scope:
                await scan.pipeline()
            outer.cancel_scope.cancel()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if scope.cancelled_caught and interrupted_by is None:
        interrupted_by = "deadline"
    if interrupted_by is not None:
        reason = (
            "--max-duration reached"
            if interrupted_by == "deadline"
            else f"{interrupted_by} received"
        )
        scan.finish_unfinished(reason, unstarted=interrupted_by == "deadline")
    summary = scan.summary(time.perf_counter() - started, interrupted_by)
    observer.on_finish(summary)
    observer.flush()
    ordered = [result for _, result in sorted(scan.results, key=lambda item: item[0])]
    return summary, ordered
