"""Admission: targets in, probe jobs out, each name looked up once, nothing pulled early.

Jobs of resolved names wait in ``ready``; literal targets become jobs as they are
pulled. A name is looked up the first time a target uses it (once, however many targets
share it); targets that arrive while the lookup runs wait for its answer, and
``on_ready`` is called when it comes. Nothing is expanded ahead of need, so a million
targets stream in bounded memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from ..inventory.targets import literal_family
from ..models import AddressFamily, Category, DnsResult, Family, ResolverConfig, Target
from ..observers import Observer
from ..resolve import RESOLVER_CONCURRENCY, Resolver
from ._tally import Pending, Tally

#: one address of one target to probe: (its target's record, its slot there, address, family)
Job = tuple[Pending, int, str, AddressFamily]
_NameKey = tuple[str, Family]


def _nothing() -> None:
    pass


def _reraise(exc: BaseException) -> None:
    raise exc


class Admission:
    """Hands probe jobs to the pump, pulling targets lazily from the inventory.

    At most ``max_lookups`` names are looked up at once: a target that needs one more
    waits (``held``) until a lookup ends. Otherwise an inventory of a million names would
    be pulled whole while the first answers are awaited, a task per name.

    Each lookup is a plain asyncio task, not one of an anyio task group: anyio's
    ``start_soon`` cost 24 µs a task here against 3 µs (10,000 names: 0.2 s of CPU).
    :meth:`aclose` cancels those still running; one that fails hands its exception to
    ``on_error`` (the pump's: the scan ends with it, as a task group would have ended it).
    """

    #: lookups under way at most: twice the resolver's queries in flight, so it never idles
    max_lookups = 2 * RESOLVER_CONCURRENCY

    def __init__(
        self,
        targets: Sequence[Target],
        config: ResolverConfig,
        tally: Tally,
        observer: Observer,
    ) -> None:
        self.tally = tally
        self.observer = observer
        self.targets = enumerate(targets)
        self.config = config
        #: created for the first name: an inventory of addresses never starts a resolver
        self.resolver: Resolver | None = None
        self.lookups: set[asyncio.Task[None]] = set()
        self.on_error: Callable[[BaseException], None] = _reraise
        self.ready: deque[Job] = deque()
        self.total = len(targets)
        self.pulled = 0
        self.exhausted = False
        self.running = 0  # lookups under way
        self.held: tuple[int, Target] | None = None  # pulled, waits for a lookup slot
        self.on_ready: Callable[[], None] = _nothing
        #: every answer, by (name, family): remembered for the whole scan (~1.3 KB a name)
        self.answers: dict[_NameKey, DnsResult] = {}
        self.waiting: dict[_NameKey, list[tuple[int, Target]]] = {}

    def take(self) -> Job | None:
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
            pending = self.tally.admit(index, target, (target.host,), None)
            self.ready.append((pending, 0, target.host, family))
        elif needs_lookup:
            self.waiting[key] = [(index, target)]
            self.running += 1
            task = asyncio.get_running_loop().create_task(self._lookup(key, target.retries))
            self.lookups.add(task)
            task.add_done_callback(self._looked_up)
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
            self.observer.on_dns(answer)
            for index, target in self.waiting.pop(key):
                self._fan_out(index, target, answer)
        finally:
            self.running -= 1
        self.on_ready()

    def _looked_up(self, task: asyncio.Task[None]) -> None:
        self.lookups.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.on_error(exc)

    def _fan_out(self, index: int, target: Target, answer: DnsResult) -> None:
        if answer.category is not Category.RESOLVED:
            self.tally.dns_failed(index, target, answer)
            return
        pending = self.tally.admit(index, target, answer.addresses, answer)
        for slot, address in enumerate(answer.addresses):
            self.ready.append((pending, slot, address, literal_family(address) or "ipv4"))

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

    @property
    def not_started(self) -> int:
        return self.total - self.pulled

    async def aclose(self) -> None:
        running = list(self.lookups)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        if self.resolver is not None:
            await self.resolver.aclose()
