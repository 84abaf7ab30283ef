"""Concurrency: resolve each name once, fan handshakes out to a bounded pool, roll up.

The engine owns timing, limits, retries and deadlines (as blackbox_exporter's handler
does); :mod:`scanner.probe` only dials and :mod:`scanner.classify` only interprets.
Results flow to a :class:`ScanObserver` as they happen, so output streams.
"""

from __future__ import annotations

import math
import resource
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .classify import classify_connect, classify_latency, hint_for, roll_up
from .models import (
    TRANSIENT,
    AddressFamily,
    Category,
    DnsResult,
    Family,
    Inventory,
    ProbeResult,
    ScanSummary,
    Target,
    TargetResult,
)
from .probe import connect_once
from .resolve import Resolver, backoff_delay, literal_family
from .scope import ScopeGuard

DEFAULT_CONCURRENCY = 1024
#: descriptors kept free for stdout, DNS sockets, report files and the event loop
FD_RESERVE = 64


class ScanObserver(Protocol):
    """Receives results as they happen (JSON writer, console, collectors)."""

    def on_start(self, targets: int, inventories: tuple[str, ...], concurrency: int) -> None: ...
    def on_dns(self, result: DnsResult) -> None: ...
    def on_probe(self, result: ProbeResult) -> None: ...
    def on_target(self, result: TargetResult) -> None: ...
    def on_finish(self, summary: ScanSummary) -> None: ...


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


@dataclass(frozen=True, slots=True)
class ScanOptions:
    concurrency: int | None = None  # None: DEFAULT_CONCURRENCY, capped by the fd limit
    max_duration: float | None = None
    handle_signals: bool = True
    rate: float | None = None  # handshake attempts per second, overall
    per_address: int | None = None  # handshakes in flight to one address at most
    allow: tuple[str, ...] = ()  # --allow CIDRs, added to the inventory's scope.allow


