"""Each target's wait: its state, when it is probed next, when it counts as ready. Pure.

Nothing here reads a clock or touches the network: the caller passes the time of every
event, and the random numbers of the jitter come from a function it may replace, so the
schedule is table-tested exactly.

A target's *state* is what its last round said: ``(ok, category)``. The time in state is
counted from the start of the round that first saw it; a round with another outcome
starts a new state. A target is *ready* after ``stable`` good rounds in a row (one by
default), and then it is not probed again.

Backoff, per target: after its first round, and after any round whose state differs
from the one before (something is happening: look again soon) or that was good (the
stable count goes on), the next round comes ``interval`` later; each round that repeats a
bad state doubles that, up to ``max_interval``. Every delay is multiplied by a random
factor in ``[1 - jitter, 1 + jitter]``, so 500 targets of one starting service spread
out instead of arriving together round after round.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from msgspec import Struct

from ..models import Category, Target, TargetResult
from ..verdict import unchecked


class Backoff(Struct, frozen=True, kw_only=True):
    """How long a target waits between its rounds."""

    interval: float = 1.0
    max_interval: float = 5.0
    jitter: float = 0.25

    def next_interval(self, current: float | None, *, repeated: bool) -> float:
        """The interval after a round: doubled (to the cap) when it repeated a bad state."""
        if current is None or not repeated:
            return self.interval
        return min(self.max_interval, max(self.interval, current * 2))

    def delay(self, interval: float, draw: float) -> float:
        """``interval`` spread by the jitter; ``draw`` is uniform in [0, 1)."""
        return interval * (1.0 - self.jitter + 2.0 * self.jitter * draw)


class WaitStatus(Struct, frozen=True, gc=False):
    """One target after one of its rounds: what ``target.waiting`` / ``target.ready`` say."""

    result: TargetResult
    ready: bool
    #: this target's rounds so far (this one included)
    round: int
    #: good rounds in a row, this one included (0 after a bad one)
    good_rounds: int
    #: good rounds in a row needed (``--stable``)
    stable: int
    #: when the current state began: seconds since the wait began
    since_s: float
    #: how long the target has been in its current state
    for_s: float
    #: seconds since the wait began
    waited_s: float
    #: when its next round comes; None when it is ready (or the wait is over)
    next_in_s: float | None


@dataclass(slots=True)
class TargetState:
    """One target's wait so far (mutable: the book updates it after each round)."""

    index: int
    target: Target
    result: TargetResult | None = None
    ready: bool = False
    rounds: int = 0
    good: int = 0
    #: when the current state began (the start of the round that first saw it)
    since: float = 0.0
    interval: float | None = None
    due: float = 0.0
    in_flight: bool = False

    @property
    def state(self) -> tuple[bool, Category] | None:
        return None if self.result is None else (self.result.ok, self.result.category)


class WaitBook:
    """Every target's :class:`TargetState`, which are due, and what each round changes."""

    def __init__(
        self,
        targets: Iterable[Target],
        *,
        start: float,
        stable: int = 1,
        backoff: Backoff = Backoff(),
        draw: Callable[[], float] = random.random,
    ) -> None:
        if stable < 1:
            raise ValueError("stable must be at least 1")
        self.start = start
        self.stable = stable
        self.backoff = backoff
        self._draw = draw
        self.states = [TargetState(i, t, due=start) for i, t in enumerate(targets)]
        self.unready = len(self.states)

    @property
    def done(self) -> bool:
        """Every target is ready."""
        return self.unready == 0

    def due(self, now: float, window: float = 0.0) -> list[TargetState]:
        """Targets whose next round is due by ``now + window`` and not under way."""
        until = now + window
        return [s for s in self.states if not s.ready and not s.in_flight and s.due <= until]

    def next_due(self) -> float:
        """When the next round of a target not under way is due (inf: none is waiting)."""
        return min(
            (s.due for s in self.states if not s.ready and not s.in_flight), default=math.inf
        )

    def record(
        self, state: TargetState, result: TargetResult, *, began: float, now: float
    ) -> WaitStatus:
        """Take one round's result (``began``: when the round started; ``now``: its end)."""
        previous = state.state
        current = (result.ok, result.category)
        state.result = result
        state.rounds += 1
        state.in_flight = False
        state.good = state.good + 1 if result.ok else 0
        if current != previous:
            state.since = began
        repeated = current == previous and not result.ok
        state.interval = self.backoff.next_interval(state.interval, repeated=repeated)
        next_in: float | None = None
        if state.good >= self.stable:
            state.ready = True
            self.unready -= 1
        else:
            next_in = self.backoff.delay(state.interval, self._draw())
            state.due = now + next_in
        return self.status(state, now, next_in)

    def put_back(self, state: TargetState, now: float) -> None:
        """A round ended without a result for this target (cut short): due again now."""
        state.in_flight = False
        state.due = now

    def status(self, state: TargetState, now: float, next_in: float | None = None) -> WaitStatus:
        """``state`` as of ``now`` (it must have a result)."""
        if state.result is None:
            raise ValueError(f"{state.target.name} has no result yet")
        return WaitStatus(
            result=state.result,
            ready=state.ready,
            round=state.rounds,
            good_rounds=state.good,
            stable=self.stable,
            since_s=state.since - self.start,
            for_s=max(0.0, now - state.since),
            waited_s=now - self.start,
            next_in_s=next_in,
        )

    def final(self, now: float) -> tuple[list[TargetResult], list[WaitStatus]]:
        """Every target's last result (inventory order), and the status of those not ready.

        A target never checked (the wait ended before its first round ended) ends
        inconclusive, and is not ready.
        """
        results: list[TargetResult] = []
        waiting: list[WaitStatus] = []
        for state in self.states:
            if state.result is None:
                state.result = unchecked(
                    state.target,
                    "not checked: the wait ended before this target's first round did",
                    state.index,
                )
                state.since = self.start
            results.append(state.result)
            if not state.ready:
                waiting.append(self.status(state, now))
        return results, waiting


def summary_line(statuses: Sequence[WaitStatus]) -> str:
    """``db: refused for 58 s; cache: dns_nxdomain for 60 s`` (what is still not ready).

    A target whose addresses differ says each: ``localhost:6379: refused for 5 s (::1
    refused, 127.0.0.1 open)`` — the dual-stack name half up, which a one-address check
    calls ready.
    """
    return "; ".join(
        f"{s.result.target.name}: {s.result.category} for {s.for_s:.0f} s{_per_address(s)}"
        for s in statuses
    )


def _per_address(status: WaitStatus) -> str:
    probes = status.result.probes
    if len({p.category for p in probes}) < 2:  # one address, or all alike
        return ""
    worst = status.result.category
    ordered = sorted(probes, key=lambda p: p.category != worst)  # the deciding ones first
    return " (" + ", ".join(f"{p.address} {p.category}" for p in ordered) + ")"
