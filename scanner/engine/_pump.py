"""The pump: keeps ``concurrency`` probes in flight, driven by event-loop callbacks alone.

A finished probe is classified and replaced by the next job within the same callback:
no task, future or cancel scope per probe. At tens of thousands of probes a second those
were most of the time. Retries wait on a loop timer and keep their slot, as does a
handshake the gate holds back.

Reporting waits until the batch of probes the loop handed over at once (one timer, one
poll) has been replaced: writing events costs about as much as dialing, and done first
it would hold back the next wave. When a thousand timeouts fall due together, the
thousand new handshakes go out first (reporting waits while deadlines are overdue, for
at most ``concurrency`` results), and the reports are written while they wait.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from ..models import AddressFamily, ConnectOutcome, ProbeResult
from ..probers import Abandon, Probers
from ..scope import ScopeGuard
from ._admission import Admission, Job
from ._limits import Gate
from ._results import attempt_result, classify_attempt, out_of_scope
from ._retry import Tries
from ._tally import Pending, Tally


def _nothing() -> None:
    pass


class _Attempt:
    """One address being probed: its job, its tries so far, how to stop it."""

    __slots__ = ("address", "family", "pending", "slot", "start", "stop", "tries")

    def __init__(self, pending: Pending, slot: int, address: str, family: AddressFamily) -> None:
        self.pending = pending
        self.slot = slot
        self.address = address
        self.family = family
        self.tries = Tries()
        self.stop: Abandon = _nothing  # abandons the probe or the wait
        self.start: Callable[[], None] = _nothing  # what the gate runs (to withdraw it)


class ProbePump:
    """Starts jobs from the admission through the probers, and hands results to the tally."""

    def __init__(
        self,
        admission: Admission,
        tally: Tally,
        probers: Probers,
        *,
        concurrency: int,
        gate: Gate,
        scope: ScopeGuard | None,
    ) -> None:
        self.admission = admission
        self.tally = tally
        self.probers = probers
        self.gate = gate
        self.scope = scope
        self.loop = asyncio.get_running_loop()
        self.concurrency = concurrency
        self.free = concurrency
        self.live: set[_Attempt] = set()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.stopped = False
        #: output backs up (see :meth:`pause`): no new probe starts meanwhile
        self.paused = False
        self._filling = False
        #: finished addresses whose results are not reported yet (see the module docstring)
        self._unreported: list[tuple[Pending, int, ProbeResult]] = []
        admission.on_ready = self.fill
        admission.on_error = self._fail

    def pause(self, paused: bool) -> None:
        """Start no new probe while ``paused`` (the output waits for a slow reader).

        Probes in flight go on and are timed as ever: the loop never waits on output,
        so a pause slows the scan down to its reader's pace without touching a clock.
        """
        if paused == self.paused:
            return
        self.paused = paused
        if not paused:
            self.fill()

    def fill(self) -> None:
        """Start jobs until every slot is taken or none is ready; notice the end."""
        if self.stopped or self._filling or self.paused:
            return
        self._filling = True
        admission = self.admission
        try:
            while self.free > 0:
                job = admission.take()
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
            and self.admission.drained
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
        self.probers.close()

    def _begin(self, job: Job) -> None:
        pending, slot, address, family = job
        scope = self.scope
        if scope is not None and not scope.allows(address):
            self._complete(pending, slot, out_of_scope(pending.target, address, family, scope))
            return
        attempt = _Attempt(pending, slot, address, family)
        self.live.add(attempt)
        self._dial(attempt)

    def _dial(self, attempt: _Attempt) -> None:
        gate = self.gate
        if gate.open:
            self._probe(attempt)
        else:
            attempt.start = functools.partial(self._probe, attempt)
            attempt.stop = functools.partial(gate.withdraw, attempt.address, attempt.start)
            gate.enter(attempt.address, attempt.start)

    def _probe(self, attempt: _Attempt) -> None:
        if self.stopped:
            return
        target = attempt.pending.target
        prober = self.probers.for_target(target)
        attempt.stop = prober.start(
            target, attempt.address, attempt.family, functools.partial(self._probed, attempt)
        )

    def _probed(self, attempt: _Attempt, outcome: ConnectOutcome, local: str | None) -> None:
        if self.stopped:
            return
        try:
            if not self.gate.open:
                self.gate.leave(attempt.address)
            target = attempt.pending.target
            category = classify_attempt(target, attempt.address, outcome, local)
            delay = attempt.tries.again(category, target.retries)
            if delay is not None:
                attempt.stop = self.loop.call_later(delay, self._dial, attempt).cancel
                return
            self.live.discard(attempt)
            result = attempt_result(
                target,
                attempt.address,
                attempt.family,
                category=category,
                outcome=outcome,
                attempts=attempt.tries.attempts,
                dns_ms=attempt.pending.dns.latency_ms if attempt.pending.dns else None,
            )
            self._complete(attempt.pending, attempt.slot, result)
        except BaseException as exc:  # noqa: BLE001 - a bug ends the scan, not lost in the loop
            self._fail(exc)

    def _complete(self, pending: Pending, slot: int, result: ProbeResult) -> None:
        if not self._unreported:
            self.loop.call_soon(self._report_batch)
        self._unreported.append((pending, slot, result))
        self.free += 1
        self.fill()

    def report(self) -> None:
        """Hand every finished address to the tally (which finishes complete targets)."""
        unreported, self._unreported = self._unreported, []
        add = self.tally.add
        for pending, slot, result in unreported:
            add(pending, slot, result)

    def _report_batch(self) -> None:
        if self.stopped:
            return
        if self.probers.overdue() and len(self._unreported) < self.concurrency:
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