class RateLimiter:
    """Spaces handshake attempts evenly: at most ``rate`` per second, no bursts.

    Each caller reserves the next free slot on a shared timeline and sleeps until it,
    so the limit holds however many workers ask at once.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = anyio.current_time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await anyio.sleep(slot - now)


class Gate:
    """Everything a handshake must pass before it is sent: the rate and the per-address cap."""

    def __init__(self, rate: float | None, per_address: int | None) -> None:
        self._rate = RateLimiter(rate) if rate else None
        self._per_address = per_address
        self._busy: dict[str, anyio.Semaphore] = {}

    @asynccontextmanager
    async def admit(self, address: str) -> AsyncIterator[None]:
        semaphore = None
        if self._per_address:
            semaphore = self._busy.get(address)
            if semaphore is None:
                semaphore = self._busy[address] = anyio.Semaphore(self._per_address)
            await semaphore.acquire()
        try:
            if self._rate is not None:
                await self._rate.wait()
            yield
        finally:
            if semaphore is not None:
                semaphore.release()


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
    target: Target
    addresses: tuple[str, ...]
    probes: list[ProbeResult | None]
    dns: DnsResult | None = None
    done: int = 0


_Job = tuple[int, int, str, AddressFamily]  # (target index, address slot, address, family)


@dataclass
class _Scan:
    inventory: Inventory
    observer: ScanObserver
    concurrency: int
    gate: Gate = OPEN_GATE
    scope: ScopeGuard | None = None
    results: dict[int, TargetResult] = field(default_factory=dict)
    pending: dict[int, _Pending] = field(default_factory=dict)

    # --- stages -----------------------------------------------------------------

    async def pipeline(self) -> None:
        send, receive = anyio.create_memory_object_stream[_Job](self.concurrency)
        async with anyio.create_task_group() as workers:
            for _ in range(self.concurrency):
                workers.start_soon(self._worker, receive.clone())
            receive.close()
            async with send:
                await self._feed(send)

    async def _feed(self, send: ObjectSendStream[_Job]) -> None:
        """Literal targets go straight to the pool; names go through the resolver first.

        Targets are grouped by (name, family) before any lookup starts, so each name is
        resolved once and every target sharing it is fed when the answer arrives.
        """
        by_name: dict[tuple[str, Family], list[int]] = {}
        literals: list[tuple[int, AddressFamily]] = []
        for index, target in enumerate(self.inventory.targets):
            family = literal_family(target.host)
            if family is None:
                by_name.setdefault((target.host, target.family), []).append(index)
            else:
                literals.append((index, family))
        resolver = Resolver(self.inventory.resolver)
        try:
            async with anyio.create_task_group() as lookups:
                for key, indices in by_name.items():
                    lookups.start_soon(self._resolve_and_feed, resolver, key, indices, send)
                for index, family in literals:
                    target = self.inventory.targets[index]
                    self.pending[index] = _Pending(target, (target.host,), [None])
                    await send.send((index, 0, target.host, family))
        finally:
            with anyio.CancelScope(shield=True):
                await resolver.aclose()

    async def _resolve_and_feed(self, resolver: Resolver, key: tuple[str, Family],
                                indices: list[int], send: ObjectSendStream[_Job]) -> None:
        host, family = key
        retries = max(self.inventory.targets[i].retries for i in indices)
        dns = await resolver.resolve(host, family, retries)
        self.observer.on_dns(dns)
        for index in indices:
            target = self.inventory.targets[index]
            if dns.category is not Category.RESOLVED:
                self._finish_target(index, _Pending(target, (), [], dns))
                continue
            self.pending[index] = _Pending(target, dns.addresses, [None] * len(dns.addresses),
                                           dns)
            for slot, address in enumerate(dns.addresses):
                await send.send((index, slot, address, literal_family(address) or "ipv4"))

    async def _worker(self, receive: ObjectReceiveStream[_Job]) -> None:
        async with receive:
            async for index, slot, address, family in receive:
                pending = self.pending[index]
                if self.scope is not None and not self.scope.allows(address):
                    result = out_of_scope(pending.target, address, family, self.scope)
                else:
                    result = await probe_address(pending.target, address, family, self.gate)
                self.observer.on_probe(result)
                pending.probes[slot] = result
                pending.done += 1
                if pending.done == len(pending.addresses):
                    self._finish_target(index, pending)

    # --- roll-up ----------------------------------------------------------------

    def _finish_target(self, index: int, pending: _Pending) -> None:
        self.pending.pop(index, None)
        result = target_verdict(pending.target, pending.dns, pending.addresses,
                                [p for p in pending.probes if p is not None])
        self.results[index] = result
        self.observer.on_target(result)

    def finish_unfinished(self, reason: str) -> None:
        """Targets cut short by a signal or the deadline end as inconclusive."""
        for index, target in enumerate(self.inventory.targets):
            if index in self.results:
                continue
            pending = self.pending.get(index)
            result = TargetResult(
                target=target, ok=False, category=Category.INCONCLUSIVE,
                addresses=pending.addresses if pending else (),
                hint=f"not finished: the scan was stopped ({reason})",
                probes=tuple(p for p in pending.probes if p is not None) if pending else (),
                dns=pending.dns if pending else None)
            self.results[index] = result
            self.observer.on_target(result)


#: A local shortage (EMFILE, EADDRNOTAVAIL ...) usually passes once other probes close
#: their sockets: try again this many times before calling the address inconclusive.
LOCAL_RETRIES = 3


async def probe_address(target: Target, address: str, family: AddressFamily,
                        gate: Gate = OPEN_GATE) -> ProbeResult:
    """Probe one address of a target, retrying transient outcomes with backoff.

    ``attempts`` counts handshakes tried for transient categories (SPEC §4); retries
    after our own shortage are extra and never turn into a verdict on the target.
    """
    attempts = 0
    shortages = 0
    while True:
        attempts += 1
        async with gate.admit(address):
            outcome, local = await connect_once(address, target.port, family, target.timeout)
        category = classify_latency(
            classify_connect(outcome, (local,) if local else (), address),
            outcome.latency_ms, target.max_latency_ms)
        if category is Category.INCONCLUSIVE and shortages < LOCAL_RETRIES:
            shortages += 1
            attempts -= 1
            await anyio.sleep(backoff_delay(shortages, base=0.05))
            continue
        if category not in TRANSIENT or attempts > target.retries:
            break
        await anyio.sleep(backoff_delay(attempts))
    errno_name = None if outcome.errno == 0 else _errno_name(outcome.errno)
    return ProbeResult(
        target=target, address=address, family=family, category=category,
        latency_ms=outcome.latency_ms, attempts=attempts, errno=errno_name, icmp=outcome.icmp,
        hint=hint_for(category, port=target.port, timeout=target.timeout, icmp=outcome.icmp,
                      errno_name=errno_name, target_address=address,
                      latency_ms=outcome.latency_ms, budget_ms=target.max_latency_ms),
    )


def out_of_scope(target: Target, address: str, family: AddressFamily,
                 scope: ScopeGuard) -> ProbeResult:
    """The result for an address the scope guard keeps us away from: no packet was sent."""
    hint = hint_for(Category.OUT_OF_SCOPE)
    return ProbeResult(target=target, address=address, family=family,
                       category=Category.OUT_OF_SCOPE, latency_ms=None, attempts=0, errno=None,
                       icmp=None, hint=f"{hint} (allowed: {scope})")


def target_verdict(target: Target, dns: DnsResult | None, addresses: Sequence[str],
                   probes: Sequence[ProbeResult]) -> TargetResult:
    """Roll a target's DNS outcome and per-address probes up into one verdict."""
    if dns is not None and dns.category is not Category.RESOLVED:
        return TargetResult(target=target, ok=False, category=dns.category, addresses=(),
                            hint=hint_for(dns.category, family=target.family,
                                          detail=dns.detail),
                            dns=dns)
    ok, category = roll_up(target.expect, [p.category for p in probes])
    hint: str | None = None
    if not ok:
        decisive = next((p for p in probes if p.category is category), None)
        if target.expect == "closed" and category is Category.OPEN:
            hint = (f"port {target.port} accepts connections but must be closed: the "
                    "firewall rule that should block it is missing")
        else:
            hint = decisive.hint if decisive else None
    return TargetResult(target=target, ok=ok, category=category, addresses=tuple(addresses),
                        hint=hint, probes=tuple(probes), dns=dns)


def _errno_name(number: int) -> str:
    import errno as errno_module

    return errno_module.errorcode.get(number, f"E{number}")


def summarize(results: Sequence[TargetResult], duration_s: float,
              interrupted_by: str | None) -> ScanSummary:
    ok = sum(1 for r in results if r.ok)
    inconclusive = sum(1 for r in results if r.inconclusive)
    failed = len(results) - ok - inconclusive
    # "inconclusive" is both a category and a verdict; for targets they coincide.
    counts: Counter[str] = Counter(r.category.value for r in results)
    counts.update({"ok": ok, "failed": failed})
    counts["inconclusive"] = inconclusive
    return ScanSummary(total=len(results), ok=ok, failed=failed, inconclusive=inconclusive,
                       counts=tuple(sorted(counts.items())), duration_s=duration_s,
                       interrupted=interrupted_by is not None, interrupted_by=interrupted_by)


async def run_scan(inventory: Inventory, observer: ScanObserver,
                   options: ScanOptions = ScanOptions()) -> tuple[ScanSummary,
                                                                    list[TargetResult]]:
    """Scan every target of ``inventory``; results stream to ``observer``."""
    fd_limit = raise_fd_limit()
    concurrency = effective_concurrency(options.concurrency, fd_limit)
    concurrency = min(concurrency, max(1, _address_estimate(inventory)))
    networks = (*(inventory.scope or ()), *options.allow)
    guard = ScopeGuard(networks) if inventory.scope is not None or options.allow else None
    scan = _Scan(inventory, observer, concurrency, Gate(options.rate, options.per_address),
                 guard)
    observer.on_start(len(inventory.targets), inventory.paths, concurrency)
    started = time.perf_counter()
    interrupted_by: str | None = None
    scope = anyio.CancelScope(
        deadline=anyio.current_time() + options.max_duration if options.max_duration
        else math.inf)

    async def watch_signals() -> None:
        nonlocal interrupted_by
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                interrupted_by = signal.Signals(signum).name
                scope.cancel()
                return

    async with anyio.create_task_group() as outer:
        if options.handle_signals:
            outer.start_soon(watch_signals)
        with scope:
            await scan.pipeline()
        outer.cancel_scope.cancel()
    if scope.cancelled_caught and interrupted_by is None:
        interrupted_by = "deadline"
    if interrupted_by is not None:
        reason = ("--max-duration reached" if interrupted_by == "deadline"
                  else f"{interrupted_by} received")
        scan.finish_unfinished(reason)
    ordered = [scan.results[i] for i in sorted(scan.results)]
    summary = summarize(ordered, time.perf_counter() - started, interrupted_by)
    observer.on_finish(summary)
    return summary, ordered


def _address_estimate(inventory: Inventory) -> int:
    """An upper bound on useful workers: two addresses per target at most, mostly."""
    return 2 * len(inventory.targets)
